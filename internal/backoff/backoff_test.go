package backoff

import (
	"context"
	"errors"
	"testing"
	"time"
)

const ms = time.Millisecond

// The four policies Sluice uses, each pause as the formula it replaced
// gave it.
func TestDelaySequences(t *testing.T) {
	for _, tc := range []struct {
		name string
		p    Policy
		want []time.Duration
	}{
		{"shipper produce", Policy{Initial: 100 * ms, Max: 5 * time.Second},
			[]time.Duration{100 * ms, 200 * ms, 400 * ms, 800 * ms, 1600 * ms, 3200 * ms, 5 * time.Second, 5 * time.Second, 5 * time.Second}},
		{"runner deliver", Policy{Initial: 100 * ms, Max: 10 * time.Second},
			[]time.Duration{100 * ms, 200 * ms, 400 * ms, 800 * ms, 1600 * ms, 3200 * ms, 6400 * ms, 10 * time.Second, 10 * time.Second}},
		{"setup, commits, dead letters (Steady)", Steady(),
			[]time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 16 * time.Second, 30 * time.Second, 30 * time.Second}},
	} {
		for attempt, want := range tc.want {
			if got := tc.p.Delay(attempt); got != want {
				t.Errorf("%s: Delay(%d) = %v, want %v", tc.name, attempt, got, want)
			}
		}
		// The old formulas capped the shift to avoid overflow; so does Delay.
		if got := tc.p.Delay(1 << 20); got != tc.p.Max {
			t.Errorf("%s: Delay(huge) = %v, want %v", tc.name, got, tc.p.Max)
		}
	}
}

// Elasticsearch's pause is jittered over the upper half of the same
// doubling sequence, up to retry_max (30s by default).
func TestDelayJitter(t *testing.T) {
	p := Policy{Initial: 100 * ms, Max: 30 * time.Second, Jitter: 0.5}
	for attempt, d := range []time.Duration{100 * ms, 200 * ms, 400 * ms, 800 * ms, 1600 * ms, 3200 * ms, 6400 * ms, 12800 * ms, 25600 * ms, 30 * time.Second, 30 * time.Second} {
		lo, hi := d, time.Duration(0)
		for range 200 {
			got := p.Delay(attempt)
			lo, hi = min(lo, got), max(hi, got)
		}
		if lo < d/2 || hi > d {
			t.Errorf("Delay(%d) in [%v, %v], want within [%v, %v]", attempt, lo, hi, d/2, d)
		}
		if hi-lo < d/4 {
			t.Errorf("Delay(%d) in [%v, %v]: not spread over [%v, %v]", attempt, lo, hi, d/2, d)
		}
	}
}

func TestWaitEndsWithContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	start := time.Now()
	if err := (Policy{Initial: time.Hour, Max: time.Hour}).Wait(ctx, 0); !errors.Is(err, context.Canceled) {
		t.Fatalf("Wait = %v, want context.Canceled", err)
	}
	if time.Since(start) > time.Second {
		t.Fatal("Wait did not end with its context")
	}
	if err := (Policy{Initial: ms, Max: ms}).Wait(context.Background(), 3); err != nil {
		t.Fatalf("Wait = %v", err)
	}
}
