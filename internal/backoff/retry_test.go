package backoff

import (
	"context"
	"errors"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"
)

// Retry calls until success, pausing between attempts.
func TestRetryUntilSuccess(t *testing.T) {
	calls := 0
	err := Policy{Initial: time.Millisecond, Max: time.Millisecond}.Retry(context.Background(), zaptest.NewLogger(t), "trying", func() error {
		if calls++; calls < 3 {
			return errors.New("not yet")
		}
		return nil
	})
	if err != nil || calls != 3 {
		t.Fatalf("err %v after %d calls, want nil after 3", err, calls)
	}
}

// Retry gives up when its context ends, with the context's error.
func TestRetryEndsWithContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	calls := 0
	err := Steady().Retry(ctx, zaptest.NewLogger(t), "trying", func() error {
		calls++
		cancel()
		return errors.New("refused")
	})
	if !errors.Is(err, context.Canceled) || calls != 1 {
		t.Fatalf("err %v after %d calls, want context.Canceled after 1", err, calls)
	}
}
