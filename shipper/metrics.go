package shipper

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	linesRead, bytesRead   *prometheus.CounterVec
	linesAcked, bytesAcked *prometheus.CounterVec
	linesCut               *prometheus.CounterVec
	linesFiltered          *prometheus.CounterVec
	filesOpen              prometheus.Gauge
	filesDiscovered        prometheus.Counter
	rotations, truncations prometheus.Counter
	truncatedBytesLost     prometheus.Counter
	lagBytes, lagMaxBytes  prometheus.Gauge
	filesWaiting           prometheus.Gauge
	produceLatency         prometheus.Histogram
	produceErrors          prometheus.Counter
	registryWrite          prometheus.Histogram
	registryFailures       prometheus.Counter
	registryRecoveries     prometheus.Counter
	inFlightBytes          prometheus.Gauge
	kafkaAccepting         prometheus.Gauge
	kafkaRequestErrors     *prometheus.CounterVec
	filesRefused           *prometheus.CounterVec
}

// kafkaStages are the stage label values of kafka_request_errors_total.
var kafkaStages = []string{"connect", "write", "read", "produce"}

// newMetrics registers the shipper's metrics on reg, with the per-type
// series of KnownTypes and of types (the configured inputs' types) and every
// Kafka error stage present at 0 from the start: a counter that appears only
// at its first event hides that event from rate() and increase().
func newMetrics(reg prometheus.Registerer, types ...string) *metrics {
	m := &metrics{
		linesRead:          prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sluice_shipper_lines_read_total", Help: "Lines read from files, by input type."}, []string{"type"}),
		bytesRead:          prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sluice_shipper_read_bytes_total", Help: "Bytes read from files, by input type."}, []string{"type"}),
		linesAcked:         prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sluice_shipper_lines_acked_total", Help: "Lines acknowledged by Kafka, by input type."}, []string{"type"}),
		bytesAcked:         prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sluice_shipper_acked_bytes_total", Help: "Bytes of lines acknowledged by Kafka, by input type."}, []string{"type"}),
		linesCut:           prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sluice_shipper_lines_truncated_total", Help: "Lines cut at max_line_bytes or to fit their topic's max.message.bytes, by input type."}, []string{"type"}),
		linesFiltered:      prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sluice_shipper_lines_filtered_total", Help: "Lines (multiline events) an input's include_lines or exclude_lines dropped on the node, by the input's type; their offsets are handled as acknowledged."}, []string{"input"}),
		filesOpen:          prometheus.NewGauge(prometheus.GaugeOpts{Name: "sluice_shipper_files_open", Help: "Files currently open for reading."}),
		filesDiscovered:    prometheus.NewCounter(prometheus.CounterOpts{Name: "sluice_shipper_files_discovered_total", Help: "Files (generations) started."}),
		rotations:          prometheus.NewCounter(prometheus.CounterOpts{Name: "sluice_shipper_rotations_total", Help: "Files seen renamed or removed while being read."}),
		truncations:        prometheus.NewCounter(prometheus.CounterOpts{Name: "sluice_shipper_truncations_total", Help: "Files seen truncated (copytruncate or truncation in place)."}),
		truncatedBytesLost: prometheus.NewCounter(prometheus.CounterOpts{Name: "sluice_shipper_truncated_lost_bytes_total", Help: "Bytes seen in a file but truncated away before they could be read, and not in a copy the inputs read (copytruncate)."}),
		lagBytes:           prometheus.NewGauge(prometheus.GaugeOpts{Name: "sluice_shipper_lag_bytes", Help: "Sum over open and waiting files of file size minus acknowledged offset."}),
		lagMaxBytes:        prometheus.NewGauge(prometheus.GaugeOpts{Name: "sluice_shipper_lag_max_bytes", Help: "Largest file size minus acknowledged offset of one open file."}),
		filesWaiting:       prometheus.NewGauge(prometheus.GaugeOpts{Name: "sluice_shipper_files_waiting", Help: "Files with something to read that wait for max_open_files."}),
		produceLatency:     prometheus.NewHistogram(prometheus.HistogramOpts{Name: "sluice_shipper_produce_latency_seconds", Help: "Time from reading a burst of lines of a file to the acknowledgement of its last line.", Buckets: prometheus.ExponentialBuckets(0.001, 2, 14)}),
		produceErrors:      prometheus.NewCounter(prometheus.CounterOpts{Name: "sluice_shipper_produce_errors_total", Help: "Records Kafka failed to accept; they are produced again."}),
		registryWrite:      prometheus.NewHistogram(prometheus.HistogramOpts{Name: "sluice_shipper_registry_write_seconds", Help: "Duration of registry writes.", Buckets: prometheus.ExponentialBuckets(0.0005, 2, 12)}),
		registryFailures:   prometheus.NewCounter(prometheus.CounterOpts{Name: "sluice_shipper_registry_write_failures_total", Help: "Failed registry writes."}),
		registryRecoveries: prometheus.NewCounter(prometheus.CounterOpts{Name: "sluice_shipper_registry_recoveries_total", Help: "Registries loaded from the backup copy because the main file was missing, torn or corrupt."}),
		inFlightBytes:      prometheus.NewGauge(prometheus.GaugeOpts{Name: "sluice_shipper_in_flight_bytes", Help: "Bytes read and not yet acknowledged by Kafka."}),
		kafkaAccepting:     prometheus.NewGauge(prometheus.GaugeOpts{Name: "sluice_shipper_kafka_accepting", Help: "1 while Kafka acknowledges the records it is given (or none wait), 0 while records wait unacknowledged with broker errors for 1s or without an acknowledgement for 10s."}),
		kafkaRequestErrors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sluice_shipper_kafka_request_errors_total", Help: "Failed requests to Kafka brokers, which the Kafka client retries by itself, by stage: connect, write, read, or produce (a partition's error in a produce response)."}, []string{"stage"}),
		filesRefused:       prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sluice_shipper_files_refused_total", Help: "Paths found by the globs that their input's policy does not let it read (each counted once while it stays refused), by reason: symlink, symlink_outside_roots, too_many_links, hard_link, not_regular, pseudo_fs, outside_input_dirs."}, []string{"reason"}),
	}
	reg.MustRegister(m.linesFiltered, m.filesRefused, m.linesRead, m.bytesRead, m.linesAcked, m.bytesAcked, m.linesCut, m.filesOpen, m.filesDiscovered,
		m.rotations, m.truncations, m.truncatedBytesLost, m.lagBytes, m.lagMaxBytes, m.filesWaiting, m.produceLatency, m.produceErrors,
		m.registryWrite, m.registryFailures, m.registryRecoveries, m.inFlightBytes, m.kafkaAccepting, m.kafkaRequestErrors)
	for _, t := range append(append([]string(nil), KnownTypes...), types...) {
		m.forType(t)
	}
	for _, st := range kafkaStages {
		m.kafkaRequestErrors.WithLabelValues(st)
	}
	return m
}

// typeCounters are the per-line counters of one input type, resolved once
// per file rather than looked up by label on every line.
type typeCounters struct {
	linesRead, bytesRead, linesAcked, bytesAcked, cut prometheus.Counter
	filtered                                          prometheus.Counter
}

func (m *metrics) forType(typ string) typeCounters {
	return typeCounters{
		linesRead: m.linesRead.WithLabelValues(typ), bytesRead: m.bytesRead.WithLabelValues(typ),
		linesAcked: m.linesAcked.WithLabelValues(typ), bytesAcked: m.bytesAcked.WithLabelValues(typ),
		cut: m.linesCut.WithLabelValues(typ), filtered: m.linesFiltered.WithLabelValues(typ),
	}
}
