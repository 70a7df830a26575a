// Package backoff is Sluice's one retry pause: exponential from an initial
// pause, doubling with each attempt up to a cap, optionally jittered, and a
// Wait that gives up when its context ends.
package backoff

import (
	"context"
	"math/rand/v2"
	"time"
)

// Policy is an exponential backoff. The zero value never pauses.
type Policy struct {
	// Initial is the pause before the first retry (attempt 0).
	Initial time.Duration
	// Max caps the pause.
	Max time.Duration
	// Jitter is the fraction of each pause drawn at random: the pause is
	// d*(1-Jitter) plus a uniform draw from [0, d*Jitter]. 0 pauses exactly
	// d; 0.5 spreads retries of many callers over the upper half of d, so
	// that they do not come back in step.
	Jitter float64
}

// Delay is the pause before the retry after attempt failures (0: the
// first retry): Initial doubled attempt times, at most Max, jittered.
func (p Policy) Delay(attempt int) time.Duration {
	d := p.Initial
	for range attempt {
		if d >= p.Max || d > p.Max/2 {
			d = p.Max
			break
		}
		d *= 2
	}
	d = min(d, p.Max)
	if p.Jitter <= 0 || d <= 0 {
		return d
	}
	spread := time.Duration(float64(d) * min(p.Jitter, 1))
	return d - spread + rand.N(spread+1)
}

// Wait pauses for Delay(attempt), or until ctx ends, whose error it then
// returns.
func (p Policy) Wait(ctx context.Context, attempt int) error {
	return Sleep(ctx, p.Delay(attempt))
}

// Sleep pauses for d, or until ctx ends, whose error it then returns.
func Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
