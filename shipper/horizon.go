package shipper

import (
	"context"
	"sync"

	"go.uber.org/zap"
)

// sentStep is how far past the line being sent a file's sent horizon is
// reserved; the next reservation is written in the background once half
// the window is used, so that a file read at full speed does not wait for
// the registry's fsync (with 4 MiB written in the read path,
// BenchmarkShipPath was 3x slower; with this, within its noise). The cost:
// after a crash, lines written to a file while the shipper was down, below
// its horizon, are flagged resent though never sent, one lookup each in
// the aggregator (up to sentStep bytes of lines per file).
const sentStep = 64 << 20

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
	upTo int64       // Sent as durably written to the registry
	// next is the reservation being written, if any: its horizon, and
	// done, which yields the write's error.
	next    int64
	done    chan error
	pending bool
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
// end, the end of the line about to be produced, and writes the next one
// ahead of need. The error is ctx's, as from ship.
func (h *harvester) reserveSent(ctx context.Context, end int64) error {
	hz := &h.sent
	if hz.gen != h.gen {
		*hz = sentHorizon{gen: h.gen}
	}
	for {
		if hz.pending {
			select {
			case err := <-hz.done:
				hz.pending = false
				// A registry that cannot be written (a full disk) does not
				// stop shipping: the horizon is in the registry in memory
				// and reaches the disk with the next write that succeeds.
				// Until then a crash loses it, and lines read again after
				// it are not flagged resent (their ids are the same; only
				// a daily index by read time or a rolled-over data stream
				// could then hold a second copy). Counted in
				// sluice_shipper_registry_write_failures_total.
				if err != nil {
					h.log.Warn("cannot write the sent horizon to the registry; shipping on, but lines read again after a crash now would not be flagged resent", zap.Error(err))
				}
				hz.upTo = hz.next
			default:
			}
		}
		if !hz.pending && end > hz.upTo-sentStep/2 {
			hz.next = max(end, hz.upTo) + sentStep
			hz.done = make(chan error, 1)
			hz.pending = true
			next, id := hz.next, h.gen.id
			h.sh.registry.update(id, func(e *registryEntry) { e.Sent = next })
			done := hz.done
			h.sh.wg.Add(1)
			go func() {
				defer h.sh.wg.Done()
				done <- h.sh.sentSync.sync(h.sh.writeRegistry)
			}()
		}
		if end <= hz.upTo {
			return nil
		}
		// Past what is durable: wait for the write under way.
		select {
		case err := <-hz.done:
			hz.done <- err // taken again at the top
		case <-ctx.Done():
			return ctx.Err()
		}
	}
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
	if !s.budget.bytes.TryAcquire(s.budget.max) {
		return // lines in flight: their files keep their horizons
	}
	defer s.budget.bytes.Release(s.budget.max)
	for _, e := range s.registry.snapshot() {
		if e.Sent != 0 {
			s.registry.update(e.ID, func(e *registryEntry) { e.Sent = 0 })
		}
	}
}

// groupSync writes the registry for callers that need their updates on
// disk before they go on, one write for all who ask while one is under
// way: a thousand files starting together cost a few writes of the
// registry, not a thousand.
type groupSync struct {
	mu        sync.Mutex
	cond      *sync.Cond
	requested uint64 // requests made
	done      uint64 // requests a finished write covered
	running   bool
	err       error // of the last finished write
}

func newGroupSync() *groupSync {
	g := &groupSync{}
	g.cond = sync.NewCond(&g.mu)
	return g
}

// sync returns once a write that started after this call has finished,
// with its error: updates made before the call are on disk if it is nil.
func (g *groupSync) sync(write func() error) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.requested++
	mine := g.requested
	for g.done < mine {
		if g.running {
			g.cond.Wait()
			continue
		}
		g.running = true
		covers := g.requested // everyone who asked before this write starts
		g.mu.Unlock()
		err := write()
		g.mu.Lock()
		g.running, g.done, g.err = false, covers, err
		g.cond.Broadcast()
	}
	return g.err
}
