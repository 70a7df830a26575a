package telemetry

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
)

// clock is a settable clock for Progress.
type clock struct{ t time.Time }

func (c *clock) now() time.Time      { return c.t }
func (c *clock) add(d time.Duration) { c.t = c.t.Add(d) }
func newClock() *clock               { return &clock{t: time.Unix(1764064800, 0)} }
func stalled(p *Progress) bool       { s, _ := p.Stalled(); return s }
func gauge(reg *prometheus.Registry, name string) float64 {
	mfs, _ := reg.Gather()
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	return -1
}

func TestProgressStallsOnlyWithWorkWaitingAndNoProgress(t *testing.T) {
	c := newClock()
	p := NewProgress(ProgressOptions{StallAfter: time.Minute, Now: c.now})
	reg := prometheus.NewRegistry()
	p.Register(reg, "test")

	// Idle for an hour: not stalled, however long nothing moves.
	p.Waiting(0)
	c.add(time.Hour)
	if stalled(p) {
		t.Fatal("stalled while idle")
	}
	// Work arrives: the clock starts then, not at the last progress an
	// hour ago.
	p.Waiting(100)
	c.add(59 * time.Second)
	if stalled(p) {
		t.Fatal("stalled before the threshold after work arrived")
	}
	// More work measured later does not restart the clock.
	p.Waiting(150)
	c.add(2 * time.Second)
	if !stalled(p) {
		t.Fatal("not stalled 61s after work arrived with no progress")
	}
	if err := p.Check(context.Background()); err == nil || !strings.Contains(err.Error(), "150 waiting") {
		t.Fatalf("check = %v, want an error naming the work waiting", err)
	}
	if g := gauge(reg, "sluice_test_stalled"); g != 1 {
		t.Fatalf("stalled gauge = %v, want 1", g)
	}
	if g := gauge(reg, "sluice_test_last_progress_timestamp_seconds"); g != 0 {
		t.Fatalf("last progress gauge = %v before any progress, want 0", g)
	}
	// Progress clears it at once; advancing by nothing does not count.
	p.Advance(0)
	if !stalled(p) {
		t.Fatal("Advance(0) counted as progress")
	}
	p.Advance(10)
	if stalled(p) || p.Check(context.Background()) != nil {
		t.Fatal("still stalled after progress")
	}
	if g := gauge(reg, "sluice_test_last_progress_timestamp_seconds"); g != float64(c.t.Unix()) {
		t.Fatalf("last progress gauge = %v, want %v", g, c.t.Unix())
	}
	// Work keeps waiting, nothing moves for the threshold again: stalled.
	c.add(61 * time.Second)
	if !stalled(p) {
		t.Fatal("not stalled 61s after the last progress")
	}
	// The backlog drained (by whoever): idle, not stalled.
	p.Waiting(0)
	if stalled(p) || gauge(reg, "sluice_test_stalled") != 0 {
		t.Fatal("stalled with nothing waiting")
	}
}

func TestProgressDefaultThreshold(t *testing.T) {
	c := newClock()
	p := NewProgress(ProgressOptions{Now: c.now})
	p.Waiting(1)
	c.add(DefaultStallAfter)
	if stalled(p) {
		t.Fatal("stalled at exactly the threshold")
	}
	c.add(time.Second)
	if !stalled(p) {
		t.Fatal("not stalled past the default threshold")
	}
}

// TestCachedCheckCallsOncePerTTL: a burst of /readyz requests makes one
// call to the dependency, and the answer is renewed after the TTL.
func TestCachedCheckCallsOncePerTTL(t *testing.T) {
	var calls atomic.Int32
	fail := errors.New("down")
	var failing atomic.Bool
	check := Cached(200*time.Millisecond, func(context.Context) error {
		calls.Add(1)
		if failing.Load() {
			return fail
		}
		return nil
	})
	srv := NewServer("", prometheus.NewRegistry(), zap.NewNop())
	srv.AddCheck("dep", check)
	h := srv.Handler()
	get := func() int {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
		return rec.Code
	}
	for range 50 {
		if code := get(); code != http.StatusOK {
			t.Fatalf("/readyz = %d", code)
		}
	}
	if n := calls.Load(); n != 1 {
		t.Fatalf("50 readiness requests made %d calls, want 1", n)
	}
	failing.Store(true)
	time.Sleep(250 * time.Millisecond)
	if code := get(); code != http.StatusServiceUnavailable {
		t.Fatalf("/readyz after the TTL with the dependency down = %d, want 503", code)
	}
	if n := calls.Load(); n != 2 {
		t.Fatalf("calls = %d after the TTL, want 2", n)
	}
}

func TestHTTPConfigStallAfter(t *testing.T) {
	c := HTTPConfig{Listen: "127.0.0.1:9600"}
	c.SetDefaults()
	if c.StallAfter != DefaultStallAfter || c.Validate("http") != nil {
		t.Fatalf("default stall_after %s: %v", c.StallAfter, c.Validate("http"))
	}
	c.StallAfter = 100 * time.Millisecond
	if err := c.Validate("http"); err == nil || !strings.Contains(err.Error(), "http.stall_after") {
		t.Fatalf("stall_after 100ms: %v, want an error naming http.stall_after", err)
	}
}
