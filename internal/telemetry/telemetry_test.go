package telemetry

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestReplacingRegistersAgainAndExportsTheNewCollector(t *testing.T) {
	reg := prometheus.NewRegistry()
	r := Replacing(reg)
	newCounter := func() prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Name: "sluice_test_things_total", Help: "Things."})
	}
	old := newCounter()
	r.MustRegister(old)
	old.Add(5)
	fresh := newCounter()
	if err := r.Register(fresh); err != nil {
		t.Fatalf("registering the same metric again: %v", err)
	}
	fresh.Add(2)
	if got := testutil.ToFloat64(fresh); got != 2 {
		t.Fatalf("new counter = %v, want 2", got)
	}
	if n, err := testutil.GatherAndCount(reg, "sluice_test_things_total"); err != nil || n != 1 {
		t.Fatalf("gathered %d series (%v), want 1", n, err)
	}
	problem, err := testutil.GatherAndLint(reg)
	if err != nil || len(problem) > 0 {
		t.Fatalf("lint: %v %v", problem, err)
	}
	var buf []float64
	mfs, _ := reg.Gather()
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			buf = append(buf, m.GetCounter().GetValue())
		}
	}
	if len(buf) != 1 || buf[0] != 2 {
		t.Fatalf("exported %v, want the new counter's [2]", buf)
	}

	clash := prometheus.NewGauge(prometheus.GaugeOpts{Name: "sluice_test_things_total", Help: "Other help."})
	if err := r.Register(clash); err == nil {
		t.Fatal("a different metric under the same name was accepted")
	}
}
