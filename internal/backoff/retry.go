package backoff

import (
	"context"
	"fmt"
	"time"

	"go.uber.org/zap"
)

// Steady is the pause between attempts of calls that must succeed before
// their caller goes on (an index template, the dead-letter topic, a commit,
// a dead letter): from 1s, doubling, up to 30s.
func Steady() Policy { return Policy{Initial: time.Second, Max: 30 * time.Second} }

// Retry calls fn until it succeeds or ctx ends, pausing p.Delay between
// attempts and logging each failure, as "<what> failed; retrying". Its
// error is ctx's, prefixed with what.
func (p Policy) Retry(ctx context.Context, log *zap.Logger, what string, fn func() error) error {
	for attempt := 0; ; attempt++ {
		err := fn()
		if err == nil {
			return nil
		}
		log.Warn(what+" failed; retrying", zap.Error(err))
		if err := p.Wait(ctx, attempt); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
	}
}
