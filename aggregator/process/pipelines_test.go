package process

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/sluicelog/sluice/aggregator/deliver"
	"github.com/sluicelog/sluice/internal/config"
	"github.com/sluicelog/sluice/internal/event"
	"github.com/sluicelog/sluice/internal/template"
	"github.com/sluicelog/sluice/parser"
)

func testPipelines(t *testing.T, yaml string) *pipelines {
	t.Helper()
	var cfg Config
	if err := config.Decode([]byte(yaml), &cfg, func(string) (string, bool) { return "", false }); err != nil {
		t.Fatal(err)
	}
	idx, err := template.Parse(deliver.DefaultIndex)
	if err != nil {
		t.Fatal(err)
	}
	ps, err := newPipelines(cfg.Pipelines, idx, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	return ps
}

// TestPipelineRouting checks that the index name follows a pipeline's change
// of a routing field, even where the shipper gave that field, and only then;
// and that the event's shared fields are never modified.
func TestPipelineRouting(t *testing.T) {
	ps := testPipelines(t, `
pipelines:
  service:
    - name: route-audit
      set: {field: service.name, value: "{service.name}-audit"}
      if: {equals: {kind: audit}}
    - name: drop-debug
      drop: {if: {equals: {log.level: debug}}}
`)
	idx, _ := template.Parse(deliver.DefaultIndex)
	p, _ := newParsers(ParsersConfig{})
	shared := map[string]string{"service": "checkout", "environment": "prod"}
	tests := []struct {
		name, line, index, droppedBy string
	}{
		{"unchanged keeps the shipper's routing", `{"level":"info","service":"other","msg":"m"}`, "logs-service-checkout-prod", ""},
		{"set reroutes over the shipper's field", `{"level":"info","service":"checkout","msg":"m","kind":"audit"}`, "logs-service-checkout-audit-prod", ""},
		{"dropped", `{"level":"debug","msg":"m"}`, "", "drop-debug"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev := event.Event{Type: "service", Node: "n", Path: "/p", ReadTime: time.Unix(0, 0), Fields: shared, Line: []byte(tt.line)}
			doc := newDoc()
			p.fill(&ev, doc)
			keep, by := ps.apply(&ev, doc)
			if by != tt.droppedBy || keep != (tt.droppedBy == "") {
				t.Fatalf("apply = %v, %q; want dropped by %q", keep, by, tt.droppedBy)
			}
			if keep {
				if got := indexName(idx, &ev, doc); got != tt.index {
					t.Errorf("index %q, want %q", got, tt.index)
				}
			}
			if shared["service"] != "checkout" || len(shared) != 2 {
				t.Errorf("the event's shared fields were modified: %v", shared)
			}
		})
	}
	if got := testutil.ToFloat64(ps.dropped.WithLabelValues("service", "drop-debug")); got != 1 {
		t.Errorf("sluice_aggregator_pipeline_dropped_total{type=service,rule=drop-debug} = %v, want 1", got)
	}
}

// TestNoPipelineForType leaves documents of other types alone.
func TestNoPipelineForType(t *testing.T) {
	ps := testPipelines(t, "pipelines:\n  nginx:\n    - {name: all, drop: {if: {exists: message}}}\n")
	ev := event.Event{Type: "service"}
	if keep, _ := ps.apply(&ev, parser.DocOf(map[string]any{"message": "m"})); !keep {
		t.Fatal("a service document went through the nginx pipeline")
	}
}
