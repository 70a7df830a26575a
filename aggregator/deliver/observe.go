package deliver

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/sluicelog/sluice/internal/telemetry"
)

// pingAfter is how long without a bulk answer before whether Elasticsearch
// accepts is asked (ready) instead.
const pingAfter = 10 * time.Second

// WatchDelivery sets the elasticsearch_accepting gauge every interval from
// what the bulk requests did since the last look, read off their metrics:
// documents indexed (1, and progress for the watchdog), or failed requests
// and retries with nothing indexed (0). With no bulk answer for pingAfter
// (idle, or everything hanging) it asks Elasticsearch's health instead, at
// once at start. Reading the metrics keeps the bulk path unaware of it.
// advance is told of the documents indexed, for the progress watchdog.
func (m *Metrics) WatchDelivery(ctx context.Context, interval time.Duration, ready telemetry.Check, advance func(int)) {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	var last deliveryCounts
	var decided time.Time // when the gauge was last set
	for {
		now := deliveryCountsOf(m)
		indexed := now.indexed - last.indexed
		switch {
		case indexed > 0:
			m.esAccepting.Set(1)
			advance(int(indexed))
			decided = time.Now()
		case now.failures > last.failures:
			m.esAccepting.Set(0)
			decided = time.Now()
		case time.Since(decided) >= pingAfter:
			if ready(ctx) == nil {
				m.esAccepting.Set(1)
			} else if ctx.Err() == nil {
				m.esAccepting.Set(0)
			}
			decided = time.Now()
		}
		last = now
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// deliveryCounts are the bulk metrics WatchDelivery compares.
type deliveryCounts struct {
	indexed  float64 // documents accepted
	failures float64 // bulk requests not answered 200, and items retried
}

func deliveryCountsOf(m *Metrics) deliveryCounts {
	c := deliveryCounts{indexed: counterValue(m.indexed), failures: counterValue(m.retries)}
	ch := make(chan prometheus.Metric, 16)
	go func() {
		m.bulkRequests.Collect(ch)
		close(ch)
	}()
	for metric := range ch {
		var d dto.Metric
		if metric.Write(&d) != nil {
			continue
		}
		for _, l := range d.GetLabel() {
			if l.GetName() == "status" && l.GetValue() != "200" {
				c.failures += d.GetCounter().GetValue()
			}
		}
	}
	return c
}

func counterValue(c prometheus.Counter) float64 {
	var d dto.Metric
	if c.Write(&d) != nil {
		return 0
	}
	return d.GetCounter().GetValue()
}
