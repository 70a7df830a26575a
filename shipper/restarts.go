package shipper

import (
	"context"
	"time"
)

// restartLimiter spaces out the generations of a file found truncated
// again and again: each generation is read from 0 under a new file id, so
// a file whose size is always below what a read returns (a kernel file of
// size 0, a misbehaving FUSE mount) or that is truncated in a loop would
// otherwise be shipped again and again as fast as it can be read. A
// truncation less than restartQuiet after reading resumed from the last
// one waits before the new generation is read, twice as long each time up
// to restartMaxWait; a file truncated once in a while never waits. The
// data is not lost by waiting, only delayed, unless the file is truncated
// again meanwhile. Owned by the harvester's goroutine.
type restartLimiter struct {
	resumed time.Time // when reading resumed after the last truncation
	wait    time.Duration
}

const (
	restartQuiet     = 10 * time.Second
	restartFirstWait = time.Second
	restartMaxWait   = time.Minute
)

// restarted records a truncation at now and returns how long to wait before
// reading the new generation.
func (r *restartLimiter) restarted(now time.Time) time.Duration {
	if r.resumed.IsZero() || now.Sub(r.resumed) >= restartQuiet {
		r.wait = 0
	} else {
		r.wait = min(max(2*r.wait, restartFirstWait), restartMaxWait)
	}
	r.resumed = now.Add(r.wait)
	return r.wait
}

// hold waits until reading may resume, or ctx is done (false).
func (r *restartLimiter) hold(ctx context.Context) bool {
	d := time.Until(r.resumed)
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
