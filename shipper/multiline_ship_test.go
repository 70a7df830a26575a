package shipper

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicelog/sluice/internal/event"
)

// registryOffset is the acknowledged offset the running shipper's registry
// holds for the file now at path, or -1.
func registryOffset(sh *Shipper, path string) int64 {
	for _, e := range sh.registry.snapshot() {
		if e.Path == path {
			return e.Offset
		}
	}
	return -1
}

func withMultiline(m MultilineConfig) func(*Config) {
	return func(c *Config) { c.Inputs[0].Multiline = &m }
}

// TestMultilineAckCoversTheEvent ships the Java sample with acknowledgements
// held: the trace is one record whose offset is its first line's, and the
// registry does not move until it is acknowledged, then moves to the end of
// its last line (the file's end, as the lines after it are acknowledged
// too).
func TestMultilineAckCoversTheEvent(t *testing.T) {
	pub := &heldPublisher{}
	l := newLifecycle(t, withMultiline(MultilineConfig{Preset: "java", Timeout: 200 * time.Millisecond}))
	text := readSample(t, "java.log")
	appendTo(t, l.path("app.log"), text)
	sh, _ := startShipper(t, l.cfg, pub)
	got := pub.waitFor(t, 4, 10*time.Second)
	trace := got[1]
	if n := strings.Count(string(trace.Line), "\n") + 1; n != 37 || !trace.HasFlag(event.FlagMultiline) {
		t.Fatalf("the trace arrived as %d lines flagged %v, want 37 lines in one record flagged multiline", n, trace.Flags)
	}
	if want := int64(strings.Index(text, "2026-12-06 07:41:02.387")); trace.Offset != want {
		t.Fatalf("the trace's offset is %d, want %d (its first line's)", trace.Offset, want)
	}
	time.Sleep(300 * time.Millisecond)
	if off := registryOffset(sh, l.path("app.log")); off != 0 {
		t.Fatalf("the registry moved to %d before any acknowledgement", off)
	}
	pub.release()
	waitUntil(t, "the registry at the file's end", func() bool { return registryOffset(sh, l.path("app.log")) == int64(len(text)) })
}

// TestMultilineCutByStopIsReadAgainWhole stops the shipper while a trace's
// frames are still being written: the registry stays at the trace's first
// line, and after the restart the trace is shipped whole, once, with the
// document id it would have had.
func TestMultilineCutByStopIsReadAgainWhole(t *testing.T) {
	l := newLifecycle(t, withMultiline(MultilineConfig{Preset: "java", Timeout: time.Minute}))
	text := readSample(t, "java.log")
	cut := strings.Index(text, "Caused by: java.sql")
	path := l.path("app.log")
	appendTo(t, path, text[:cut])
	sh, stop := startShipper(t, l.cfg, l.pub)
	first := l.pub.waitFor(t, 1, 10*time.Second)[0]
	// The trace's lines read so far are held, waiting for more.
	waitUntil(t, "the first line acknowledged", func() bool { return registryOffset(sh, path) > 0 })
	time.Sleep(300 * time.Millisecond)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	traceStart := int64(strings.Index(text, "2026-12-06 07:41:02.387"))
	if got := l.pub.shipped(); len(got) != 1 {
		t.Fatalf("%d records before the stop, want 1 (the trace waits for its end)", len(got))
	}
	appendTo(t, path, text[cut:])
	l.cfg.Inputs[0].Multiline.Timeout = 200 * time.Millisecond // for the file's last line
	sh, _ = startShipper(t, l.cfg, l.pub)
	got := l.pub.waitFor(t, 4, 10*time.Second)
	time.Sleep(200 * time.Millisecond)
	got = l.pub.shipped()
	if len(got) != 4 || got[0].DocID() != first.DocID() {
		t.Fatalf("%d records, want 4", len(got))
	}
	trace := got[1]
	if trace.Offset != traceStart || strings.Count(string(trace.Line), "\n")+1 != 37 {
		t.Fatalf("the trace was read again from %d with %d lines, want from %d whole (37 lines)", trace.Offset, strings.Count(string(trace.Line), "\n")+1, traceStart)
	}
	if want := event.DocID(l.cfg.Node, first.FileID, traceStart); trace.DocID() != want {
		t.Fatalf("the trace's document id is %s, want %s", trace.DocID(), want)
	}
	waitUntil(t, "the registry at the file's end", func() bool { return registryOffset(sh, path) == int64(len(text)) })
}

// TestMultilineQuietFileFlushedAtTimeout: the last event of a file that goes
// quiet is shipped once the timeout passed since its last line, not a poll
// interval later.
func TestMultilineQuietFileFlushedAtTimeout(t *testing.T) {
	const timeout = time.Second
	l := newLifecycle(t, func(c *Config) {
		c.Inputs[0].Multiline = &MultilineConfig{Preset: "java", Timeout: timeout}
		c.ScanInterval = 5 * time.Second
	})
	path := l.path("app.log")
	appendTo(t, path, "start\n")
	l.start()
	l.pub.waitFor(t, 1, 10*time.Second) // waits for its timeout too
	written := time.Now()
	appendTo(t, path, "java.lang.IllegalStateException: boom\n\tat a.B.c(B.java:1)\n")
	l.pub.waitFor(t, 2, 10*time.Second)
	took := time.Since(written)
	if took < timeout || took > timeout+400*time.Millisecond {
		t.Fatalf("the quiet trace was shipped %v after it was written, want its timeout, %v", took, timeout)
	}
	t.Logf("shipped %v after it was written (timeout %v)", took.Round(time.Millisecond), timeout)
}

// TestMultilineAcrossRotation renames the file in the middle of a trace and
// writes the rest of it, and more, to the new file: the old file's lines are
// shipped as its own event, never glued to the new file's lines.
func TestMultilineAcrossRotation(t *testing.T) {
	l := newLifecycle(t, withMultiline(MultilineConfig{Preset: "java", Timeout: 300 * time.Millisecond}))
	path := l.path("app.log")
	appendTo(t, path, "the message\njava.lang.IllegalStateException: old\n\tat old.A.a(A.java:1)\n")
	sh, _ := startShipper(t, l.cfg, l.pub)
	waitReading(t, sh, path)
	time.Sleep(100 * time.Millisecond)
	if err := os.Rename(path, l.path("app.log.1")); err != nil {
		t.Fatal(err)
	}
	appendTo(t, path, "\tat new.B.b(B.java:2)\n\t... 3 more\nafter\n")
	waitUntil(t, "3 records", func() bool { return len(l.pub.shipped()) >= 3 })
	time.Sleep(500 * time.Millisecond)
	got := l.pub.shipped()
	byText := map[string]event.Event{}
	for _, ev := range got {
		byText[string(ev.Line)] = ev
	}
	old, okOld := byText["the message\njava.lang.IllegalStateException: old\n\tat old.A.a(A.java:1)"]
	rest, okNew := byText["\tat new.B.b(B.java:2)\n\t... 3 more"]
	if len(got) != 3 || !okOld || !okNew {
		var lines []string
		for _, ev := range got {
			lines = append(lines, string(ev.Line))
		}
		t.Fatalf("records %q, want the old file's trace and the new file's frames apart", lines)
	}
	if old.FileID == rest.FileID || rest.FileID != byText["after"].FileID {
		t.Fatalf("file ids: old trace %s, new frames %s", old.FileID, rest.FileID)
	}
}

// TestLineFilter drops health checks and keeps only what include_lines
// asks for: the dropped lines are counted, never produced, and the registry
// moves over them, the file's last line (dropped) included.
func TestLineFilter(t *testing.T) {
	l := newLifecycle(t, func(c *Config) {
		c.Inputs[0].IncludeLines = []string{`level=(warn|error)`, `^panic`}
		c.Inputs[0].ExcludeLines = []string{`GET /healthz`}
	})
	path := l.path("app.log")
	text := "level=info msg=started\n" +
		"level=warn msg=slow\n" +
		"level=error msg=\"GET /healthz failed\"\n" +
		"panic: boom\n" +
		"level=info msg=\"GET /healthz 200\"\n"
	appendTo(t, path, text)
	l.start()
	got := l.pub.waitFor(t, 2, 10*time.Second)
	waitUntil(t, "the registry at the file's end", func() bool { return registryOffset(l.sh, path) == int64(len(text)) })
	got = l.pub.shipped()
	if len(got) != 2 || string(got[0].Line) != "level=warn msg=slow" || string(got[1].Line) != "panic: boom" {
		t.Fatalf("shipped %d records, want the warning and the panic", len(got))
	}
	if n := testutil.ToFloat64(l.sh.metrics.linesFiltered.WithLabelValues("service")); n != 3 {
		t.Fatalf("sluice_shipper_lines_filtered_total = %v, want 3", n)
	}
}

// TestLineFilterOnJoinedEvents filters a multiline event as a whole, by any
// of its lines.
func TestLineFilterOnJoinedEvents(t *testing.T) {
	l := newLifecycle(t, func(c *Config) {
		c.Inputs[0].Multiline = &MultilineConfig{Preset: "java", Timeout: 200 * time.Millisecond}
		c.Inputs[0].ExcludeLines = []string{`ClientAbortException`}
	})
	path := l.path("app.log")
	text := "aborted\norg.apache.catalina.connector.ClientAbortException: Broken pipe\n\tat a.B.c(B.java:1)\n" +
		"failed\njava.lang.IllegalStateException: x\n\tat a.B.c(B.java:1)\n"
	appendTo(t, path, text)
	l.start()
	waitUntil(t, "the registry at the file's end", func() bool { return registryOffset(l.sh, path) == int64(len(text)) })
	got := l.pub.shipped()
	if len(got) != 1 || !strings.HasPrefix(string(got[0].Line), "failed\njava.lang.IllegalStateException") {
		t.Fatalf("shipped %d records, want the IllegalStateException's only", len(got))
	}
}

// TestMultilineContainerLogAcrossStop joins a stdout trace of a container
// log (CRI) whose frame is split in partial pieces and between whose lines
// the container wrote to stderr. Stopped in the middle of the trace, the
// registry stays at its first line, though the stderr line after it was
// acknowledged; after the restart the trace is one event, read again
// whole from there, and the stderr line keeps its document id.
func TestMultilineContainerLogAcrossStop(t *testing.T) {
	l := newLifecycle(t, func(c *Config) {
		c.Inputs[0].Format = FormatCRI
		c.Inputs[0].Multiline = &MultilineConfig{Preset: "java", Timeout: time.Minute}
	})
	path := l.path("app.log")
	head := "2026-12-06T07:41:02.000Z stdout F before\n"
	part1 := "2026-12-06T07:41:02.387Z stdout F java.lang.IllegalStateException: boom\n" +
		"2026-12-06T07:41:02.387Z stderr F a stderr line\n" +
		"2026-12-06T07:41:02.387Z stdout P \tat com.acme.Very\n" +
		"2026-12-06T07:41:02.387Z stdout F Long.frame(Long.java:1)\n" +
		"2026-12-06T07:41:02.388Z stderr F another stderr line\n" // ships the first
	part2 := "2026-12-06T07:41:02.387Z stdout F \t... 3 more\n" +
		"2026-12-06T07:41:02.500Z stdout F after\n"
	appendTo(t, path, head+part1)
	sh, stop := startShipper(t, l.cfg, l.pub)
	// The "before" line is joined with the exception line after it (the
	// logger's message), so the first record is the stderr line.
	l.pub.waitFor(t, 1, 10*time.Second)
	time.Sleep(300 * time.Millisecond)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if off := registryOffset(sh, path); off != 0 {
		t.Fatalf("registry at %d, past the trace still pending at 0", off)
	}
	stderrID := l.pub.shipped()[0].DocID()
	appendTo(t, path, part2)
	l.cfg.Inputs[0].Multiline.Timeout = 200 * time.Millisecond
	sh, _ = startShipper(t, l.cfg, l.pub)
	waitUntil(t, "the registry at the file's end", func() bool { return registryOffset(sh, path) == int64(len(head+part1+part2)) })
	var trace []event.Event
	for _, ev := range l.pub.shipped() {
		switch {
		case string(ev.Line) == "a stderr line":
			if ev.DocID() != stderrID {
				t.Errorf("the stderr line was shipped again under another id")
			}
		case strings.Contains(string(ev.Line), "boom"):
			trace = append(trace, ev)
		}
	}
	want := "before\njava.lang.IllegalStateException: boom\n\tat com.acme.VeryLong.frame(Long.java:1)\n\t... 3 more"
	if len(trace) != 1 || string(trace[0].Line) != want || trace[0].Offset != 0 || trace[0].Stream != "stdout" {
		t.Fatalf("trace records %+v, want one at 0: %q", trace, want)
	}
}

// TestMultilineFlushedAtTruncation truncates a file in the middle of a
// trace (copytruncate) and writes new content: the trace's lines, read
// before the truncation, are shipped at once as an event of the old
// content, not dropped with it, nor glued to the new content's lines.
func TestMultilineFlushedAtTruncation(t *testing.T) {
	l := newLifecycle(t, withMultiline(MultilineConfig{Preset: "java", Timeout: 3 * time.Second}))
	path := l.path("app.log")
	appendTo(t, path, "java.lang.IllegalStateException: old\n\tat old.A.a(A.java:1)\n")
	sh, _ := startShipper(t, l.cfg, l.pub)
	waitReading(t, sh, path)
	time.Sleep(300 * time.Millisecond)
	if err := os.Truncate(path, 0); err != nil {
		t.Fatal(err)
	}
	truncated := time.Now()
	appendTo(t, path, "\tat new.B.b(B.java:2)\n")
	got := l.pub.waitFor(t, 1, 10*time.Second)
	if took := time.Since(truncated); took > 2*time.Second {
		t.Errorf("the old trace was shipped %v after the truncation, want at once", took)
	}
	if string(got[0].Line) != "java.lang.IllegalStateException: old\n\tat old.A.a(A.java:1)" || got[0].Offset != 0 {
		t.Fatalf("first record %q at %d", got[0].Line, got[0].Offset)
	}
	got = l.pub.waitFor(t, 2, 10*time.Second)
	if string(got[1].Line) != "\tat new.B.b(B.java:2)" || got[1].FileID == got[0].FileID {
		t.Fatalf("second record %q of file %s (the first's %s)", got[1].Line, got[1].FileID, got[0].FileID)
	}
}

// TestAckedLinesSkipsJoinedAndFiltered: sluice reconcile lists a document
// per line; a file of an input with multiline or a line filter has fewer,
// and is listed as skipped rather than as missing lines.
func TestAckedLinesSkipsJoinedAndFiltered(t *testing.T) {
	for name, adjust := range map[string]func(*Config){
		"multiline":     withMultiline(MultilineConfig{Preset: "go", Timeout: 100 * time.Millisecond}),
		"exclude_lines": func(c *Config) { c.Inputs[0].ExcludeLines = []string{"healthz"} },
	} {
		t.Run(name, func(t *testing.T) {
			l := newLifecycle(t, adjust)
			path := l.path("app.log")
			appendTo(t, path, "panic: boom\n\ngoroutine 1 [running]:\nmain.main()\nGET /healthz\n")
			sh, stop := startShipper(t, l.cfg, l.pub)
			waitUntil(t, "the registry at the file's end", func() bool { return registryOffset(sh, path) > 0 })
			if err := stop(); err != nil {
				t.Fatal(err)
			}
			files, err := AckedLines(l.cfg)
			if err != nil {
				t.Fatal(err)
			}
			if len(files) != 1 || !strings.Contains(files[0].Skipped, "multiline or include_lines/exclude_lines") || len(files[0].Lines) != 0 {
				t.Fatalf("AckedLines = %+v, want the file skipped", files)
			}
		})
	}
}

// slowFirstPublisher takes its first record only after a while, as a
// shipper waiting for Kafka's acknowledgements to free max_in_flight_bytes
// does in the middle of a read.
type slowFirstPublisher struct {
	collectingPublisher
	wait time.Duration
	once sync.Once
}

func (p *slowFirstPublisher) Publish(ctx context.Context, rec *kgo.Record, acked func()) error {
	p.once.Do(func() { time.Sleep(p.wait) })
	return p.collectingPublisher.Publish(ctx, rec, acked)
}

// TestMultilineSlowReadDoesNotCutTrace: a read that waited on Kafka longer
// than the multiline timeout, and stopped at its line limit (readBurst) in
// the middle of a trace whose frames are in the file already, does not
// ship the trace's first lines as an event of their own: they were read
// just now, not a timeout ago.
func TestMultilineSlowReadDoesNotCutTrace(t *testing.T) {
	l := newLifecycle(t, withMultiline(MultilineConfig{Preset: "java", Timeout: 200 * time.Millisecond}))
	var b strings.Builder
	for i := range readBurst - 2 {
		fmt.Fprintf(&b, "line %d\n", i)
	}
	trace := "the message\njava.lang.IllegalStateException: boom\n\tat a.B.c(B.java:1)\n\tat d.E.f(E.java:2)"
	b.WriteString(trace + "\nafter\n")
	path := l.path("app.log")
	appendTo(t, path, b.String())
	pub := &slowFirstPublisher{wait: 500 * time.Millisecond}
	sh, _ := startShipper(t, l.cfg, pub)
	waitUntil(t, "the registry at the file's end", func() bool { return registryOffset(sh, path) == int64(b.Len()) })
	var got []string
	for _, ev := range pub.shipped() {
		if strings.Contains(string(ev.Line), "boom") || strings.HasPrefix(string(ev.Line), "\tat") {
			got = append(got, string(ev.Line))
		}
	}
	if len(got) != 1 || got[0] != trace {
		t.Fatalf("the trace was shipped as %q, want one event", got)
	}
}

// TestMultilineContainerLogRestartShipsNoFragment: a stdout trace is shipped
// whole while a stderr line before its frames still waits for its event's
// end, so the registry stays at that stderr line. After a restart, read
// again from there, the trace's frames were shipped already: they are not
// shipped again as an event of their own, under another id (a fragment of
// the trace twice in Elasticsearch), while the stderr line is, under its
// id.
func TestMultilineContainerLogRestartShipsNoFragment(t *testing.T) {
	l := newLifecycle(t, func(c *Config) {
		c.Inputs[0].Format = FormatCRI
		c.Inputs[0].Multiline = &MultilineConfig{Preset: "java", Timeout: time.Minute}
	})
	path := l.path("app.log")
	text := "2026-12-06T07:41:02.387Z stdout F java.lang.IllegalStateException: boom\n" +
		"2026-12-06T07:41:02.387Z stderr F a stderr line\n" +
		"2026-12-06T07:41:02.387Z stdout F \tat a.B.c(B.java:1)\n" +
		"2026-12-06T07:41:02.387Z stdout P \tat d.E.f(E.ja\n" +
		"2026-12-06T07:41:02.387Z stdout F va:2)\n" +
		"2026-12-06T07:41:02.500Z stdout F after\n" // ships the trace
	appendTo(t, path, text)
	sh, stop := startShipper(t, l.cfg, l.pub)
	l.pub.waitFor(t, 1, 10*time.Second)
	stderrAt := int64(strings.Index(text, "2026-12-06T07:41:02.387Z stderr"))
	waitUntil(t, "the trace acknowledged", func() bool { return registryOffset(sh, path) == stderrAt })
	time.Sleep(200 * time.Millisecond)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	first := len(l.pub.shipped())
	l.cfg.Inputs[0].Multiline.Timeout = 200 * time.Millisecond
	sh, _ = startShipper(t, l.cfg, l.pub)
	waitUntil(t, "the registry at the file's end", func() bool { return registryOffset(sh, path) == int64(len(text)) })
	var again []string
	for _, ev := range l.pub.shipped()[first:] {
		again = append(again, fmt.Sprintf("%d %q", ev.Offset, ev.Line))
	}
	want := []string{fmt.Sprintf("%d %q", stderrAt, "a stderr line"), fmt.Sprintf("%d %q", strings.Index(text, "2026-12-06T07:41:02.500Z"), "after")}
	if !slices.Equal(again, want) {
		t.Fatalf("after the restart shipped %q, want %q", again, want)
	}
}
