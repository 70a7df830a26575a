package shipper

import (
	"context"
	"time"

	"github.com/sluicelog/sluice/internal/event"
)

// emit takes one line of the file (after container reassembly) through the
// input's (or its pod's hint's) multiline joiner, and ships what comes out
// (shipOrSkip). over reports that the file's pod or namespace went over its
// quota (shipFair), also while a hint's change flushed the joiner (podJoin).
func (h *harvester) emit(ctx context.Context, l line, now time.Time) (over bool, err error) {
	if h.pod != nil {
		if over, err = h.podJoin(ctx, now); err != nil {
			return over, err
		}
	}
	if h.join == nil {
		o, err := h.shipOrSkip(ctx, l, now)
		return over || o, err
	}
	// Named now, as ship would name it on its first line: the joiner holds
	// the line, and a file read from 0 that is still unnamed is checked
	// for being a copy before each line (skipCopied), which may move the
	// reader back over lines the joiner holds.
	if h.gen.pending {
		h.identify(h.reader.head, h.gen.acks)
	}
	if h.rejoin != nil && h.shippedBefore(l) {
		h.skipLine(l, now)
		return over, nil
	}
	o, err := h.shipAll(ctx, h.join.add(l, now), now)
	return over || o, err
}

// shippedBefore reports whether l, read again after a restart, is of an
// event acknowledged in the last run (harvester.rejoin).
func (h *harvester) shippedBefore(l line) bool {
	shipped, done := false, true
	for s, end := range h.rejoin {
		if l.Stream == s && l.Start < end {
			shipped = true
		}
		done = done && l.Start >= end
	}
	if done {
		h.rejoin = nil
	}
	return shipped
}

// ended records, for a joined container log, that an event of l's stream
// ended with l in burst b.
func (h *harvester) ended(b *burst, l line) {
	if h.join != nil && h.cri != nil {
		b.ended(l.Stream, l.End)
	}
}

// shipAll ships the events a joiner completed, in order.
func (h *harvester) shipAll(ctx context.Context, evs []line, now time.Time) (over bool, err error) {
	for _, ev := range evs {
		o, err := h.shipOrSkip(ctx, ev, now)
		if err != nil {
			return over, err
		}
		over = over || o
	}
	return over, nil
}

// shipOrSkip ships l, a whole event, unless its line filter (the hints' or
// the input's, lineFilter) drops it or its pod is excluded
// (sluice.io/exclude); then within the file's quota (shipFair), so that the
// quota counts only what would be produced.
func (h *harvester) shipOrSkip(ctx context.Context, l line, now time.Time) (over bool, err error) {
	if f := h.lineFilter(); f != nil && !f.keep(l.Data) {
		h.skipLine(l, now)
		h.counters.filtered.Inc()
		return false, nil
	}
	flags := l.Flags
	if h.pod != nil {
		exclude, unknown, err := h.podLine(ctx, now)
		switch {
		case err != nil:
			return false, err
		case exclude:
			h.skipLine(l, now)
			h.sh.kube.CountExcluded(1)
			return false, nil
		case unknown:
			flags = append(flags, event.FlagNoPodMetadata)
			h.sh.kube.CountUnknown(1)
		}
	}
	return h.shipFair(ctx, l, flags, now)
}

// flushJoinedDue, at the end of a read that started at readAt, ships the
// joined events whose next line did not come within the multiline timeout.
func (h *harvester) flushJoinedDue(ctx context.Context, readAt time.Time) error {
	if h.join == nil || !h.join.pending() {
		return nil
	}
	now := time.Now()
	h.join.readUntil(readAt, now)
	_, err := h.shipAll(ctx, h.join.flushDue(now), now)
	return err
}

// flushJoined ships every pending joined event and closes the burst: the
// lines read before the file was truncated are shipped under its old
// identity.
func (h *harvester) flushJoined(ctx context.Context) error {
	if h.join == nil || !h.join.pending() {
		return nil
	}
	defer h.closeBurst()
	_, err := h.shipAll(ctx, h.join.flushAll(), time.Now())
	return err
}

// pollWait is how long an idle harvester waits before it looks again: poll,
// or less if a joined event is due before.
func (h *harvester) pollWait(poll time.Duration) time.Duration {
	if h.join == nil {
		return poll
	}
	if at, ok := h.join.deadline(); ok {
		return max(min(poll, time.Until(at)), time.Millisecond)
	}
	return poll
}

// joinPending reports whether the joiner holds lines not yet shipped.
func (h *harvester) joinPending() bool { return h.join != nil && h.join.pending() }
