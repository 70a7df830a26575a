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
	l.cfg = Config{
		Node: "test", Registry: filepath.Join(dir, "registry"),
		Inputs:                []InputConfig{{Type: "service", Paths: []string{filepath.Join(dir, "logs", "*.log")}}},
		ScanInterval:          100 * time.Millisecond,
		RegistryFlush:         100 * time.Millisecond,
		CloseRemovedAfter:     500 * time.Millisecond,
		UnterminatedLineAfter: 500 * time.Millisecond,
	}
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
	seen := map[string]int{}
	for _, ev := range got {
		line := string(ev.Line)
		if !strings.HasPrefix(line, "line id=") && !strings.HasPrefix(line, "other content id=") {
			t.Errorf("fragment shipped: %q at offset %d", line, ev.Offset)
		}
		seen[idOf(line)]++
	}
	for i := range 400 {
		if n := seen[fmt.Sprintf("t%d", i)]; n != 1 {
			t.Errorf("line t%d shipped %d times", i, n)
		}
	}
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
