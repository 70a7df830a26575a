package shipper

import (
	"bytes"
	"strings"
	"testing"
)

func readAll(t testing.TB, data string, max int) []line {
	t.Helper()
	r := newLineReader(strings.NewReader(data), 0, max)
	var out []line
	for {
		l, ok, err := r.next()
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			break
		}
		l.Data = append([]byte(nil), l.Data...)
		out = append(out, l)
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
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := readAll(t, tt.in, tt.max)
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

// FuzzLineReader checks that lines tile the input exactly: each line starts
// where the previous ended, the last ends at the input's end, and a line's
// data is the input's bytes at its offsets (up to the limit).
func FuzzLineReader(f *testing.F) {
	f.Add([]byte("a\nb\r\n\nccc"), 8)
	f.Add([]byte(strings.Repeat("z", 100)+"\nq"), 16)
	f.Fuzz(func(t *testing.T, data []byte, max int) {
		max = 1 + (max&0xff+0xff)%256
		lines := readAll(t, string(data), max)
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
		r := newLineReader(src, 0, 1<<20)
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
