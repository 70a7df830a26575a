package deliver

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the delivery's: bulk requests and their items, and whether
// Elasticsearch takes documents.
type Metrics struct {
	bulkRequests *prometheus.CounterVec
	bulkLatency  prometheus.Histogram
	bulkInFlight prometheus.Gauge
	indexed      prometheus.Counter
	itemErrors   *prometheus.CounterVec
	retries      prometheus.Counter
	esAccepting  prometheus.Gauge
	// What a refusing destination looks like (Bulk.refused).
	refused prometheus.Gauge
}

// Label values created at 0 with the metrics: a counter that appears only
// at its first event hides that event from rate() and increase(), so an
// alert on the first 429 would not fire.
var (
	// bulkStatuses are the answers to a bulk request the aggregator
	// handles: success, too large (split), throttled, server errors, and
	// no answer.
	bulkStatuses = []string{"200", "413", "429", "500", "502", "503", "504", "error"}
	// itemStatuses are the usual statuses of a bulk item that did not
	// succeed at once: rejected document, conflict, throttled, failed shard.
	itemStatuses = []string{"400", "409", "429", "500", "503"}
)

// NewMetrics registers the delivery's metrics on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		bulkRequests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sluice_aggregator_bulk_requests_total", Help: "Bulk requests sent to Elasticsearch, by HTTP status (error: no response)."}, []string{"status"}),
		bulkLatency:  prometheus.NewHistogram(prometheus.HistogramOpts{Name: "sluice_aggregator_bulk_latency_seconds", Help: "Duration of bulk requests.", Buckets: prometheus.ExponentialBuckets(0.002, 2, 14)}),
		bulkInFlight: prometheus.NewGauge(prometheus.GaugeOpts{Name: "sluice_aggregator_bulk_in_flight", Help: "Bulk requests sent to Elasticsearch and not answered yet."}),
		indexed:      prometheus.NewCounter(prometheus.CounterOpts{Name: "sluice_aggregator_documents_indexed_total", Help: "Documents Elasticsearch accepted."}),
		itemErrors:   prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sluice_aggregator_item_errors_total", Help: "Bulk items that did not succeed at once, by status (409 counts as delivered)."}, []string{"status"}),
		retries:      prometheus.NewCounter(prometheus.CounterOpts{Name: "sluice_aggregator_retries_total", Help: "Items sent again after a 429, 5xx or failed request."}),
		refused: prometheus.NewGauge(prometheus.GaugeOpts{Name: "sluice_aggregator_elasticsearch_refused",
			Help: "1 while Elasticsearch answers bulk requests with a status no retry cures by itself (400, 401, 403): credentials, privileges, address."}),
		esAccepting: prometheus.NewGauge(prometheus.GaugeOpts{Name: "sluice_aggregator_elasticsearch_accepting", Help: "1 while Elasticsearch accepts documents (bulk requests succeed, or it answers while idle), 0 while it does not."}),
	}
	reg.MustRegister(m.refused, m.bulkRequests, m.bulkLatency, m.bulkInFlight, m.indexed, m.itemErrors, m.retries, m.esAccepting)
	for _, st := range bulkStatuses {
		m.bulkRequests.WithLabelValues(st)
	}
	for _, st := range itemStatuses {
		m.itemErrors.WithLabelValues(st)
	}
	return m
}

// Retried counts n items sent again, by whoever sends them.
func (m *Metrics) Retried(n int) { m.retries.Add(float64(n)) }
