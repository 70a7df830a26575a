package telemetry

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// pipelineMetrics is what a pipeline registers each time it is built.
type pipelineMetrics struct {
	lines   *prometheus.CounterVec
	open    prometheus.Gauge
	latency prometheus.Histogram
}

func newPipelineMetrics(reg prometheus.Registerer) pipelineMetrics {
	m := pipelineMetrics{
		lines: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sluice_test_lines_total", Help: "Lines."}, []string{"file"}),
		open:  prometheus.NewGauge(prometheus.GaugeOpts{Name: "sluice_test_open_files", Help: "Open files."}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "sluice_test_latency_seconds", Help: "Latency.",
			Buckets: []float64{1, 10}}),
	}
	reg.MustRegister(m.lines, m.open, m.latency)
	return m
}

// TestCarryingKeepsCountsAcrossReloads builds a pipeline's metrics three
// times: counters and histograms go on from the previous pipelines' counts
// (a series the new one has not touched yet included), gauges are the
// newest pipeline's.
func TestCarryingKeepsCountsAcrossReloads(t *testing.T) {
	reg := prometheus.NewRegistry()
	r := Carrying(reg)
	first := newPipelineMetrics(r)
	first.lines.WithLabelValues("a").Add(5)
	first.lines.WithLabelValues("b").Add(3)
	first.open.Set(4)
	first.latency.Observe(0.5)
	first.latency.Observe(5)

	second := newPipelineMetrics(r)
	second.lines.WithLabelValues("a").Add(2)
	second.open.Set(1)
	second.latency.Observe(20)
	want := `
# HELP sluice_test_latency_seconds Latency.
# TYPE sluice_test_latency_seconds histogram
sluice_test_latency_seconds_bucket{le="1"} 1
sluice_test_latency_seconds_bucket{le="10"} 2
sluice_test_latency_seconds_bucket{le="+Inf"} 3
sluice_test_latency_seconds_sum 25.5
sluice_test_latency_seconds_count 3
# HELP sluice_test_lines_total Lines.
# TYPE sluice_test_lines_total counter
sluice_test_lines_total{file="a"} 7
sluice_test_lines_total{file="b"} 3
# HELP sluice_test_open_files Open files.
# TYPE sluice_test_open_files gauge
sluice_test_open_files 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want)); err != nil {
		t.Fatalf("after one reload: %v", err)
	}

	third := newPipelineMetrics(r)
	third.lines.WithLabelValues("b").Add(1)
	third.lines.WithLabelValues("c").Add(1)
	want = `
# HELP sluice_test_lines_total Lines.
# TYPE sluice_test_lines_total counter
sluice_test_lines_total{file="a"} 7
sluice_test_lines_total{file="b"} 4
sluice_test_lines_total{file="c"} 1
# HELP sluice_test_open_files Open files.
# TYPE sluice_test_open_files gauge
sluice_test_open_files 0
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "sluice_test_lines_total", "sluice_test_open_files"); err != nil {
		t.Fatalf("after two reloads: %v", err)
	}
	if problems, err := testutil.GatherAndLint(reg); err != nil || len(problems) > 0 {
		t.Fatalf("lint: %v %v", problems, err)
	}
	clash := prometheus.NewGauge(prometheus.GaugeOpts{Name: "sluice_test_lines_total", Help: "Other help."})
	if err := r.Register(clash); err == nil {
		t.Fatal("a different metric under the same name was accepted")
	}
}
