package shipper

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap/zaptest"

	"github.com/sluicelog/sluice/internal/event"
)

// unackedPublisher takes records and never acknowledges them: Kafka has
// the lines, the shipper dies before it hears so.
type unackedPublisher struct {
	mu sync.Mutex
	n  int
}

func (p *unackedPublisher) Prepare(context.Context, string) error { return nil }
func (p *unackedPublisher) Close(context.Context) error           { return nil }
func (p *unackedPublisher) Publish(context.Context, *kgo.Record, func()) error {
	p.mu.Lock()
	p.n++
	p.mu.Unlock()
	return nil
}

func (p *unackedPublisher) count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.n
}

// TestResentAfterRestart: lines produced but never acknowledged before the
// shipper stopped are read again after its restart, flagged resent (the
// aggregator then looks them up before writing: a line without its own
// time gets a new read time, maybe another day's index). Lines written
// after the restart are not flagged, nor is anything after a clean run.
func TestResentAfterRestart(t *testing.T) {
	l := newLifecycle(t, func(c *Config) { c.ShutdownTimeout = 100 * time.Millisecond })
	writeLines(t, l.path("app.log"), "a", 0, 10)
	unacked := &unackedPublisher{}
	sh, err := New(l.cfg, prometheus.NewRegistry(), zaptest.NewLogger(t), WithPublisher(unacked))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- sh.Run(ctx) }()
	waitUntil(t, "10 lines produced", func() bool { return unacked.count() == 10 })
	cancel()
	<-done // in-flight lines are given up on: the registry stays at 0

	l.start()
	got := l.pub.waitFor(t, 10, 10*time.Second)
	for _, ev := range got {
		if !ev.HasFlag(event.FlagResent) {
			t.Errorf("line at %d, produced before the restart, is not flagged resent: %v", ev.Offset, ev.Flags)
		}
	}
	writeLines(t, l.path("app.log"), "a", 10, 15)
	got = l.pub.waitFor(t, 15, 10*time.Second)
	for _, ev := range got[10:] {
		if ev.HasFlag(event.FlagResent) {
			t.Errorf("line at %d, written after the restart, is flagged resent", ev.Offset)
		}
	}
	l.stop()

	// A clean stop acknowledged everything: the next run re-reads nothing
	// and flags nothing.
	writeLines(t, l.path("app.log"), "a", 15, 20)
	l.start()
	got = l.pub.waitFor(t, 20, 10*time.Second)
	time.Sleep(200 * time.Millisecond)
	if n := len(l.pub.shipped()); n != 20 {
		t.Errorf("%d lines shipped in all, want 20", n)
	}
	for _, ev := range got[15:] {
		if ev.HasFlag(event.FlagResent) {
			t.Errorf("line at %d, after a clean restart, is flagged resent", ev.Offset)
		}
	}
}
