package consume

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// trickleConsumer is a testConsumer whose records arrive one batch every
// gap: nothing is ever buffered (a poll without a context finds nothing),
// and a waiting poll gets the next batch after gap.
type trickleConsumer struct {
	*testConsumer
	gap time.Duration
}

func (c *trickleConsumer) PollRecords(ctx context.Context, n int) kgo.Fetches {
	if ctx == nil {
		return nil
	}
	select {
	case <-time.After(c.gap):
	case <-ctx.Done():
		return kgo.NewErrFetch(ctx.Err())
	}
	return c.testConsumer.PollRecords(ctx, n)
}

// TestFlowTrickleFillsRequests: records arriving one at a time, every
// poll coming back empty in between, go out in requests of many documents
// at flush_interval, not one request per poll.
func TestFlowTrickleFillsRequests(t *testing.T) {
	s := newTestSink(true)
	a := testAggregator(t, s, 4, 1<<20)
	a.cfg.Elasticsearch.FlushInterval = 200 * time.Millisecond
	const n = 40
	c := &trickleConsumer{newTestConsumer(t, s, flowBatches(n, 1)), 10 * time.Millisecond}
	stop, _ := consumeInBackground(t, a, c)
	c.waitCommitted(t, n)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if got := s.requests(); got > n/5 {
		t.Errorf("%d requests for %d records arriving every 10ms with flush_interval 200ms, want at most %d", got, n, n/5)
	} else {
		t.Logf("%d requests for %d records", got, n)
	}
}

// TestFlowQuietLineSentWithinFlushInterval: a lone record, with nothing
// after it, is sent by the timer once flush_interval has passed, while the
// poll loop waits for records that do not come.
func TestFlowQuietLineSentWithinFlushInterval(t *testing.T) {
	s := newTestSink(false)
	a := testAggregator(t, s, 4, 1<<20)
	const interval = 300 * time.Millisecond
	a.cfg.Elasticsearch.FlushInterval = interval
	c := newTestConsumer(t, s, flowBatches(1, 1))
	start := time.Now()
	stop, _ := consumeInBackground(t, a, c)
	call := s.next(t)
	took := time.Since(start)
	call.release <- nil
	c.waitCommitted(t, 1)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if took < interval*9/10 || took > interval+500*time.Millisecond {
		t.Errorf("a lone record was sent after %s, want at flush_interval (%s)", took, interval)
	}
}

// TestFlowCatchUpKeepsWorkersBusy: with records buffered poll after poll
// (catch-up), full requests go out at once, workers of them in flight,
// however long flush_interval is.
func TestFlowCatchUpKeepsWorkersBusy(t *testing.T) {
	s := newTestSink(false)
	const workers = 3
	a := testAggregator(t, s, workers, 1500) // a few documents a request
	a.cfg.Elasticsearch.FlushInterval = time.Minute
	c := newTestConsumer(t, s, flowBatches(40, 2))
	stop, _ := consumeInBackground(t, a, c)
	var held []*sinkCall
	for range workers {
		held = append(held, s.next(t))
	}
	for _, h := range held {
		t.Logf("a request of %d documents", len(h.items))
		if len(h.items) < 2 {
			t.Errorf("a request of %d documents during catch-up", len(h.items))
		}
		h.release <- nil
	}
	s.releaseAll(t)
	// The last request, not full, would wait the minute: a stop sends it.
	waitFor(t, 10*time.Second, "every batch polled", func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.next == len(c.batches)
	})
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if c.committed != 80 {
		t.Errorf("committed up to %d after the stop, want 80", c.committed)
	}
	if s.maxFlight != workers {
		t.Errorf("at most %d requests in flight during catch-up, want the %d workers", s.maxFlight, workers)
	}
}
