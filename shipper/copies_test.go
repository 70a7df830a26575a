package shipper

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/sluicelog/sluice/internal/event"
)

// starGlob has the lifecycle's input read app.log* (copies included).
func starGlob(c *Config) {
	c.Inputs[0].Paths = []string{filepath.Join(filepath.Dir(c.Inputs[0].Paths[0]), "app.log*")}
}

// shippedOnce waits until the lines of want (by prefix, how many) are
// shipped and a moment more, then checks that each was shipped once and
// nothing else was.
func shippedOnce(t *testing.T, pub *collectingPublisher, want map[string]int) {
	t.Helper()
	total := 0
	for _, n := range want {
		total += n
	}
	pub.waitFor(t, total, 10*time.Second)
	time.Sleep(500 * time.Millisecond) // anything more would come now
	got := pub.shipped()
	for prefix, n := range want {
		assertOnce(t, got, prefix, n)
	}
	if len(got) != total {
		t.Errorf("%d lines shipped, want %d", len(got), total)
	}
}

// runCopyWait runs a shipper until the test ends, with copyWait as how
// long a possible copy waits (0: as configured).
func runCopyWait(t *testing.T, cfg Config, pub Publisher, copyWait time.Duration) *Shipper {
	sh, err := New(cfg, prometheus.NewRegistry(), zaptest.NewLogger(t), WithPublisher(pub))
	if err != nil {
		t.Fatal(err)
	}
	sh.replaced.copyWait = copyWait
	runShipper(t, sh)
	return sh
}

// gatedPublisher stops, once, at the line whose id is at: Publish blocks
// until open is closed, with the lines before it published and the
// harvester's burst still open.
type gatedPublisher struct {
	collectingPublisher
	at      string
	reached chan struct{}
	open    chan struct{}
	once    sync.Once
}

func newGatedPublisher(at string) *gatedPublisher {
	return &gatedPublisher{at: at, reached: make(chan struct{}), open: make(chan struct{})}
}

func (p *gatedPublisher) Publish(ctx context.Context, rec *kgo.Record, acked func()) error {
	if ev, err := event.Decode(rec); err == nil && idOf(string(ev.Line)) == p.at {
		first := false
		p.once.Do(func() { first = true })
		if first {
			close(p.reached)
			select {
			case <-p.open:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
	}
	return p.collectingPublisher.Publish(ctx, rec, acked)
}

// TestCopyWaitsForItsOriginalsHandover: the original is copied and
// truncated while its harvester is in the middle of a burst (lines
// published, more read and checked before the truncation, still to be
// shipped). The copy, found meanwhile, must not be read from what the
// original had sent when it was found: the original goes on shipping what
// it had read. It waits until the original's harvester has noticed the
// truncation, and is read from where that one stopped: every line once.
func TestCopyWaitsForItsOriginalsHandover(t *testing.T) {
	l := newLifecycle(t, starGlob)
	pub := newGatedPublisher("c300")
	writeLines(t, l.path("app.log"), "c", 0, 1000) // ~90 KB: more than one read
	_, stop := startShipper(t, l.cfg, pub)
	select {
	case <-pub.reached:
	case <-time.After(10 * time.Second):
		t.Fatal("the original's harvester never reached line c300")
	}
	copyFile(t, l.path("app.log"), l.path("app.log.1"))
	if err := os.Truncate(l.path("app.log"), 0); err != nil {
		t.Fatal(err)
	}
	writeLines(t, l.path("app.log"), "d", 0, 100)
	time.Sleep(500 * time.Millisecond) // the copy is found and looked at
	close(pub.open)
	shippedOnce(t, &pub.collectingPublisher, map[string]int{"c": 1000, "d": 100})
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}

// TestOriginalWaitsForItsCopyInEveryGeneration: a file whose first line
// matches a live file waits for that file's truncation before it is read
// whole, in each of its generations, not only in the first: b.log, alike
// to a.log in its first generation (read whole after the wait), is
// truncated and rewritten with c.log's content (as an original whose copy
// was read first) and truncated again soon after. Its second generation
// must wait too, not be read at once because the first one waited long
// ago.
func TestOriginalWaitsForItsCopyInEveryGeneration(t *testing.T) {
	l := newLifecycle(t, nil)
	runCopyWait(t, l.cfg, l.pub, 2*time.Second)
	writeLines(t, l.path("a.log"), "x", 0, 100)
	l.pub.waitFor(t, 100, 10*time.Second)
	writeLines(t, l.path("b.log"), "x", 0, 100) // alike: read whole after copyWait
	l.pub.waitFor(t, 200, 10*time.Second)
	writeLines(t, l.path("c.log"), "z", 0, 100)
	l.pub.waitFor(t, 300, 10*time.Second)
	// b.log's second generation starts like c.log, which is live: it
	// waits, and is truncated within the wait.
	if err := os.Truncate(l.path("b.log"), 0); err != nil {
		t.Fatal(err)
	}
	writeLines(t, l.path("b.log"), "z", 0, 100)
	time.Sleep(600 * time.Millisecond)
	if err := os.Truncate(l.path("b.log"), 0); err != nil {
		t.Fatal(err)
	}
	writeLines(t, l.path("b.log"), "w", 0, 10)
	l.pub.waitFor(t, 310, 10*time.Second)
	time.Sleep(500 * time.Millisecond) // anything more would come now
	got := l.pub.shipped()
	assertOnce(t, got, "z", 100)
	assertOnce(t, got, "w", 10)
	if len(got) != 310 {
		t.Errorf("%d lines shipped, want 310 (x twice, z and w once)", len(got))
	}
}

// TestCopiedLinesNotCountedLost: with a glob that matches the copy, the
// lines a copytruncate left unread in the original are read from the copy:
// truncated_lost_bytes_total counts only the lines written after the copy
// and truncated away unread, not those.
func TestCopiedLinesNotCountedLost(t *testing.T) {
	l := newLifecycle(t, func(c *Config) {
		starGlob(c)
		c.MaxLineBytes = 16 << 10
		c.MaxInFlightBytes = 64 << 10
	})
	pub := &heldPublisher{} // far behind: nothing is acknowledged
	sh := runCopyWait(t, l.cfg, pub, 0)
	writeLines(t, l.path("app.log"), "t", 0, 20000) // ~2 MB
	pub.waitFor(t, 10, 10*time.Second)
	copyFile(t, l.path("app.log"), l.path("app.log.1"))
	copied, err := os.Stat(l.path("app.log.1"))
	if err != nil {
		t.Fatal(err)
	}
	writeLines(t, l.path("app.log"), "u", 0, 20) // after the copy: lost
	fi, err := os.Stat(l.path("app.log"))
	if err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the lag gauge to see the lines written after the copy", func() bool {
		return testutil.ToFloat64(sh.metrics.lagBytes) >= float64(fi.Size())
	})
	if err := os.Truncate(l.path("app.log"), 0); err != nil {
		t.Fatal(err)
	}
	pub.release()
	pub.waitFor(t, 20000, 20*time.Second)
	time.Sleep(300 * time.Millisecond)
	got := pub.shipped()
	assertOnce(t, got, "t", 20000)
	lost := testutil.ToFloat64(sh.metrics.truncatedBytesLost)
	want := float64(fi.Size() - copied.Size())
	t.Logf("truncated_lost_bytes_total %.0f, lines written after the copy %.0f bytes", lost, want)
	if lost != want {
		t.Errorf("truncated_lost_bytes_total = %.0f, want %.0f: only the lines written after the copy", lost, want)
	}
}

// TestAlikeOfClosedFileIsReadWhole: a file that starts like one read to
// its end and closed (close_inactive), which is still there untruncated,
// is no copy of it: it is read whole, not skipped to where the other was
// read to.
func TestAlikeOfClosedFileIsReadWhole(t *testing.T) {
	l := newLifecycle(t, func(c *Config) { c.CloseInactive = 200 * time.Millisecond })
	sh := runCopyWait(t, l.cfg, l.pub, 300*time.Millisecond)
	writeLines(t, l.path("a.log"), "x", 0, 100)
	l.pub.waitFor(t, 100, 10*time.Second)
	waitUntil(t, "a.log to be closed", func() bool { return sh.openFiles() == 0 })
	writeLines(t, l.path("b.log"), "x", 0, 100) // the same lines, another file
	l.pub.waitFor(t, 200, 10*time.Second)
	time.Sleep(300 * time.Millisecond) // anything more would come now
	if got := len(l.pub.shipped()); got != 200 {
		t.Errorf("%d lines shipped, want 200: both files whole", got)
	}
}

// TestCopyFoundAfterRestartNotReadAgain: the original's truncation is seen
// and the shipper restarted before the copy is found (here: the copy is
// moved into the glob while the shipper is stopped). The generation the
// truncation replaced is in the registry: the copy is recognised after the
// restart and read only from where the original was read to.
func TestCopyFoundAfterRestartNotReadAgain(t *testing.T) {
	l := newLifecycle(t, starGlob)
	writeLines(t, l.path("app.log"), "c", 0, 1000)
	_, stop := startShipper(t, l.cfg, l.pub)
	l.pub.waitFor(t, 1000, 10*time.Second)
	copyFile(t, l.path("app.log"), l.path("copy")) // out of the glob for now
	if err := os.Truncate(l.path("app.log"), 0); err != nil {
		t.Fatal(err)
	}
	writeLines(t, l.path("app.log"), "d", 0, 100)
	l.pub.waitFor(t, 1100, 10*time.Second)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(l.path("copy"), l.path("app.log.1")); err != nil {
		t.Fatal(err)
	}
	writeLines(t, l.path("app.log.1"), "c", 1000, 1010) // written to the copy since
	_, stop = startShipper(t, l.cfg, l.pub)
	shippedOnce(t, l.pub, map[string]int{"c": 1010, "d": 100})
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}

// TestCopyStillBeingWrittenWaits: a copy of a large file takes cp longer
// than the wait for its original's truncation. While it grows and holds
// what the original holds, byte for byte, it keeps waiting; once the
// original is truncated it is read from where the original was read to,
// not read whole because the wait ran out.
func TestCopyStillBeingWrittenWaits(t *testing.T) {
	l := newLifecycle(t, starGlob)
	runCopyWait(t, l.cfg, l.pub, time.Second) // not less: a loaded machine stalls the writer
	writeLines(t, l.path("app.log"), "c", 0, 3000)
	l.pub.waitFor(t, 3000, 10*time.Second)
	data, err := os.ReadFile(l.path("app.log"))
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(l.path("app.log.1"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	const pieces = 20 // 3 s of copying, 3 times the wait
	for i := range pieces {
		if _, err := f.Write(data[len(data)*i/pieces : len(data)*(i+1)/pieces]); err != nil {
			t.Fatal(err)
		}
		time.Sleep(150 * time.Millisecond)
	}
	if err := os.Truncate(l.path("app.log"), 0); err != nil {
		t.Fatal(err)
	}
	writeLines(t, l.path("app.log"), "d", 0, 100)
	shippedOnce(t, l.pub, map[string]int{"c": 3000, "d": 100})
}

// TestCopyAndOriginalFoundTogether: a copy and its original, both new to
// the shipper, are looked at at the same moment. Each one's check against
// the files read so far and its naming are one step: the second sees the
// first and waits (here the first to check is held until the other has
// checked too, or 300 ms), so that once the original is truncated, each
// line is shipped once, not both files whole.
func TestCopyAndOriginalFoundTogether(t *testing.T) {
	l := newLifecycle(t, starGlob)
	sh, err := New(l.cfg, prometheus.NewRegistry(), zaptest.NewLogger(t), WithPublisher(l.pub))
	if err != nil {
		t.Fatal(err)
	}
	var checks atomic.Int32
	both := make(chan struct{})
	sh.replaced.checked = func() {
		switch checks.Add(1) {
		case 1:
			select {
			case <-both:
			case <-time.After(300 * time.Millisecond):
			}
		case 2:
			close(both)
		}
	}
	writeLines(t, l.path("app.log"), "c", 0, 1000)
	copyFile(t, l.path("app.log"), l.path("app.log.1"))
	runShipper(t, sh)
	waitUntil(t, "both files to be checked", func() bool { return checks.Load() >= 2 })
	if err := os.Truncate(l.path("app.log"), 0); err != nil {
		t.Fatal(err)
	}
	writeLines(t, l.path("app.log"), "d", 0, 100)
	shippedOnce(t, l.pub, map[string]int{"c": 1000, "d": 100})
}

// TestLookAlikeOfTruncatedFileNeverSkipped: an application truncates its
// own log when it restarts (no copy); two other services' logs start with
// the same banner, longer than the fingerprint, one shorter and one longer
// than what was read of the truncated log. Neither is its copy: each is
// read whole, not from where the truncated log was read to.
func TestLookAlikeOfTruncatedFileNeverSkipped(t *testing.T) {
	l := newLifecycle(t, nil)
	runCopyWait(t, l.cfg, l.pub, 300*time.Millisecond)
	writeLines(t, l.path("a.log"), "banner", 0, 16) // 1.3 KiB alike
	writeLines(t, l.path("a.log"), "a", 0, 1000)
	l.pub.waitFor(t, 1016, 10*time.Second)
	if err := os.Truncate(l.path("a.log"), 0); err != nil {
		t.Fatal(err)
	}
	writeLines(t, l.path("a.log"), "x", 0, 10)
	l.pub.waitFor(t, 1026, 10*time.Second) // the truncation is seen: a generation replaced
	for _, name := range []string{"b.log", "c.log"} {
		writeLines(t, l.path(name), "banner", 0, 16)
	}
	writeLines(t, l.path("b.log"), "b", 0, 100)  // shorter than a.log was read
	writeLines(t, l.path("c.log"), "c", 0, 2000) // longer
	l.pub.waitFor(t, 1000+10+100+2000+3*16, 10*time.Second)
	time.Sleep(500 * time.Millisecond) // anything more would come now
	got := l.pub.shipped()
	for prefix, n := range map[string]int{"a": 1000, "x": 10, "b": 100, "c": 2000} {
		assertOnce(t, got, prefix, n)
	}
	banners := map[string]int{}
	for _, ev := range got {
		if strings.HasPrefix(idOf(string(ev.Line)), "banner") {
			banners[filepath.Base(ev.Path)]++
		}
	}
	if len(got) != 3158 || banners["a.log"] != 16 || banners["b.log"] != 16 || banners["c.log"] != 16 {
		t.Errorf("%d lines shipped, banner lines by file %v; want 3158, 16 from each file", len(got), banners)
	}
}

// TestCopytruncateWithTracePending: the file is copied and truncated while
// the joiner holds the first lines of a stack trace (waiting for more, or
// its timeout), its copy under the glob. The trace's lines read before the
// truncation are shipped once, as one event, and the copy is read only from
// where the original was read to: every line once, nothing glued to the
// new content.
func TestCopytruncateWithTracePending(t *testing.T) {
	l := newLifecycle(t, func(c *Config) {
		starGlob(c)
		withMultiline(MultilineConfig{Preset: "java", Timeout: 3 * time.Second})(c)
	})
	sh := runCopyWait(t, l.cfg, l.pub, 300*time.Millisecond)
	path := l.path("app.log")
	writeLines(t, path, "c", 0, 100)
	appendTo(t, path, "java.lang.IllegalStateException: id=trace0\n\tat a.B.c(B.java:1)\n")
	l.pub.waitFor(t, 99, 10*time.Second) // c99 and the trace are held, one event
	waitReading(t, sh, path)
	time.Sleep(200 * time.Millisecond)
	if n := len(l.pub.shipped()); n != 99 {
		t.Fatalf("%d events before the copy, want 99: the trace held", n)
	}
	copyFile(t, path, l.path("app.log.1"))
	writeLines(t, l.path("app.log.1"), "c", 100, 110) // the copy's window lines
	if err := os.Truncate(path, 0); err != nil {
		t.Fatal(err)
	}
	writeLines(t, path, "d", 0, 50)
	// The exception's line continues c99's (the java preset's "message,
	// then exception" form): 160 events.
	got := l.pub.waitFor(t, 100+10+50, 10*time.Second)
	time.Sleep(500 * time.Millisecond)
	got = l.pub.shipped()
	assertOnce(t, got, "c", 110)
	assertOnce(t, got, "d", 50)
	traces := 0
	for _, ev := range got {
		if strings.Contains(string(ev.Line), "id=trace0") {
			traces++
			if !strings.HasSuffix(string(ev.Line), "\n\tat a.B.c(B.java:1)") {
				t.Errorf("the trace shipped as %q", ev.Line)
			}
		}
	}
	if traces != 1 || len(got) != 160 {
		t.Errorf("trace shipped %d times, %d events; want once, 160", traces, len(got))
	}
}

// TestLookAlikeOfClosedRewrittenFileNeverSkipped: a.log was read to its end
// and released (close_inactive); its application restarts and rewrites it
// from the start with the same banner (shorter now), and another instance
// starts b.log with that banner too. b.log is no copy of a.log: it is read
// whole, whichever of the two the shipper looks at first.
func TestLookAlikeOfClosedRewrittenFileNeverSkipped(t *testing.T) {
	l := newLifecycle(t, func(c *Config) { c.CloseInactive = 200 * time.Millisecond })
	sh := runCopyWait(t, l.cfg, l.pub, 300*time.Millisecond)
	writeLines(t, l.path("a.log"), "banner", 0, 16)
	writeLines(t, l.path("a.log"), "a", 0, 1000)
	l.pub.waitFor(t, 1016, 10*time.Second)
	waitUntil(t, "a.log to be closed", func() bool { return sh.openFiles() == 0 })
	writeAlike(t, l)
	shippedAlike(t, l)
}

// BenchmarkCopyCheck measures the check of a new file read from 0 against
// the files read so far (skipCopied), with 500 files open: it runs for
// every new file, and again at every poll while one waits.
func BenchmarkCopyCheck(b *testing.B) {
	dir := b.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "logs"), 0o755); err != nil {
		b.Fatal(err)
	}
	cfg := testConfig(dir)
	cfg.CloseInactive = time.Hour
	const files = 500
	for i := range files {
		var data strings.Builder
		for j := range 20 {
			fmt.Fprintf(&data, "line id=f%d-%d some padding to make the line a realistic length for a log line\n", i, j)
		}
		if err := os.WriteFile(filepath.Join(dir, "logs", fmt.Sprintf("f%03d.log", i)), []byte(data.String()), 0o644); err != nil {
			b.Fatal(err)
		}
	}
	sh, err := New(cfg, prometheus.NewRegistry(), zap.NewNop(), WithPublisher(&nullPublisher{}))
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- sh.Run(ctx) }()
	defer func() { cancel(); <-done }()
	for sh.openFiles() < files {
		time.Sleep(10 * time.Millisecond)
	}
	f, err := os.Open(filepath.Join(dir, "logs", "f000.log"))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	head := []byte("line id=new0 some padding to make the line a realistic length for a log line\n")
	b.ResetTimer()
	for range b.N {
		sh.copyOfHead(f, devIno{Dev: 1, Ino: 1}, head, int64(len(head)))
	}
}

// TestLookAlikeAfterRestartNeverSkipped: while the shipper is stopped,
// a.log (open when it stopped) is rewritten from the start by its
// application, with the same banner, and another instance starts b.log
// with it. After the restart b.log is read whole: the registry's entry of
// a.log carries the mark of the line it was acknowledged to, which b.log
// does not hold.
func TestLookAlikeAfterRestartNeverSkipped(t *testing.T) {
	l := newLifecycle(t, nil)
	writeLines(t, l.path("a.log"), "banner", 0, 16)
	writeLines(t, l.path("a.log"), "a", 0, 1000)
	_, stop := startShipper(t, l.cfg, l.pub)
	l.pub.waitFor(t, 1016, 10*time.Second)
	time.Sleep(300 * time.Millisecond) // the registry flushed
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	writeAlike(t, l)
	_, stop = startShipper(t, l.cfg, l.pub)
	defer stop()
	shippedAlike(t, l)
}

// writeAlike rewrites a.log (read to a0..a999 after a 16-line banner) from
// the start, with the banner and 10 lines, and starts b.log with the
// banner and 1200 lines of its own.
func writeAlike(t *testing.T, l *lifecycle) {
	t.Helper()
	if err := os.Truncate(l.path("a.log"), 0); err != nil {
		t.Fatal(err)
	}
	writeLines(t, l.path("a.log"), "banner", 0, 16)
	writeLines(t, l.path("a.log"), "x", 0, 10)
	writeLines(t, l.path("b.log"), "banner", 0, 16)
	writeLines(t, l.path("b.log"), "b", 0, 1200)
}

// shippedAlike checks that a.log's lines before and after writeAlike and
// all of b.log's were shipped, once.
func shippedAlike(t *testing.T, l *lifecycle) {
	t.Helper()
	const total = 1016 + 26 + 1216
	l.pub.waitFor(t, total, 10*time.Second)
	time.Sleep(500 * time.Millisecond)
	got := l.pub.shipped()
	for prefix, n := range map[string]int{"a": 1000, "x": 10, "b": 1200} {
		assertOnce(t, got, prefix, n)
	}
	if len(got) != total {
		t.Errorf("%d lines shipped, want %d", len(got), total)
	}
}
