package telemetry

import (
	"testing"
	"time"
)

// TestEveryLimitsPerKey: one line per key and interval, with the count of
// those held back.
func TestEveryLimitsPerKey(t *testing.T) {
	now := time.Unix(0, 0)
	e := NewEvery(time.Minute)
	e.now = func() time.Time { return now }
	if ok, _ := e.Allow("a"); !ok {
		t.Fatal("first call for a held back")
	}
	for range 5 {
		if ok, _ := e.Allow("a"); ok {
			t.Fatal("second call for a within the interval let through")
		}
	}
	if ok, _ := e.Allow("b"); !ok {
		t.Fatal("first call for b held back by a's")
	}
	now = now.Add(time.Minute)
	ok, n := e.Allow("a")
	if !ok || n != 5 {
		t.Fatalf("after the interval: ok %v, suppressed %d; want true, 5", ok, n)
	}
}
