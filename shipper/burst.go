package shipper

import (
	"sync/atomic"
	"time"
)

// burst is the lines of one file generation read in one go. Its lines are
// acknowledged together: once the burst is closed and Kafka acknowledged
// every line of it, the generation's offset moves over all of them at once,
// their budget is released and the acknowledgement counters move. Per-line
// bookkeeping (a lock, a clock read and a metric update for every line) was
// a large part of the shipper's own cost.
type burst struct {
	h   *harvester
	gen *generation
	// acked is b.ackOne as a func value, made once for all its lines.
	acked func()
	// pending is the lines published and not acknowledged, plus one while
	// the burst is open.
	pending atomic.Int64
	// Set by the harvester before close.
	start     time.Time // read time
	end       int64     // offset after the last line
	lines     int64
	lineBytes int64 // file bytes the lines cover
	reserved  int64 // budget held
	seq       uint64
}

func (h *harvester) openBurst(now time.Time) *burst {
	b := &burst{h: h, gen: h.gen, start: now}
	b.acked = b.ackOne
	b.pending.Store(1)
	return b
}

// add counts a published line that covers file bytes [start, end) and holds
// reserved bytes of the budget.
func (b *burst) add(start, end, reserved int64) {
	b.pending.Add(1)
	b.lines++
	b.lineBytes += end - start
	b.end = end
	b.reserved += reserved
}

// close ends the burst: no line is added after it. The harvester closes
// its bursts in order, which is the order of their offsets.
func (b *burst) close() {
	c := &b.h.counters
	c.linesRead.Add(float64(b.lines))
	c.bytesRead.Add(float64(b.lineBytes))
	if b.lines > 0 {
		b.seq = b.gen.acks.sent(b.end)
	}
	b.ackOne()
}

// ackOne takes one acknowledgement (or the close); the last one completes
// the burst.
func (b *burst) ackOne() {
	if b.pending.Add(-1) != 0 || b.lines == 0 {
		return
	}
	sh := b.h.sh
	sh.budget.release(b.reserved)
	c := &b.h.counters
	c.linesAcked.Add(float64(b.lines))
	c.bytesAcked.Add(float64(b.lineBytes))
	sh.metrics.produceLatency.Observe(time.Since(b.start).Seconds())
	if off, moved := b.gen.acks.ack(b.seq); moved {
		sh.registry.advance(b.gen.id, off)
	}
}
