package shipper

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sluicelog/sluice/internal/event"
)

// joinAll feeds the lines of text (newline-terminated, offsets from 0) to a
// joiner of m, flushes it at the end, and returns the events with their
// Data copied.
func joinAll(t testing.TB, m MultilineConfig, text string) []line {
	t.Helper()
	m.setDefaults(1 << 20)
	if err := m.validate("multiline", 1<<20); err != nil {
		t.Fatal(err)
	}
	j := newJoiner(&m)
	var out []line
	keep := func(evs []line) {
		for _, ev := range evs {
			ev.Data = append([]byte(nil), ev.Data...)
			out = append(out, ev)
		}
	}
	now := time.Unix(0, 0)
	off := int64(0)
	for _, l := range strings.SplitAfter(text, "\n") {
		if l == "" {
			continue
		}
		data := strings.TrimSuffix(l, "\n")
		keep(j.add(line{Data: []byte(data), Start: off, End: off + int64(len(l))}, now))
		off += int64(len(l))
	}
	keep(j.flushAll())
	return out
}

func firstLines(evs []line) (firsts []string, counts []int) {
	for _, ev := range evs {
		firsts = append(firsts, strings.SplitN(string(ev.Data), "\n", 2)[0])
		counts = append(counts, bytes.Count(ev.Data, []byte("\n"))+1)
	}
	return firsts, counts
}

// TestJoinerPresetsOnRealTraces joins the samples of testdata/multiline:
// each trace is one event with the log line that announced it, and the
// lines around it stay events of their own.
func TestJoinerPresetsOnRealTraces(t *testing.T) {
	tests := []struct {
		file, preset string
		counts       []int
		traceFirst   string // the first line of the trace's event
		traceLast    string // and its last line
	}{
		{"java.log", "java", []int{1, 37, 1, 1}, "2026-12-06 07:41:02.387 ERROR", "\t... 16 more"},
		{"python.log", "python", []int{1, 18, 1}, "2026-12-06 07:42:10,804 ERROR", "billing.errors.ChargeError: invoice 7781: gateway timeout"},
		{"go.log", "go", []int{1, 1, 26, 1}, "panic: runtime error: invalid memory address", "\t/src/cmd/cart/main.go:40 +0x2a5"},
	}
	for _, tt := range tests {
		t.Run(tt.preset, func(t *testing.T) {
			text := readSample(t, tt.file)
			evs := joinAll(t, MultilineConfig{Preset: tt.preset}, text)
			_, counts := firstLines(evs)
			if !slices.Equal(counts, tt.counts) {
				t.Fatalf("events of %v lines, want %v", counts, tt.counts)
			}
			assertCoversText(t, evs, text)
			for _, ev := range evs {
				if bytes.Count(ev.Data, []byte("\n")) == 0 {
					continue
				}
				first, last := string(ev.Data), string(ev.Data)
				first = first[:strings.IndexByte(first, '\n')]
				last = last[strings.LastIndexByte(last, '\n')+1:]
				if !strings.HasPrefix(first, tt.traceFirst) || last != tt.traceLast {
					t.Errorf("the trace's event runs from %q to %q, want %q... to %q", first, last, tt.traceFirst, tt.traceLast)
				}
				if !slices.Contains(ev.Flags, event.FlagMultiline) {
					t.Errorf("the trace's event is flagged %v, want %s", ev.Flags, event.FlagMultiline)
				}
			}
		})
	}
}

func readSample(t testing.TB, name string) string {
	b, err := os.ReadFile(filepath.Join("..", "testdata", "multiline", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// assertCoversText checks that the events hold every line of text, in
// order, once, and that each event's offsets are those of its lines: it
// starts at its first line, ends past its last one's newline, and the
// registry may move to that end.
func assertCoversText(t testing.TB, evs []line, text string) {
	t.Helper()
	var joined []string
	off := int64(0)
	for _, ev := range evs {
		if ev.Start != off {
			t.Fatalf("an event starts at %d, want %d (the end of the one before)", ev.Start, off)
		}
		n, resume := ev.covered()
		if ev.End != ev.Start+int64(len(ev.Data))+1 || n != ev.End-ev.Start || resume != ev.End {
			t.Fatalf("event %d-%d of %d data bytes covers %d bytes, resumes at %d", ev.Start, ev.End, len(ev.Data), n, resume)
		}
		off = ev.End
		joined = append(joined, string(ev.Data))
	}
	if got := strings.Join(joined, "\n") + "\n"; got != text {
		t.Fatalf("the events do not hold the text as it was:\n%s", got)
	}
}

// TestJoinerPattern is Filebeat's four combinations of negate and match,
// with its documentation's examples.
func TestJoinerPattern(t *testing.T) {
	tests := []struct {
		name   string
		m      MultilineConfig
		text   string
		counts []int
	}{
		{"indented lines after", MultilineConfig{Pattern: `^[[:space:]]`, Match: MatchAfter},
			"Exception in thread main\n\tat a\n\tat b\nnext\n", []int{3, 1}},
		{"not a timestamp, negated, after", MultilineConfig{Pattern: `^\[\d{4}-`, Negate: true, Match: MatchAfter},
			"[2026-12-06] one\ncontinued\nand more\n[2026-12-06] two\n[2026-12-06] three\nx\n", []int{3, 1, 2}},
		{"backslash continues before", MultilineConfig{Pattern: `\\$`, Match: MatchBefore},
			"echo a \\\n  b \\\n  c\nplain\nx \\\ny\n", []int{3, 1, 2}},
		{"not ending in a semicolon, negated, before", MultilineConfig{Pattern: `;$`, Negate: true, Match: MatchBefore},
			"select *\nfrom t\nwhere 1;\nshow tables;\n", []int{3, 1}},
		{"continuation without head", MultilineConfig{Pattern: `^\s`, Match: MatchAfter},
			"  orphan\n  frame\nhead\n", []int{2, 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			evs := joinAll(t, tt.m, tt.text)
			if _, counts := firstLines(evs); !slices.Equal(counts, tt.counts) {
				t.Fatalf("events of %v lines, want %v", counts, tt.counts)
			}
			assertCoversText(t, evs, tt.text)
		})
	}
}

// TestJoinerPresetEdges: what each preset must not join.
func TestJoinerPresetEdges(t *testing.T) {
	tests := []struct {
		name, preset, text string
		counts             []int
	}{
		{"two java traces one after the other", "java",
			"java.lang.IllegalStateException: a\n\tat x.A.a(A.java:1)\njava.lang.IllegalStateException: b\n\tat x.B.b(B.java:2)\n", []int{2, 2}},
		{"java exception line after a trace of one line", "java",
			"msg\njava.io.IOException: x\n\tat a\n", []int{3}},
		{"java plain lines", "java", "a\nb\nc\n", []int{1, 1, 1}},
		{"java Exception in thread", "java", "Exception in thread \"main\" java.lang.Error: x\n\tat M.main(M.java:3)\n", []int{2}},
		{"python traceback without a message line before", "python",
			"Traceback (most recent call last):\n  File \"a.py\", line 1, in <module>\nKeyError: 'x'\nnext\n", []int{3, 1}},
		{"python two tracebacks", "python",
			"Traceback (most recent call last):\n  File \"a\"\nKeyError: 1\nTraceback (most recent call last):\n  File \"b\"\nKeyError: 2\n", []int{3, 3}},
		{"go lines after a panic's trace", "go",
			"panic: boom\n\ngoroutine 1 [running]:\nmain.main()\n\t/m.go:3 +0x1\nexit status 2\n2026/12/06 next line\n", []int{6, 1}},
		{"go two dumps", "go", "goroutine 1 [running]:\nmain.main()\npanic: again\nmain.f()\n", []int{2, 2}},
		{"go SIGQUIT dump with registers", "go",
			"SIGQUIT: quit\nPC=0x46f5a1 m=0 sigcode=0\n\ngoroutine 0 [idle]:\nruntime.futex(0x1)\n\t/x.s:557 +0x21\nrax    0xca\nrip    0x46f5a1\nlog line (after)\n", []int{8, 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			evs := joinAll(t, MultilineConfig{Preset: tt.preset}, tt.text)
			if _, counts := firstLines(evs); !slices.Equal(counts, tt.counts) {
				t.Fatalf("events of %v lines, want %v", counts, tt.counts)
			}
			assertCoversText(t, evs, tt.text)
		})
	}
}

// TestJoinerCaps cuts a trace at max_lines and at max_bytes: every line is
// in an event, the parts are flagged multiline_cut, and none is longer
// than the caps.
func TestJoinerCaps(t *testing.T) {
	text := readSample(t, "java.log")
	for _, m := range []MultilineConfig{{Preset: "java", MaxLines: 10}, {Preset: "java", MaxBytes: 1500}} {
		t.Run(fmt.Sprintf("max_lines %d max_bytes %d", m.MaxLines, m.MaxBytes), func(t *testing.T) {
			evs := joinAll(t, m, text)
			assertCoversText(t, evs, text)
			cut := 0
			for _, ev := range evs {
				lines := bytes.Count(ev.Data, []byte("\n")) + 1
				if (m.MaxLines > 0 && lines > m.MaxLines) || (m.MaxBytes > 0 && len(ev.Data) > m.MaxBytes) {
					t.Errorf("an event of %d lines, %d bytes", lines, len(ev.Data))
				}
				if slices.Contains(ev.Flags, event.FlagMultilineCut) {
					cut++
				}
			}
			// The 37 lines of the trace are cut into parts, all flagged;
			// the other lines are not.
			if cut < 2 || cut != len(evs)-3 {
				t.Errorf("%d of %d events flagged %s, want the trace's parts: all but 3", cut, len(evs), event.FlagMultilineCut)
			}
		})
	}
}

// TestJoinerTimeout: a pending event is due timeout after its last line was
// read, not before, and its deadline says when.
func TestJoinerTimeout(t *testing.T) {
	m := MultilineConfig{Preset: "java", Timeout: time.Second}
	m.setDefaults(1 << 20)
	j := newJoiner(&m)
	t0 := time.Unix(100, 0)
	j.add(line{Data: []byte("java.lang.Error: x"), Start: 0, End: 19}, t0)
	j.add(line{Data: []byte("\tat a"), Start: 19, End: 25}, t0.Add(500*time.Millisecond))
	if at, ok := j.deadline(); !ok || !at.Equal(t0.Add(1500*time.Millisecond)) {
		t.Fatalf("deadline %v %v, want 1.5s after the first line", at, ok)
	}
	if evs := j.flushDue(t0.Add(1400 * time.Millisecond)); len(evs) != 0 {
		t.Fatalf("flushed %d events before the timeout", len(evs))
	}
	evs := j.flushDue(t0.Add(1500 * time.Millisecond))
	if len(evs) != 1 || string(evs[0].Data) != "java.lang.Error: x\n\tat a" || evs[0].End != 25 {
		t.Fatalf("flushed %+v", evs)
	}
	if j.pending() {
		t.Fatal("still pending after the flush")
	}
}

// TestJoinerStreamsResume joins the stdout and stderr lines of a container
// log each on its own: a stderr line between the frames of a stdout trace
// is an event of its own, and the registry may not move past the trace's
// first line until the trace is shipped.
func TestJoinerStreamsResume(t *testing.T) {
	m := MultilineConfig{Preset: "java"}
	m.setDefaults(1 << 20)
	j := newJoiner(&m)
	now := time.Now()
	var got []line
	add := func(stream, data string, start int64) {
		for _, ev := range j.add(line{Data: []byte(data), Stream: stream, Start: start, End: start + 10}, now) {
			ev.Data = append([]byte(nil), ev.Data...)
			got = append(got, ev)
		}
	}
	add("stdout", "java.lang.Error: x", 0)
	add("stderr", "warning", 10)
	add("stdout", "\tat a", 20)
	add("stderr", "another", 30) // ships "warning": the trace at 0 waits
	add("stdout", "next", 40)    // ships the trace
	if len(got) != 2 {
		t.Fatalf("%d events, want 2", len(got))
	}
	if w := got[0]; string(w.Data) != "warning" || w.Resume != 0 {
		t.Errorf("stderr line %q may move the registry to %d, want 0 (the stdout trace before it pends)", w.Data, w.Resume)
	}
	if tr := got[1]; string(tr.Data) != "java.lang.Error: x\n\tat a" || tr.Start != 0 || tr.End != 30 || tr.Bytes != 20 || tr.Resume != 30 {
		t.Errorf("trace %q %d-%d (%d bytes, resume %d), want 0-30, 20 bytes, resume at 30 (the stderr line at 30 pends)",
			tr.Data, tr.Start, tr.End, tr.Bytes, tr.Resume)
	}
}

// FuzzJoiner feeds random lines of two streams, with the presets' and a
// pattern's rules, and random caps: every line is in exactly one event, in
// order within its stream, no event is over the caps, and no event is
// shipped below an offset the registry was allowed to move to before.
func FuzzJoiner(f *testing.F) {
	f.Add(readSample(f, "java.log"), uint8(0), uint8(5), uint16(300))
	f.Add(readSample(f, "python.log"), uint8(1), uint8(3), uint16(0))
	f.Add(readSample(f, "go.log"), uint8(2), uint8(0), uint16(100))
	f.Add("a\n b\n\tc\nd\\\ne\n", uint8(3), uint8(2), uint16(4))
	f.Fuzz(func(t *testing.T, text string, rule, maxLines uint8, maxBytes uint16) {
		m := MultilineConfig{MaxLines: 2 + int(maxLines)%20, MaxBytes: 1 + int(maxBytes)}
		switch rule % 5 {
		case 0, 1, 2:
			m.Preset = multilinePresets[rule%5]
		case 3:
			m.Pattern, m.Match = `^\s`, MatchAfter
		case 4:
			m.Pattern, m.Negate, m.Match = `\\$`, true, MatchBefore
		}
		m.setDefaults(1 << 20)
		j := newJoiner(&m)
		type piece struct{ stream, data string }
		var in []piece
		var got []line
		resumed := int64(0) // the highest offset the registry may have moved to
		take := func(evs []line) {
			for _, ev := range evs {
				if ev.Start < resumed {
					t.Fatalf("event at %d shipped after the registry may have moved to %d", ev.Start, resumed)
				}
				if ev.Resume > ev.End {
					t.Fatalf("event %d-%d resumes at %d, past its end", ev.Start, ev.End, ev.Resume)
				}
				resumed = max(resumed, ev.Resume)
				ev.Data = append([]byte(nil), ev.Data...)
				got = append(got, ev)
			}
		}
		off := int64(0)
		for i, l := range strings.Split(text, "\n") {
			stream := "stdout"
			if i%3 == 2 || strings.HasPrefix(l, "E") {
				stream = "stderr"
			}
			in = append(in, piece{stream, l})
			take(j.add(line{Data: []byte(l), Stream: stream, Start: off, End: off + int64(len(l)) + 1}, time.Unix(int64(i), 0)))
			off += int64(len(l)) + 1
			if i%17 == 16 {
				take(j.flushDue(time.Unix(int64(i), 0).Add(m.Timeout)))
			}
		}
		take(j.flushAll())
		if j.pending() {
			t.Fatal("pending after flushAll")
		}
		for _, stream := range []string{"stdout", "stderr"} {
			var want, have []string
			for _, p := range in {
				if p.stream == stream {
					want = append(want, p.data)
				}
			}
			for _, ev := range got {
				if ev.Stream != stream {
					continue
				}
				lines := strings.Split(string(ev.Data), "\n")
				if len(lines) > m.MaxLines || (len(lines) > 1 && len(ev.Data) > m.MaxBytes) {
					t.Fatalf("event of %d lines, %d bytes over the caps %d, %d", len(lines), len(ev.Data), m.MaxLines, m.MaxBytes)
				}
				have = append(have, lines...)
			}
			if !slices.Equal(want, have) {
				t.Fatalf("%s: events hold %q, want %q", stream, have, want)
			}
		}
	})
}

// BenchmarkJoiner is the joiner's cost per line over the samples, each
// preset on its own traces.
func BenchmarkJoiner(b *testing.B) {
	for _, bc := range []struct{ preset, file string }{{"java", "java.log"}, {"python", "python.log"}, {"go", "go.log"}} {
		b.Run(bc.preset, func(b *testing.B) {
			m := MultilineConfig{Preset: bc.preset}
			m.setDefaults(1 << 20)
			j := newJoiner(&m)
			lines := bytes.Split([]byte(strings.TrimSuffix(readSample(b, bc.file), "\n")), []byte("\n"))
			now := time.Now()
			off := int64(0)
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				l := lines[i%len(lines)]
				j.add(line{Data: l, Start: off, End: off + int64(len(l)) + 1}, now)
				off += int64(len(l)) + 1
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N), "ns/line")
		})
	}
}

func TestJavaException(t *testing.T) {
	for l, want := range map[string]bool{
		"java.lang.IllegalStateException: boom":                       true,
		"java.lang.OutOfMemoryError":                                  true,
		"com.acme.Outer$InnerException: x: y":                         true,
		"MyError: x":                                                  true,
		`Exception in thread "main" java.lang.RuntimeException: boom`: true,
		`Exception in thread "main" oops`:                             false,
		"ERROR: disk full":                                            false,
		"an Error: occurred":                                          false,
		"java.lang.exception: x":                                      false,
		".Exception":                                                  false,
		"1.Error":                                                     false,
		"Error":                                                       true,
		"x.errorException":                                            false,
	} {
		if got := javaException([]byte(l)); got != want {
			t.Errorf("javaException(%q) = %v, want %v", l, got, want)
		}
	}
}
