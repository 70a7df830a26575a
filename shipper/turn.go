package shipper

import "context"

// Turns: how the files being read share the in-flight budget. A harvester
// takes its share for a turn of reading at once (a grant), before it reads,
// and gives back what its lines did not use when the turn ends. Waiting for
// budget happens between turns, holding nothing: the file's read-ahead,
// read buffer and record block go back to the pools first. Before, each
// line waited for its own budget in the middle of a turn, holding them: with
// 1,000 busy files and Kafka the bottleneck, 1,000 harvesters waited so,
// and the shipper's RSS reached 540 MiB; each line was also a burst of its
// own then (one acknowledgement-tracker entry and one registry update per
// line), as every wait closed the open burst.
//
// The budget's waiters are served in order, so the turns of the files with
// something to read go round: a grant is the budget divided among twice the
// files open (at least minTurn, at most a quarter of the budget), so that a
// quiet file's line waits behind about half the budget's worth of others'
// lines, whatever the number of files.

// minTurn is the smallest grant: a few lines.
const minTurn = 4 << 10

// turnSize is the grant of one turn.
func (b *inFlight) turnSize() int64 {
	g := b.max / (2 * max(b.readers.Load(), 1))
	return min(max(g, minTurn), b.max/4)
}

// beginTurn takes the turn's grant, if the file has something to read;
// while the budget is spent, it first lets go of what the harvester holds.
// The error is ctx's.
func (h *harvester) beginTurn(ctx context.Context) error {
	h.turnOver = false
	unread := h.size.Load() - h.reader.readPosition()
	if !h.reader.pending() && unread <= 0 {
		return nil // nothing to read as far as we know; a line found anyway reserves its own
	}
	b := h.sh.budget
	// No more than the file has (with each line's overhead, for lines of
	// ~170 bytes or more): a grant held while its lines wait (for the
	// registry, say) is budget others cannot use.
	g := min(b.turnSize(), 4*max(unread, 0)+minTurn)
	// A new file's first lines wait for its sent horizon to be on disk
	// (horizon.go): a thousand new files wait for the registry together,
	// holding nothing.
	if end := h.reader.position() + g; h.sent.gen != h.gen || end > h.sent.upTo {
		h.shed()
		if err := h.reserveSent(ctx, end); err != nil {
			return err
		}
	}
	if !b.tryAcquire(g) {
		h.shed()
		if err := b.acquire(ctx, g); err != nil {
			return err
		}
	}
	h.grant = g
	h.granted = true
	// Read ahead no more than the grant lets the turn ship: a busy node
	// gives each turn a few lines, and the rest would be read for nothing.
	h.reader.limit = int(g)
	return nil
}

// turnLeft reports whether the turn may read another line: not when its
// grant is nearly used up, so that the next line does not wait for budget
// in the middle of the turn holding the read buffer and the record block
// (a line longer than what is left still may: reserve).
func (h *harvester) turnLeft() bool {
	return !h.turnOver && (!h.granted || h.grant >= recordOverhead+1024)
}

// endTurn gives back what the turn's lines did not use of its grant.
func (h *harvester) endTurn() {
	// A small turn that used its grant up (the budget shared by many
	// busy files) lets go of its buffer and block now: with a thousand
	// files each reading a few lines a turn, a buffer and a block each
	// between turns were most of the shipper's memory. A file with one
	// line's piece left keeps it, for unterminated_line_after.
	if h.granted && !h.turnLeft() && h.reader.limit < readBufferSize {
		h.shed()
	}
	h.granted = false
	h.reader.limit = 0
	if h.grant > 0 {
		h.sh.budget.release(h.grant)
		h.grant = 0
	}
}

// reserve takes n bytes of budget for a line, from the turn's grant; a line
// the grant does not cover takes the rest from the budget, waiting if need
// be, and ends the turn. The error is ctx's.
func (h *harvester) reserve(ctx context.Context, n int64) error {
	if n <= h.grant {
		h.grant -= n
		return nil
	}
	need := n - h.grant
	b := h.sh.budget
	if !b.tryAcquire(need) {
		// The open burst holds budget that only comes back once it is
		// closed: close it before waiting for budget.
		h.closeBurst()
		if err := b.acquire(ctx, need); err != nil {
			return err
		}
	}
	h.grant = 0
	h.turnOver = true
	return nil
}

// shed lets go, before a wait, of what the harvester holds for reading on:
// its open burst, its record block (held on by its records in flight until
// they are acknowledged), the bytes read ahead (read again later) and its
// read buffer.
func (h *harvester) shed() {
	h.closeBurst()
	if h.enc != nil {
		h.enc.Idle()
	}
	h.reader.dropReadAhead()
	h.reader.idle()
	if h.cri != nil {
		h.cri.idle()
	}
}
