package shipper

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/sluicelog/sluice/internal/testenv"
)

// TestMetricsExistAtZeroFromStart: a counter that appears at its first
// event hides that event from rate() (Prometheus has no earlier sample), so
// the known label values are on /metrics at 0 before anything happens.
func TestMetricsExistAtZeroFromStart(t *testing.T) {
	cfg := Config{
		Node: "test", Registry: t.TempDir(), ScanInterval: time.Second,
		Inputs: []InputConfig{{Type: "billing", Paths: []string{filepath.Join(t.TempDir(), "*.log")}}},
	}
	reg := prometheus.NewRegistry()
	if _, err := New(cfg, reg, zap.NewNop(), WithPublisher(&nullPublisher{})); err != nil {
		t.Fatal(err)
	}
	body := testenv.ScrapeMetrics(t, reg)
	var want []string
	for _, typ := range []string{"service", "nginx", "container", "billing"} {
		for _, name := range []string{"lines_read_total", "read_bytes_total", "lines_acked_total", "acked_bytes_total", "lines_truncated_total"} {
			want = append(want, `sluice_shipper_`+name+`{type="`+typ+`"} 0`)
		}
	}
	for _, st := range []string{"connect", "write", "read", "produce"} {
		want = append(want, `sluice_shipper_kafka_request_errors_total{stage="`+st+`"} 0`)
	}
	want = append(want, "sluice_shipper_truncated_lost_bytes_total 0", "sluice_shipper_registry_write_failures_total 0",
		"sluice_shipper_produce_errors_total 0", "sluice_shipper_stalled 0")
	for _, w := range want {
		if !strings.Contains(body, "\n"+w+"\n") {
			t.Errorf("/metrics of a fresh shipper lacks %s", w)
		}
	}
}
