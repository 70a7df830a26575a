package runner

import (
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/sluicelog/sluice/aggregator"
	"github.com/sluicelog/sluice/internal/telemetry"
)

// TestReadinessPingsElasticsearchOncePerSecond: /readyz is unauthenticated;
// a burst of probes makes one authenticated call to Elasticsearch.
func TestReadinessPingsElasticsearchOncePerSecond(t *testing.T) {
	var health atomic.Int32
	es := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/_cluster/health" {
			health.Add(1)
		}
		w.Header().Set("X-Elastic-Product", "Elasticsearch")
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"status":"green"}`))
	}))
	defer es.Close()
	var cfg aggregator.Config
	cfg.Elasticsearch.Addresses = []string{es.URL}
	p, err := newStages(cfg, nil, &DeadLetterFile{}, prometheus.NewRegistry(), zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	srv := telemetry.NewServer("", prometheus.NewRegistry(), zap.NewNop())
	p.addChecks(srv)
	h := srv.Handler()
	for range 20 {
		if code, body := readyz(h); code != http.StatusOK {
			t.Fatalf("/readyz = %d: %s", code, body)
		}
	}
	if n := health.Load(); n != 1 {
		t.Fatalf("20 readiness probes made %d cluster health calls, want 1", n)
	}
}

// readyz is the answer of /readyz.
func readyz(h http.Handler) (int, string) {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
	return rec.Code, rec.Body.String()
}
