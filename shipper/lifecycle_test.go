package shipper

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap/zaptest"

	"github.com/sluicelog/sluice/internal/event"
)

// collectingPublisher acknowledges every record at once and keeps the
// events it carried.
type collectingPublisher struct {
	mu     sync.Mutex
	events []event.Event
}

func (p *collectingPublisher) Prepare(context.Context, string) error { return nil }
func (p *collectingPublisher) Close(context.Context) error           { return nil }
func (p *collectingPublisher) Publish(_ context.Context, rec *kgo.Record, acked func()) error {
	ev, err := event.Decode(rec)
	if err != nil {
		return err
	}
	ev.Line = append([]byte(nil), ev.Line...)
	p.mu.Lock()
	p.events = append(p.events, ev)
	p.mu.Unlock()
	acked()
	return nil
}

// shipped returns the events published so far.
func (p *collectingPublisher) shipped() []event.Event {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]event.Event(nil), p.events...)
}

// waitFor waits until n events were published.
func (p *collectingPublisher) waitFor(t *testing.T, n int, timeout time.Duration) []event.Event {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		got := p.shipped()
		if len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d lines shipped after %v", len(got), n, timeout)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// lifecycle runs a shipper over dir/logs/*.log into a collectingPublisher.
type lifecycle struct {
	t    *testing.T
	dir  string
	cfg  Config
	pub  *collectingPublisher
	sh   *Shipper
	stop func()
}

func newLifecycle(t *testing.T, adjust func(*Config)) *lifecycle {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "logs"), 0o755); err != nil {
		t.Fatal(err)
	}
	l := &lifecycle{t: t, dir: dir, pub: &collectingPublisher{}}
	l.cfg = testConfig(dir)
	if adjust != nil {
		adjust(&l.cfg)
	}
	return l
}

func (l *lifecycle) path(name string) string { return filepath.Join(l.dir, "logs", name) }

// start runs the shipper until stop or the end of the test.
func (l *lifecycle) start() {
	sh, err := New(l.cfg, prometheus.NewRegistry(), zaptest.NewLogger(l.t), WithPublisher(l.pub))
	if err != nil {
		l.t.Fatal(err)
	}
	l.sh = sh
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- sh.Run(ctx) }()
	var once sync.Once
	l.stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				l.t.Errorf("Run: %v", err)
			}
		})
	}
	l.t.Cleanup(l.stop)
}

// TestRewrittenInPlaceBeforeRead rewrites a file from its start with more
// than it held, in one write, while the shipper is waiting at its end (as
// a truncation followed by a burst of writes looks when the shipper wakes
// after both): the new content is read from offset 0 as a new generation,
// with no fragment read from the old offset and no line shipped twice.
func TestRewrittenInPlaceBeforeRead(t *testing.T) {
	l := newLifecycle(t, nil)
	writeLines(t, l.path("app.log"), "t", 0, 100)
	l.start()
	l.pub.waitFor(t, 100, 10*time.Second)
	var b strings.Builder
	for i := 100; i < 400; i++ {
		fmt.Fprintf(&b, "other content id=t%d longer than the lines it replaces\n", i)
	}
	f, err := os.OpenFile(l.path("app.log"), os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte(b.String()), 0); err != nil {
		t.Fatal(err)
	}
	f.Close()
	got := l.pub.waitFor(t, 400, 10*time.Second)
	time.Sleep(300 * time.Millisecond) // anything more would come now
	got = l.pub.shipped()
	for _, ev := range got {
		line := string(ev.Line)
		if !strings.HasPrefix(line, "line id=") && !strings.HasPrefix(line, "other content id=") {
			t.Errorf("fragment shipped: %q at offset %d", line, ev.Offset)
		}
	}
	assertOnce(t, got, "t", 400)
	if len(got) != 400 {
		t.Errorf("%d lines shipped, want 400", len(got))
	}
}

// TestLineWrittenInTwoPiecesAfterQuiet writes a line in two pieces 300 ms
// apart after the file was quiet for longer than unterminated_line_after:
// the line is shipped whole, not its first piece as an unterminated line.
func TestLineWrittenInTwoPiecesAfterQuiet(t *testing.T) {
	l := newLifecycle(t, func(c *Config) { c.UnterminatedLineAfter = time.Second })
	writeLines(t, l.path("app.log"), "q", 0, 1)
	l.start()
	l.pub.waitFor(t, 1, 10*time.Second)
	time.Sleep(1500 * time.Millisecond) // quiet for longer than unterminated_line_after
	f, err := os.OpenFile(l.path("app.log"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString("line id=q1 first piece, "); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	if _, err := f.WriteString("second piece\n"); err != nil {
		t.Fatal(err)
	}
	got := l.pub.waitFor(t, 2, 10*time.Second)
	time.Sleep(1500 * time.Millisecond) // a split second piece would come by now
	got = l.pub.shipped()
	if len(got) != 2 || string(got[1].Line) != "line id=q1 first piece, second piece" || len(got[1].Flags) != 0 {
		for _, ev := range got {
			t.Logf("shipped %q, flags %v", ev.Line, ev.Flags)
		}
		t.Fatalf("the line written in two pieces was not shipped whole")
	}
}

// TestMaxOpenFilesTakesTurns reads three files through one open-file slot:
// a file read to its end gives the slot up while others wait, so every line
// of every file is shipped, and none waits at the end.
func TestMaxOpenFilesTakesTurns(t *testing.T) {
	l := newLifecycle(t, func(c *Config) { c.MaxOpenFiles = 1 })
	for _, name := range []string{"a", "b", "c"} {
		writeLines(t, l.path(name+".log"), name, 0, 10)
	}
	l.start()
	got := l.pub.waitFor(t, 30, 15*time.Second)
	for _, name := range []string{"a", "b", "c"} {
		assertOnce(t, got, name, 10)
	}
	deadline := time.Now().Add(5 * time.Second)
	for testutil.ToFloat64(l.sh.metrics.filesWaiting) != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("sluice_shipper_files_waiting = %v after every line was shipped", testutil.ToFloat64(l.sh.metrics.filesWaiting))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestInactiveFileReleasedAndReopened: a file read to its end is released
// after close_inactive, is not opened again while unchanged, and is opened
// again from its offset once written to.
func TestInactiveFileReleasedAndReopened(t *testing.T) {
	l := newLifecycle(t, func(c *Config) { c.CloseInactive = 300 * time.Millisecond })
	writeLines(t, l.path("app.log"), "r", 0, 5)
	l.start()
	l.pub.waitFor(t, 5, 10*time.Second)
	waitUntil(t, "the inactive file to be released", func() bool { return l.sh.openFiles() == 0 })
	time.Sleep(500 * time.Millisecond) // several scans
	if n := l.sh.openFiles(); n != 0 {
		t.Fatalf("%d files open again while unchanged", n)
	}
	writeLines(t, l.path("app.log"), "r", 5, 10)
	got := l.pub.waitFor(t, 10, 10*time.Second)
	time.Sleep(200 * time.Millisecond)
	got = l.pub.shipped()
	if len(got) != 10 {
		t.Fatalf("%d lines shipped, want 10 (the reopened file read from its offset)", len(got))
	}
	for i, ev := range got {
		if id := idOf(string(ev.Line)); id != fmt.Sprintf("r%d", i) {
			t.Fatalf("line %d is %s", i, id)
		}
	}
}

// TestCleanAfterCountsFromGone: a file still matched by the globs keeps its
// registry entry however long it is quiet (nothing is shipped again after a
// restart), and a deleted file's entry is forgotten after clean_after.
func TestCleanAfterCountsFromGone(t *testing.T) {
	l := newLifecycle(t, func(c *Config) {
		c.CloseInactive = 100 * time.Millisecond
		c.CleanAfter = 300 * time.Millisecond
	})
	writeLines(t, l.path("kept.log"), "k", 0, 5)
	writeLines(t, l.path("deleted.log"), "d", 0, 5)
	l.start()
	l.pub.waitFor(t, 10, 10*time.Second)
	waitUntil(t, "both files to be released", func() bool { return l.sh.openFiles() == 0 })
	if err := os.Remove(l.path("deleted.log")); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second) // over three times clean_after
	paths := map[string]bool{}
	for _, e := range l.sh.registry.snapshot() {
		paths[filepath.Base(e.Path)] = true
	}
	if !paths["kept.log"] || paths["deleted.log"] {
		t.Fatalf("registry holds %v; want kept.log (still there) and not deleted.log (gone longer than clean_after)", paths)
	}
	l.stop()
	l.start()
	time.Sleep(500 * time.Millisecond)
	if n := len(l.pub.shipped()); n != 10 {
		t.Fatalf("%d lines shipped after the restart, want the 10 of before: kept.log was read again", n)
	}
}

// TestRenameOutOfGlobCounted renames the file being read to a name the glob
// does not match (app.log to app.log.1 with *.log), as logrotate does: the
// rotation is counted and logged, the old file is read to its end and the
// new app.log from its start.
func TestRenameOutOfGlobCounted(t *testing.T) {
	l := newLifecycle(t, nil)
	writeLines(t, l.path("app.log"), "o", 0, 10)
	l.start()
	l.pub.waitFor(t, 10, 10*time.Second)
	if err := os.Rename(l.path("app.log"), l.path("app.log.1")); err != nil {
		t.Fatal(err)
	}
	writeLines(t, l.path("app.log.1"), "o", 10, 20) // late writes to the old file
	writeLines(t, l.path("app.log"), "o", 20, 30)
	l.pub.waitFor(t, 30, 10*time.Second)
	waitUntil(t, "the rotation to be counted", func() bool { return testutil.ToFloat64(l.sh.metrics.rotations) == 1 })
}

// assertOnce checks that each line with id prefix0 .. prefix(n-1) was
// shipped exactly once.
func assertOnce(t *testing.T, events []event.Event, prefix string, n int) {
	t.Helper()
	seen := map[string]int{}
	for _, ev := range events {
		seen[idOf(string(ev.Line))]++
	}
	for i := range n {
		if c := seen[fmt.Sprintf("%s%d", prefix, i)]; c != 1 {
			t.Errorf("line %s%d shipped %d times", prefix, i, c)
		}
	}
}

// waitUntil polls cond for up to 10 s.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestRenamedWhileStopped: lines written to app.log after the shipper
// stopped, then app.log renamed to app.log.1 (outside the *.log glob) and a
// new app.log started, as logrotate does while the shipper is down: after
// the restart the old file is read to its end from its offset, and the new
// one from its start.
func TestRenamedWhileStopped(t *testing.T) {
	l := newLifecycle(t, nil)
	writeLines(t, l.path("app.log"), "w", 0, 10)
	l.start()
	l.pub.waitFor(t, 10, 10*time.Second)
	l.stop()
	writeLines(t, l.path("app.log"), "w", 10, 20)
	if err := os.Rename(l.path("app.log"), l.path("app.log.1")); err != nil {
		t.Fatal(err)
	}
	writeLines(t, l.path("app.log"), "w", 20, 30)
	l.start()
	l.pub.waitFor(t, 30, 10*time.Second)
	time.Sleep(300 * time.Millisecond)
	assertOnce(t, l.pub.shipped(), "w", 30)
}

// TestResumeIgnoresReusedInode deletes app.log while the shipper is
// stopped and writes compressed rotations into the directory until one
// gets app.log's inode (ext4 hands out freed inodes again): at start the
// shipper does not take that file, outside the globs, for the renamed
// app.log and ships nothing of it.
func TestResumeIgnoresReusedInode(t *testing.T) {
	l := newLifecycle(t, nil)
	writeLines(t, l.path("app.log"), "w", 0, 10)
	l.start()
	l.pub.waitFor(t, 10, 10*time.Second)
	l.stop()
	fi, err := os.Stat(l.path("app.log"))
	if err != nil {
		t.Fatal(err)
	}
	old, _ := statDevIno(fi)
	if err := os.Remove(l.path("app.log")); err != nil {
		t.Fatal(err)
	}
	reused := false
	for i := 0; i < 50 && !reused; i++ {
		p := l.path(fmt.Sprintf("app.log.%d.gz", i))
		if err := os.WriteFile(p, []byte(strings.Repeat("\x1f\x8b compressed\n", 100)), 0o644); err != nil {
			t.Fatal(err)
		}
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		di, _ := statDevIno(fi)
		reused = di == old
	}
	t.Logf("a compressed rotation got app.log's inode: %v", reused)
	writeLines(t, l.path("app.log"), "n", 0, 3)
	l.start()
	l.pub.waitFor(t, 13, 10*time.Second)
	time.Sleep(300 * time.Millisecond)
	for _, ev := range l.pub.shipped() {
		if strings.HasSuffix(ev.Path, ".gz") {
			t.Fatalf("shipped from %s, outside the globs: %q", ev.Path, ev.Line)
		}
	}
}

// TestReleasedFileWrittenIsOpenedAtOnce: a write to a file released by
// close_inactive opens it again on the filesystem notification, not at the
// next scan_interval (10 s here); and a same-size rewrite with a new
// modification time is read too.
func TestReleasedFileWrittenIsOpenedAtOnce(t *testing.T) {
	l := newLifecycle(t, func(c *Config) {
		c.ScanInterval = 10 * time.Second
		c.CloseInactive = 100 * time.Millisecond
	})
	writeLines(t, l.path("app.log"), "x", 0, 5)
	l.start()
	l.pub.waitFor(t, 5, 5*time.Second)
	waitUntil(t, "the file to be released", func() bool { return l.sh.openFiles() == 0 })
	start := time.Now()
	writeLines(t, l.path("app.log"), "x", 5, 6)
	l.pub.waitFor(t, 6, 3*time.Second)
	t.Logf("a write to the released file shipped after %v", time.Since(start).Round(time.Millisecond))

	waitUntil(t, "the file to be released again", func() bool { return l.sh.openFiles() == 0 })
	data, err := os.ReadFile(l.path("app.log"))
	if err != nil {
		t.Fatal(err)
	}
	rewritten := strings.ReplaceAll(string(data), "line id=x", "LINE id=y")
	if err := os.WriteFile(l.path("app.log"), []byte(rewritten), 0o644); err != nil {
		t.Fatal(err)
	}
	got := l.pub.waitFor(t, 12, 3*time.Second)
	if id := idOf(string(got[11].Line)); id != "y5" {
		t.Fatalf("last line shipped is %q, want the rewritten y5", got[11].Line)
	}
}
