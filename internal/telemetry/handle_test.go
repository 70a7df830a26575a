package telemetry

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
)

// TestHandleServesTheLatestHandler: a reload adds its pipeline's handler
// again at the same path; the new one answers, and unknown paths are 404.
func TestHandleServesTheLatestHandler(t *testing.T) {
	srv := NewServer("", prometheus.NewRegistry(), zap.NewNop())
	h := srv.Handler()
	text := func(s string) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, s) })
	}
	get := func(path string) (int, string) {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		return rec.Code, rec.Body.String()
	}
	if code, _ := get("/files"); code != http.StatusNotFound {
		t.Fatalf("/files before Handle: %d, want 404", code)
	}
	srv.Handle("/files", text("old"))
	srv.Handle("/files", text("new"))
	if code, body := get("/files"); code != http.StatusOK || body != "new" {
		t.Fatalf("/files: %d %q, want the handler added last", code, body)
	}
	if code, _ := get("/files/x"); code != http.StatusNotFound {
		t.Fatalf("/files/x: %d, want 404", code)
	}
	if code, body := get("/healthz"); code != http.StatusOK || body != "ok\n" {
		t.Fatalf("/healthz: %d %q", code, body)
	}
}
