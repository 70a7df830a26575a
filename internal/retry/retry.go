// Package retry is one way of waiting and trying again: until success or
// the end of a context, with growing pauses.
package retry

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"

	"go.uber.org/zap"
)

// Do calls fn until it succeeds or ctx is done.
func Do(ctx context.Context, log *zap.Logger, what string, fn func() error) error {
	for attempt := 0; ; attempt++ {
		err := fn()
		if err == nil {
			return nil
		}
		log.Warn(what+" failed; retrying", zap.Error(err))
		if err := Sleep(ctx, min(time.Second<<min(attempt, 5), 30*time.Second)); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
	}
}

// Sleep waits d, or until ctx is done (its error).
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

// Backoff is exponential from 100ms to max with jitter.
func Backoff(attempt int, max time.Duration) time.Duration {
	d := min(100*time.Millisecond<<min(attempt, 10), max)
	return d/2 + rand.N(d/2+1)
}
