package aggregator

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	consumed        *prometheus.CounterVec
	parseFailures   *prometheus.CounterVec
	bulkRequests    *prometheus.CounterVec
	bulkLatency     prometheus.Histogram
	bulkInFlight    prometheus.Gauge
	indexed         prometheus.Counter
	itemErrors      *prometheus.CounterVec
	retries         prometheus.Counter
	deadLettered    prometheus.Counter
	committed       *prometheus.GaugeVec
	lag             *prometheus.GaugeVec
	endToEnd        prometheus.Histogram
	malformed       prometheus.Counter
	conflictRetries prometheus.Counter
	esAccepting     prometheus.Gauge
	// What a stalled destination looks like (flow's waiting room, bulk's
	// refusals).
	refused      prometheus.Gauge
	indexFailing *prometheus.GaugeVec
	waiting      prometheus.Gauge
	waitingBytes prometheus.Gauge
	paused       prometheus.Gauge
}

// Label values created at 0 with the metrics: a counter that appears only
// at its first event hides that event from rate() and increase(), so an
// alert on the first 429 or the first dead letter would not fire.
var (
	// knownTypes are the document types the parsers read (the shipper's
	// KnownTypes); configured topics are added by newPipeline.
	knownTypes = []string{"service", "nginx", "container"}
	// bulkStatuses are the answers to a bulk request the aggregator
	// handles: success, too large (split), throttled, server errors, and
	// no answer.
	bulkStatuses = []string{"200", "413", "429", "500", "502", "503", "504", "error"}
	// itemStatuses are the usual statuses of a bulk item that did not
	// succeed at once: rejected document, conflict, throttled, failed shard.
	itemStatuses = []string{"400", "409", "429", "500", "503"}
)

func newMetrics(reg prometheus.Registerer, topics ...string) *metrics {
	m := &metrics{
		consumed:        prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sluice_aggregator_records_consumed_total", Help: "Records consumed from Kafka, by topic."}, []string{"topic"}),
		parseFailures:   prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sluice_aggregator_parse_failures_total", Help: "Lines indexed raw because their parser could not read them, by document type."}, []string{"type"}),
		bulkRequests:    prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sluice_aggregator_bulk_requests_total", Help: "Bulk requests sent to Elasticsearch, by HTTP status (error: no response)."}, []string{"status"}),
		bulkLatency:     prometheus.NewHistogram(prometheus.HistogramOpts{Name: "sluice_aggregator_bulk_latency_seconds", Help: "Duration of bulk requests.", Buckets: prometheus.ExponentialBuckets(0.002, 2, 14)}),
		bulkInFlight:    prometheus.NewGauge(prometheus.GaugeOpts{Name: "sluice_aggregator_bulk_in_flight", Help: "Bulk requests sent to Elasticsearch and not answered yet."}),
		indexed:         prometheus.NewCounter(prometheus.CounterOpts{Name: "sluice_aggregator_documents_indexed_total", Help: "Documents Elasticsearch accepted."}),
		itemErrors:      prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sluice_aggregator_item_errors_total", Help: "Bulk items that did not succeed at once, by status (409 counts as delivered)."}, []string{"status"}),
		retries:         prometheus.NewCounter(prometheus.CounterOpts{Name: "sluice_aggregator_retries_total", Help: "Items sent again after a 429, 5xx or failed request."}),
		deadLettered:    prometheus.NewCounter(prometheus.CounterOpts{Name: "sluice_aggregator_dead_lettered_total", Help: "Records sent to the dead-letter topic."}),
		committed:       prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "sluice_aggregator_committed_offset", Help: "Last committed offset, by topic and partition."}, []string{"topic", "partition"}),
		lag:             prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "sluice_aggregator_consumer_lag_records", Help: "Records in a partition not yet committed by the group: its end offset minus the committed offset, read from Kafka every 10s and at each fetch and commit, by topic and partition."}, []string{"topic", "partition"}),
		endToEnd:        prometheus.NewHistogram(prometheus.HistogramOpts{Name: "sluice_aggregator_end_to_end_latency_seconds", Help: "Time from the shipper reading a line to Elasticsearch acknowledging its document.", Buckets: endToEndBuckets}),
		malformed:       prometheus.NewCounter(prometheus.CounterOpts{Name: "sluice_aggregator_malformed_records_total", Help: "Records that were not Sluice events; sent to the dead-letter topic."}),
		conflictRetries: prometheus.NewCounter(prometheus.CounterOpts{Name: "sluice_aggregator_mapping_conflict_retries_total", Help: "Documents sent again with a conflicting field moved aside."}),
		refused: prometheus.NewGauge(prometheus.GaugeOpts{Name: "sluice_aggregator_elasticsearch_refused",
			Help: "1 while Elasticsearch answers bulk requests with a status no retry cures by itself (400, 401, 403): credentials, privileges, address."}),
		indexFailing: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "sluice_aggregator_index_failing",
			Help: "Documents waiting to be sent again to an index whose items fail for a passing reason (429, 5xx, a cluster block), by index."}, []string{"index"}),
		waiting: prometheus.NewGauge(prometheus.GaugeOpts{Name: "sluice_aggregator_documents_waiting",
			Help: "Documents waiting to be sent again after a passing failure, out of the workers."}),
		waitingBytes: prometheus.NewGauge(prometheus.GaugeOpts{Name: "sluice_aggregator_documents_waiting_bytes",
			Help: "Record bytes of the documents waiting to be sent again; above (workers + 2) x bulk_bytes their partitions are paused."}),
		paused: prometheus.NewGauge(prometheus.GaugeOpts{Name: "sluice_aggregator_paused_partitions",
			Help: "Partitions not fetched because too many of their documents wait for a failing index."}),
	}
	reg.MustRegister(m.refused, m.indexFailing, m.waiting, m.waitingBytes, m.paused)
	reg.MustRegister(m.consumed, m.parseFailures, m.bulkRequests, m.bulkLatency, m.bulkInFlight, m.indexed, m.itemErrors, m.retries,
		m.deadLettered, m.committed, m.lag, m.endToEnd, m.malformed, m.conflictRetries)
	m.esAccepting = prometheus.NewGauge(prometheus.GaugeOpts{Name: "sluice_aggregator_elasticsearch_accepting", Help: "1 while Elasticsearch accepts documents (bulk requests succeed, or it answers while idle), 0 while it does not."})
	reg.MustRegister(m.esAccepting)
	for _, t := range knownTypes {
		m.parseFailures.WithLabelValues(t)
	}
	for _, st := range bulkStatuses {
		m.bulkRequests.WithLabelValues(st)
	}
	for _, st := range itemStatuses {
		m.itemErrors.WithLabelValues(st)
	}
	for _, t := range topics {
		m.consumed.WithLabelValues(t)
	}
	return m
}

// endToEndBuckets resolve a latency objective of a second: tenths up to it
// (flush_interval holds a line up to 250ms), coarser beyond.
var endToEndBuckets = []float64{0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1, 1.25, 1.5, 2, 3, 5, 10, 30, 60, 120, 300}
