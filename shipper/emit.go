package shipper

import (
	"context"
	"time"
)

// emit takes one line of the file (after container reassembly) through the
// input's multiline joiner and line filter, and ships what comes out.
func (h *harvester) emit(ctx context.Context, l line, now time.Time) error {
	if h.pod != nil {
		if err := h.podJoin(ctx, now); err != nil {
			return err
		}
	}
	if h.join == nil {
		return h.shipOrSkip(ctx, l, now)
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
		return nil
	}
	return h.shipAll(ctx, h.join.add(l, now), now)
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
func (h *harvester) shipAll(ctx context.Context, evs []line, now time.Time) error {
	for _, ev := range evs {
		if err := h.shipOrSkip(ctx, ev, now); err != nil {
			return err
		}
	}
	return nil
}

// shipOrSkip ships l, or, if the input's filter drops it, counts it as
// handled: it is acknowledged with the burst, in order.
func (h *harvester) shipOrSkip(ctx context.Context, l line, now time.Time) error {
	if f := h.lineFilter(); f == nil || f.keep(l.Data) {
		return h.ship(ctx, l, l.Flags, now)
	}
	h.skipLine(l, now)
	h.counters.filtered.Inc()
	return nil
}

// flushJoinedDue, at the end of a read that started at readAt, ships the
// joined events whose next line did not come within the multiline timeout.
func (h *harvester) flushJoinedDue(ctx context.Context, readAt time.Time) error {
	if h.join == nil || !h.join.pending() {
		return nil
	}
	now := time.Now()
	h.join.readUntil(readAt, now)
	return h.shipAll(ctx, h.join.flushDue(now), now)
}

// flushJoined ships every pending joined event and closes the burst: the
// lines read before the file was truncated are shipped under its old
// identity.
func (h *harvester) flushJoined(ctx context.Context) error {
	if h.join == nil || !h.join.pending() {
		return nil
	}
	defer h.closeBurst()
	return h.shipAll(ctx, h.join.flushAll(), time.Now())
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
