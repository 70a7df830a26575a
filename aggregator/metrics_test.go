package aggregator

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/sluicelog/sluice/aggregator/pipeline"
	"github.com/sluicelog/sluice/internal/testenv"
)

// TestMetricsExistAtZeroFromStart: a counter that appears at its first
// event hides that event from rate() (Prometheus has no earlier sample), so
// the first 429 or dead letter would not fire an alert; the known label
// values are on /metrics at 0 before anything happens.
func TestMetricsExistAtZeroFromStart(t *testing.T) {
	var cfg Config
	cfg.SetDefaults()
	cfg.Kafka.Topics = []string{"logs-service", "logs-billing"}
	cfg.Pipelines = pipeline.Config{"nginx": {{Name: "health-checks", Drop: &pipeline.Drop{If: &pipeline.Condition{Equals: map[string]any{"url.original": "/healthz"}}}}}}
	reg := prometheus.NewRegistry()
	if _, err := newStages(cfg, reg, zap.NewNop(), nil); err != nil {
		t.Fatal(err)
	}
	body := testenv.ScrapeMetrics(t, reg)
	var want []string
	for _, st := range []string{"200", "413", "429", "500", "502", "503", "504", "error"} {
		want = append(want, `sluice_aggregator_bulk_requests_total{status="`+st+`"} 0`)
	}
	for _, st := range []string{"400", "409", "429", "500", "503"} {
		want = append(want, `sluice_aggregator_item_errors_total{status="`+st+`"} 0`)
	}
	for _, typ := range []string{"service", "nginx", "container"} {
		want = append(want, `sluice_aggregator_parse_failures_total{type="`+typ+`"} 0`)
	}
	for _, topic := range cfg.Kafka.Topics {
		want = append(want, `sluice_aggregator_records_consumed_total{topic="`+topic+`"} 0`)
	}
	want = append(want, `sluice_aggregator_pipeline_dropped_total{rule="health-checks",type="nginx"} 0`,
		"sluice_aggregator_dead_lettered_total 0", "sluice_aggregator_malformed_records_total 0",
		"sluice_aggregator_retries_total 0", "sluice_aggregator_documents_indexed_total 0")
	for _, w := range want {
		if !strings.Contains(body, "\n"+w+"\n") {
			t.Errorf("/metrics of a fresh aggregator lacks %s", w)
		}
	}
}
