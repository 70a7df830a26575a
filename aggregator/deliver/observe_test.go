package deliver

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/sluicelog/sluice/internal/telemetry"
)

// TestWatchDeliveryFollowsBulkResults: failed bulk requests turn
// elasticsearch_accepting to 0 within a tick, documents indexed turn it to
// 1 and count as progress.
func TestWatchDeliveryFollowsBulkResults(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg)
	var pings atomic.Int32
	progress := telemetry.NewProgress(telemetry.ProgressOptions{StallAfter: time.Minute})
	ready := func(context.Context) error { pings.Add(1); return nil }
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go m.WatchDelivery(ctx, 10*time.Millisecond, ready, progress.Advance)
	accepting := func(want float64) func() bool {
		return func() bool { return testutil.ToFloat64(m.esAccepting) == want }
	}
	eventually(t, time.Second, "accepting 1 from the first ping", accepting(1))
	m.bulkRequests.WithLabelValues("error").Inc()
	eventually(t, time.Second, "accepting 0 after a failed bulk request", accepting(0))
	m.bulkRequests.WithLabelValues("200").Inc()
	m.indexed.Add(5)
	eventually(t, time.Second, "accepting 1 after documents indexed", accepting(1))
	m.retries.Add(3)
	eventually(t, time.Second, "accepting 0 after items retried with nothing indexed", accepting(0))
	progress.Waiting(1)
	if stalled, _ := progress.Stalled(); stalled {
		t.Error("stalled right after documents were indexed")
	}
	if n := pings.Load(); n != 1 {
		t.Errorf("%d pings while bulk results came every tick, want 1 (at start)", n)
	}
}

// eventually waits up to timeout for cond, checking every 10ms.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %s: %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
