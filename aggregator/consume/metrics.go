package consume

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	consumed     *prometheus.CounterVec
	deadLettered prometheus.Counter
	committed    *prometheus.GaugeVec
	lag          *prometheus.GaugeVec
	endToEnd     prometheus.Histogram
	// What a stalled destination looks like (flow's waiting room).
	indexFailing *prometheus.GaugeVec
	waiting      prometheus.Gauge
	waitingBytes prometheus.Gauge
	paused       prometheus.Gauge
}

// newMetrics registers the consumer's metrics; the consumed records of
// topics are counted from 0.
func newMetrics(reg prometheus.Registerer, topics ...string) *metrics {
	m := &metrics{
		consumed:     prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sluice_aggregator_records_consumed_total", Help: "Records consumed from Kafka, by topic."}, []string{"topic"}),
		deadLettered: prometheus.NewCounter(prometheus.CounterOpts{Name: "sluice_aggregator_dead_lettered_total", Help: "Records sent to the dead-letter topic."}),
		committed:    prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "sluice_aggregator_committed_offset", Help: "Last committed offset, by topic and partition."}, []string{"topic", "partition"}),
		lag:          prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "sluice_aggregator_consumer_lag_records", Help: "Records in a partition not yet committed by the group: its end offset minus the committed offset, read from Kafka every 10s and at each fetch and commit, by topic and partition."}, []string{"topic", "partition"}),
		endToEnd:     prometheus.NewHistogram(prometheus.HistogramOpts{Name: "sluice_aggregator_end_to_end_latency_seconds", Help: "Time from the shipper reading a line to Elasticsearch acknowledging its document.", Buckets: endToEndBuckets}),
		indexFailing: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "sluice_aggregator_index_failing",
			Help: "Documents waiting to be sent again to an index whose items fail for a passing reason (429, 5xx, a cluster block), by index."}, []string{"index"}),
		waiting: prometheus.NewGauge(prometheus.GaugeOpts{Name: "sluice_aggregator_documents_waiting",
			Help: "Documents waiting to be sent again after a passing failure, out of the workers."}),
		waitingBytes: prometheus.NewGauge(prometheus.GaugeOpts{Name: "sluice_aggregator_documents_waiting_bytes",
			Help: "Record bytes of the documents waiting to be sent again; above (workers + 2) x bulk_bytes their partitions are paused."}),
		paused: prometheus.NewGauge(prometheus.GaugeOpts{Name: "sluice_aggregator_paused_partitions",
			Help: "Partitions not fetched because too many of their documents wait for a failing index."}),
	}
	reg.MustRegister(m.indexFailing, m.waiting, m.waitingBytes, m.paused)
	reg.MustRegister(m.consumed, m.deadLettered, m.committed, m.lag, m.endToEnd)
	// A counter that appears only at its first event hides that event from
	// rate() and increase().
	for _, t := range topics {
		m.consumed.WithLabelValues(t)
	}
	return m
}

// endToEndBuckets resolve a latency objective of a second: tenths up to it
// (flush_interval holds a line up to 250ms), coarser beyond.
var endToEndBuckets = []float64{0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1, 1.25, 1.5, 2, 3, 5, 10, 30, 60, 120, 300}
