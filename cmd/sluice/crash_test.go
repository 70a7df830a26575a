package main

import (
	"math/rand/v2"
	"path/filepath"
	"testing"
	"time"
)

// writeInBackground appends service lines [0, n) to path in chunks, and
// closes the returned channel when done.
func writeInBackground(t *testing.T, path string, n, chunk int, pause time.Duration) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < n; i += chunk {
			appendLines(t, path, serviceLines(i, min(i+chunk, n), "checkout"))
			time.Sleep(pause)
		}
	}()
	return done
}

// assertExactly waits for want documents and checks that no more arrive.
func assertExactly(t *testing.T, p *pipeline, want int) {
	t.Helper()
	if got := p.stack.WaitCount(t, p.indexPattern, want, 2*time.Minute); got != want {
		t.Fatalf("indexed %d documents, want %d", got, want)
	}
	time.Sleep(3 * time.Second)
	if got := p.stack.Count(t, p.indexPattern); got != want {
		t.Fatalf("%d documents, want exactly %d: duplicates were indexed", got, want)
	}
}

// TestShipperKilled kills the shipper with SIGKILL at random points while
// lines are written, restarts it each time, and expects every line indexed
// exactly once: lines re-sent from the unacknowledged tail carry the same
// document ids.
func TestShipperKilled(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test needs Kafka and Elasticsearch")
	}
	p := newPipeline(t)
	path := filepath.Join(p.logs, "services/prod/acme/checkout/app.log")
	const total = 40000
	done := writeInBackground(t, path, total, 500, 20*time.Millisecond)
	agg := startSluice(t, "aggregate", "-c", p.aggCfg)
	for i := 0; i < 3; i++ {
		ship := startSluice(t, "ship", "-c", p.shipperCfg)
		time.Sleep(time.Duration(200+rand.IntN(600)) * time.Millisecond)
		ship.kill()
	}
	<-done
	ship := startSluice(t, "ship", "-c", p.shipperCfg)
	assertExactly(t, p, total)
	ship.stop()
	agg.stop()
}

// TestAggregatorKilled kills the aggregator with SIGKILL mid-stream twice;
// records it had not committed are consumed again and overwrite their own
// documents.
func TestAggregatorKilled(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test needs Kafka and Elasticsearch")
	}
	p := newPipeline(t)
	path := filepath.Join(p.logs, "services/prod/acme/checkout/app.log")
	const total = 30000
	done := writeInBackground(t, path, total, 1000, 30*time.Millisecond)
	ship := startSluice(t, "ship", "-c", p.shipperCfg)
	for i := 0; i < 2; i++ {
		agg := startSluice(t, "aggregate", "-c", p.aggCfg)
		time.Sleep(time.Duration(500+rand.IntN(700)) * time.Millisecond)
		agg.kill()
	}
	<-done
	agg := startSluice(t, "aggregate", "-c", p.aggCfg)
	assertExactly(t, p, total)
	agg.stop()
	ship.stop()
}

// TestTwoAggregatorsOneKilled runs two aggregators in one group and kills
// one: the other takes over its partitions after the session timeout.
func TestTwoAggregatorsOneKilled(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test needs Kafka and Elasticsearch")
	}
	p := newPipeline(t)
	const total = 30000
	var dones []<-chan struct{}
	for _, svc := range []string{"checkout", "billing", "search"} {
		path := filepath.Join(p.logs, "services/prod/acme", svc, "app.log")
		dones = append(dones, writeInBackground(t, path, total/3, 500, 30*time.Millisecond))
	}
	ship := startSluice(t, "ship", "-c", p.shipperCfg)
	a1 := startSluice(t, "aggregate", "-c", p.aggCfg)
	a2 := startSluice(t, "aggregate", "-c", p.aggCfg)
	time.Sleep(1500 * time.Millisecond)
	a1.kill()
	for _, d := range dones {
		<-d
	}
	assertExactly(t, p, total)
	a2.stop()
	ship.stop()
}
