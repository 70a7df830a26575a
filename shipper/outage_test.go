package shipper

import (
	"context"
	"errors"
	"runtime"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap/zaptest"
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

// TestShutdownDuringKafkaOutage stops the shipper (as SIGTERM does) while
// Kafka is unreachable and a large budget (128 MiB) holds more records than
// franz-go buffers by default: it stops within shutdown_timeout and writes
// its registry, and after a restart with Kafka back every line arrives.
func TestShutdownDuringKafkaOutage(t *testing.T) {
	h := newHarness(t, func(c *Config) {
		c.MaxInFlightBytes = 128 << 20
		c.ShutdownTimeout = 2 * time.Second
	})
	proxy, addr := h.stack.KafkaProxy(t)
	h.cfg.Kafka.Brokers = []string{addr}
	sh, err := New(h.cfg, prometheus.NewRegistry(), zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- sh.Run(ctx) }()
	writeLines(t, h.path("app.log"), "s", 0, 2000)
	h.records(2000, 30*time.Second)

	proxy.Cut()
	const total = 100000 // more records than franz-go's default cap of 10,000
	writeLines(t, h.path("app.log"), "s", 2000, total)
	read := sh.metrics.linesRead.WithLabelValues("service")
	deadline := time.Now().Add(30 * time.Second)
	for testutil.ToFloat64(read) < total {
		if time.Now().After(deadline) {
			cancel()
			t.Fatalf("read %v of %d lines while Kafka is unreachable", testutil.ToFloat64(read), total)
		}
		time.Sleep(50 * time.Millisecond)
	}
	start := time.Now()
	cancel()
	select {
	case err := <-done:
		// Records still unacknowledged at the deadline are reported; the
		// registry keeps their lines unread.
		if err != nil && !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Run: %v", err)
		}
		t.Logf("stopped %v after the signal (shutdown_timeout %v): %v", time.Since(start).Round(time.Millisecond), h.cfg.ShutdownTimeout, err)
	case <-time.After(h.cfg.ShutdownTimeout + 8*time.Second):
		proxy.Restore() // let it finish before the test ends
		<-done
		t.Fatalf("still running %v after the signal with shutdown_timeout %v", h.cfg.ShutdownTimeout+8*time.Second, h.cfg.ShutdownTimeout)
	}

	proxy.Restore()
	h.start()
	h.assertIDs(h.records(total, 2*time.Minute), "s", total)
}
