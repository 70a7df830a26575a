package shipper

import (
	"context"
	"time"

	"go.uber.org/zap"
)

// sentStep is how far past the line being sent a file's sent horizon is
// reserved: one registry write per sentStep bytes of a file, and at most
// sentStep bytes flagged resent after a crash that were never sent.
const sentStep = 4 << 20

// sentHorizon is how far a file generation's lines may have been produced.
// A line is produced only once the registry durably says so (its entry's
// Sent), so after a crash every line between the registry's acknowledged
// offset and Sent may be in Kafka already, and reading it again makes a new
// record of it. Those lines are flagged resent (event.FlagResent): the
// aggregator looks their documents up by id before writing them, which a
// daily index named by the read time, or a rolled-over data stream, needs
// to keep one document per line. Owned by the harvester's goroutine.
type sentHorizon struct {
	gen  *generation // the generation it is for; another starts from nothing
	upTo int64       // Sent as written to the registry
	// resentBelow is Sent as the last run left it, but no further than
	// the file's size at start: lines below it are flagged resent.
	resentBelow int64
}

// resumeSent starts the horizon of a generation resumed from its registry
// entry, of a file of size bytes: what was past its end then cannot have
// been sent before.
func (h *harvester) resumeSent(e *registryEntry, size int64) {
	h.sent = sentHorizon{gen: h.gen, upTo: e.Sent, resentBelow: min(e.Sent, size)}
}

// reserveSent makes sure the registry durably holds a horizon at or past
// end, the end of the line about to be produced. A registry that cannot be
// written holds the line back, retried every second; the error is ctx's,
// as from ship.
func (h *harvester) reserveSent(ctx context.Context, end int64) error {
	if h.sent.gen != h.gen {
		h.sent = sentHorizon{gen: h.gen}
	}
	if end <= h.sent.upTo {
		return nil
	}
	upTo := end + sentStep
	h.sh.registry.update(h.gen.id, func(e *registryEntry) { e.Sent = upTo })
	for {
		err := h.sh.writeRegistry()
		if err == nil {
			break
		}
		h.log.Warn("cannot write the sent horizon to the registry; the line waits", zap.Error(err))
		t := time.NewTimer(time.Second)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
	h.sent.upTo = upTo
	return nil
}

// resent reports whether the line starting at start may have been sent
// before this run.
func (h *harvester) resent(start int64) bool {
	return h.sent.gen == h.gen && start < h.sent.resentBelow
}

// settleSent, at shutdown, clears every entry's sent horizon if nothing is
// unacknowledged: then every line produced is at or below its file's
// acknowledged offset, and the next run flags nothing resent (lines
// written while the shipper was stopped included).
func (s *Shipper) settleSent() {
	if !s.budget.sem.TryAcquire(s.budget.max) {
		return // lines in flight: their files keep their horizons
	}
	defer s.budget.sem.Release(s.budget.max)
	for _, e := range s.registry.snapshot() {
		if e.Sent != 0 {
			s.registry.update(e.ID, func(e *registryEntry) { e.Sent = 0 })
		}
	}
}
