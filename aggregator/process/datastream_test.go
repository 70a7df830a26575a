package process

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/sluicelog/sluice/internal/event"
)

// TestDataStreamField checks data_stream.* from stream names.
func TestDataStreamFields(t *testing.T) {
	for name, want := range map[string][3]string{
		"logs-nginx.access-prod": {"logs", "nginx.access", "prod"},
		"logs-my-app-prod":       {"logs", "my-app", "prod"},
	} {
		typ, ds, ns, ok := dataStreamFields(name)
		if !ok || [3]string{typ, ds, ns} != want {
			t.Errorf("%s: %q %q %q %v, want %q", name, typ, ds, ns, ok, want)
		}
	}
	for _, name := range []string{"logs", "logs-prod", "-a-b", "logs--", "a-b-"} {
		if _, _, _, ok := dataStreamFields(name); ok {
			t.Errorf("%s: a data stream name", name)
		}
	}
}

// TestDataStreamNameRenderedOnce builds documents for a data stream: the
// stream's name is rendered once per document (it was twice: for
// data_stream.* and for the item's index), and both agree.
func TestDataStreamNameRenderedOnce(t *testing.T) {
	var cfg Config
	cfg.Elasticsearch.DataStream = true
	cfg.SetDefaults()
	d, err := New(cfg, nil, prometheus.NewRegistry(), zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		ev := event.Event{Type: "service", Node: "n", Offset: int64(i), ReadTime: time.Now(), Fields: map[string]string{"service": "api", "environment": "prod"},
			Line: []byte(`{"message":"m"}`)}
		it, keep, dead := d.Item(ev.Record("logs-service", event.EncodeFields(ev.Fields)))
		if !keep || dead != nil {
			t.Fatalf("not kept: %v", dead)
		}
		if it.Index != "logs-service-prod" || !strings.Contains(string(it.Source), `"data_stream":{"dataset":"service","namespace":"prod"`) {
			t.Errorf("index %s, document %s", it.Index, it.Source)
		}
	}
	if d.names.asked != 3 {
		t.Errorf("3 documents asked for %d index names", d.names.asked)
	}
}
