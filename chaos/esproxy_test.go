package chaos

import (
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"sync"
	"testing"
	"time"
)

// esProxy sits between the aggregators and Elasticsearch and can make every
// request slow, or answer a share of them with 503 without forwarding.
type esProxy struct {
	*httptest.Server
	mu    sync.Mutex
	delay time.Duration
	fail  float64
}

func newESProxy(t *testing.T, target string) *esProxy {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	p := &esProxy{}
	rp := httputil.NewSingleHostReverseProxy(u)
	p.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		p.mu.Lock()
		delay, fail := p.delay, p.fail
		p.mu.Unlock()
		if delay > 0 {
			select {
			case <-time.After(delay):
			case <-req.Context().Done():
				return
			}
		}
		if fail > 0 && rand.Float64() < fail {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte(`{"error":{"type":"chaos_proxy","reason":"injected 503"},"status":503}`))
			return
		}
		rp.ServeHTTP(w, req)
	}))
	return p
}

// set makes every request wait delay and fails the given share of them.
func (p *esProxy) set(delay time.Duration, fail float64) {
	p.mu.Lock()
	p.delay, p.fail = delay, fail
	p.mu.Unlock()
}
