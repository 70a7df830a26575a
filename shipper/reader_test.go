package shipper

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
)

// readAll reads every line of data with a reader cutting at max bytes.
func readAll(t testing.TB, data string, max int) []line {
	return readGrowing(t, data, max, readBufferSize, len(data))
}

// growingFile is a file being written: reads see only its first n bytes.
type growingFile struct {
	data string
	n    int
}

func (f *growingFile) ReadAt(p []byte, off int64) (int, error) {
	return strings.NewReader(f.data[:f.n]).ReadAt(p, off)
}

// readGrowing reads data as it is written chunk bytes at a time, with a
// reader whose buffer starts at size bytes and that goes idle (letting go
// of its buffer) each time it has read everything written so far; then it
// flushes the unterminated tail.
func readGrowing(t testing.TB, data string, max, size, chunk int) []line {
	t.Helper()
	f := &growingFile{data: data, n: min(chunk, len(data))}
	r := newLineReader(f, 0, max, nil)
	r.size = size
	var out []line
	for {
		l, ok, err := r.next()
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			l.Data = append([]byte(nil), l.Data...)
			out = append(out, l)
			continue
		}
		r.idle()
		if f.n == len(data) {
			break
		}
		f.n = min(f.n+chunk, len(data))
	}
	if l, ok := r.flushPartial(); ok {
		l.Data = append([]byte(nil), l.Data...)
		out = append(out, l)
	}
	return out
}

func TestLineReader(t *testing.T) {
	long := strings.Repeat("x", 3000)
	tests := []struct {
		name string
		in   string
		max  int
		want []line
	}{
		{"empty", "", 1024, nil},
		{"one line", "a\n", 1024, []line{{Data: []byte("a"), Start: 0, End: 2}}},
		{"crlf", "a\r\nb\n", 1024, []line{{Data: []byte("a"), End: 3}, {Data: []byte("b"), Start: 3, End: 5}}},
		{"empty lines", "\n\n", 1024, []line{{Data: []byte{}, End: 1}, {Data: []byte{}, Start: 1, End: 2}}},
		{"partial tail", "a\nbc", 1024, []line{{Data: []byte("a"), End: 2}, {Data: []byte("bc"), Start: 2, End: 4}}},
		{"cut and resync", long + "\nok\n", 1024, []line{
			{Data: []byte(long[:1024]), End: 3001, Truncated: true},
			{Data: []byte("ok"), Start: 3001, End: 3004},
		}},
		{"exactly max", strings.Repeat("y", 1024) + "\n", 1024, []line{{Data: []byte(strings.Repeat("y", 1024)), End: 1025}}},
		{"cut unterminated", long, 1024, []line{{Data: []byte(long[:1024]), End: 3000, Truncated: true}}},
	}
	// Each case is read at once with the usual buffer, and as it is
	// written a few bytes at a time by a reader whose buffer starts tiny,
	// grows for long lines and is let go of whenever all is read.
	reads := []struct {
		name        string
		size, chunk int
	}{
		{"whole", readBufferSize, 1 << 30},
		{"written in 3-byte pieces, 4-byte buffer", 4, 3},
		{"written byte by byte, 1-byte buffer", 1, 1},
	}
	for _, tt := range tests {
		for _, rd := range reads {
			t.Run(tt.name+"/"+rd.name, func(t *testing.T) {
				got := readGrowing(t, tt.in, tt.max, rd.size, rd.chunk)
				if len(got) != len(tt.want) {
					t.Fatalf("got %d lines, want %d: %+v", len(got), len(tt.want), got)
				}
				for i := range got {
					g, w := got[i], tt.want[i]
					if !bytes.Equal(g.Data, w.Data) || g.Start != w.Start || g.End != w.End || g.Truncated != w.Truncated {
						t.Errorf("line %d: got {%q %d %d %v}, want {%q %d %d %v}", i, g.Data, g.Start, g.End, g.Truncated, w.Data, w.Start, w.End, w.Truncated)
					}
				}
			})
		}
	}
}

// FuzzLineReader checks that lines tile the input exactly, however it is
// written and whatever the reader's buffer size: each line starts
// where the previous ended, the last ends at the input's end, and a line's
// data is the input's bytes at its offsets (up to the limit).
func FuzzLineReader(f *testing.F) {
	f.Add([]byte("a\nb\r\n\nccc"), 8, uint8(3), uint8(4))
	f.Add([]byte(strings.Repeat("z", 100)+"\nq"), 16, uint8(7), uint8(1))
	f.Fuzz(func(t *testing.T, data []byte, max int, chunk, size uint8) {
		max = 1 + (max&0xff+0xff)%256
		// Written chunk bytes at a time, read with a buffer of size bytes
		// that grows for long lines and is let go of when all is read.
		lines := readGrowing(t, string(data), max, 1+int(size), 1+int(chunk))
		var pos int64
		for i, l := range lines {
			if l.Start != pos {
				t.Fatalf("line %d starts at %d, previous ended at %d", i, l.Start, pos)
			}
			if l.End <= l.Start {
				t.Fatalf("line %d is empty in the file: %d..%d", i, l.Start, l.End)
			}
			if len(l.Data) > max {
				t.Fatalf("line %d has %d bytes, over the limit %d", i, len(l.Data), max)
			}
			if !bytes.HasPrefix(data[l.Start:l.End], l.Data) {
				t.Fatalf("line %d data %q is not the file's bytes %q", i, l.Data, data[l.Start:l.End])
			}
			if bytes.IndexByte(l.Data, '\n') >= 0 {
				t.Fatalf("line %d contains a newline", i)
			}
			pos = l.End
		}
		if pos != int64(len(data)) {
			t.Fatalf("lines end at %d, input has %d bytes", pos, len(data))
		}
	})
}

func BenchmarkLineReader(b *testing.B) {
	ln := `{"@timestamp":"2026-11-25T10:00:00.123Z","level":"info","service":"checkout","msg":"order placed","order_id":"A-1029384","customer":"acme","duration_ms":12.5,"trace_id":"4bf92f3577b34da6a3ce929d0e0e4736"}` + "\n"
	data := strings.Repeat(ln, 10000)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	src := strings.NewReader(data)
	for b.Loop() {
		r := newLineReader(src, 0, 1<<20, nil)
		n := 0
		for {
			_, ok, err := r.next()
			if err != nil {
				b.Fatal(err)
			}
			if !ok {
				break
			}
			n++
		}
		if n != 10000 {
			b.Fatalf("read %d lines", n)
		}
	}
}

// TestReaderMarksLastLines: the marks of the last lines read hold their
// bytes' sums however the buffer was refilled, compacted or let go of in
// between, and a line longer than markBytes is summed by its end.
func TestReaderMarksLastLines(t *testing.T) {
	var b strings.Builder
	for i := range 3000 {
		fmt.Fprintf(&b, "line %d %s\n", i, strings.Repeat("x", i%300))
	}
	data := b.String() + "alpha and the same end\n"
	for _, chunk := range []int{len(data), 1000, 70000} {
		f := &growingFile{data: data, n: min(chunk, len(data))}
		r := newLineReader(f, 0, 1<<20, nil)
		for {
			_, ok, err := r.next()
			if err != nil {
				t.Fatal(err)
			}
			if ok {
				continue
			}
			if f.n == len(data) {
				break
			}
			r.idle()
			f.n = min(f.n+chunk, len(data))
		}
		marks := r.checks()
		if len(marks) != markRing || marks[0].End != int64(len(data)) {
			t.Fatalf("chunk %d: %d marks, the latest ending at %d; want %d, at %d", chunk, len(marks), marks[0].End, markRing, len(data))
		}
		src := strings.NewReader(data)
		for _, m := range marks {
			if held, known := holdsMark(src, []lineCheck{m}, m.End); m.Len > markBytes || !held || !known {
				t.Errorf("chunk %d: mark %+v does not hold the file's bytes", chunk, m)
			}
		}
		if held, _ := holdsMark(strings.NewReader(strings.Replace(data, "alpha", "omega", 1)), marks, marks[0].End); held {
			t.Errorf("chunk %d: a file whose last line differs at its start holds its mark", chunk)
		}
	}
}
