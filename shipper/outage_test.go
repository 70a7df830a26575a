package shipper

import (
	"context"
	"runtime"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestKafkaOutage cuts the shipper off Kafka (through a TCP proxy) while
// lines keep being written: reading stops at the in-flight bound, memory
// stays bounded, /readyz reports Kafka unreachable, and once Kafka is back
// every line arrives.
func TestKafkaOutage(t *testing.T) {
	h := newHarness(t, func(c *Config) {
		c.MaxInFlightBytes = 1 << 20
		c.MaxLineBytes = 64 << 10
	})
	proxy, addr := h.stack.KafkaProxy(t)
	h.cfg.Kafka.Brokers = []string{addr}
	h.start()
	writeLines(t, h.path("app.log"), "o", 0, 2000)
	h.records(2000, 30*time.Second)

	proxy.Cut()
	const total = 150000 // ~14 MiB written while Kafka is unreachable
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 2000; i < total; i += 10000 {
			writeLines(t, h.path("app.log"), "o", i, min(i+10000, total))
			time.Sleep(100 * time.Millisecond)
		}
	}()
	var peakInFlight float64
	var peakHeap uint64
	deadline := time.Now().Add(4 * time.Second)
	for time.Now().Before(deadline) {
		peakInFlight = max(peakInFlight, testutil.ToFloat64(h.sh.metrics.inFlightBytes))
		runtime.GC() // live heap, not garbage awaiting collection
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		peakHeap = max(peakHeap, ms.HeapAlloc)
		time.Sleep(200 * time.Millisecond)
	}
	<-done
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	if err := h.sh.producer.ping(ctx); err == nil {
		t.Error("readiness check passes while Kafka is unreachable")
	}
	cancel()
	if peakInFlight > float64(h.cfg.MaxInFlightBytes) {
		t.Errorf("in-flight bytes peaked at %.0f, over the bound %d", peakInFlight, h.cfg.MaxInFlightBytes)
	}
	if peakHeap > 64<<20 {
		t.Errorf("live heap peaked at %d MiB during the outage", peakHeap>>20)
	}
	t.Logf("during the outage: in-flight peak %.0f bytes (bound %d), live heap peak %d MiB", peakInFlight, h.cfg.MaxInFlightBytes, peakHeap>>20)

	proxy.Restore()
	h.assertIDs(h.records(total, 2*time.Minute), "o", total)
}
