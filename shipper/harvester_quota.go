package shipper

import (
	"context"
	"time"
)

// shipFair ships l within the file's quota (quota.go). Under throttle the
// line is shipped and over reports that the pod or namespace is now over
// its quota, so the harvester ends its turn and waits before reading on;
// under drop a line over the quota is skipped, counted, and the registry
// moves past it with the burst. The error is ship's.
func (h *harvester) shipFair(ctx context.Context, l line, flags []string, now time.Time) (over bool, err error) {
	q := h.quota
	if q == nil {
		return false, h.ship(ctx, l, flags, now)
	}
	n, _ := l.covered()
	if q.drop && !q.admit(n) {
		h.skipLine(l, now)
		q.dropped(n)
		return false, nil
	}
	if err := h.ship(ctx, l, flags, now); err != nil {
		return false, err
	}
	return !q.drop && q.charge(n), nil
}
