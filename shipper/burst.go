package shipper

import (
	"sync/atomic"
	"time"

	"github.com/sluicelog/sluice/internal/event"
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
	// skipped is the lines handled but never produced (harvester.skipLine: the
	// input's filter, an excluded pod, over its quota, shipped before a
	// restart), which the offset moves over with the burst's.
	skipped int64
	// streams is the end of each stream's last event, for a container log
	// joined into events (ackTracker.streams).
	streams  []streamEnd
	reserved int64 // budget held
	seq      uint64
	// blocks are the encoder blocks the lines were built in, held until
	// every line is acknowledged.
	blocks    []*event.Block
	blocksBuf [4]*event.Block
}

func (h *harvester) openBurst(now time.Time) *burst {
	b := &burst{h: h, gen: h.gen, start: now}
	b.acked = b.ackOne
	b.blocks = b.blocksBuf[:0]
	b.pending.Store(1)
	return b
}

// add counts a published line read from n file bytes, after which the
// registry may move to end, and that holds reserved bytes of the budget.
func (b *burst) add(n, end, reserved int64) {
	b.pending.Add(1)
	b.lines++
	b.lineBytes += n
	b.end = end
	b.reserved += reserved
}

// skip counts a line not produced, after which the registry may move to
// end with the burst's lines.
func (b *burst) skip(end int64) {
	b.skipped++
	b.end = end
}

// ended records that an event of stream ended at end.
func (b *burst) ended(stream string, end int64) {
	for i := range b.streams {
		if b.streams[i].stream == stream {
			b.streams[i].end = end
			return
		}
	}
	b.streams = append(b.streams, streamEnd{stream, end})
}

// hold keeps blk, the block a line of the burst was built in, until the
// burst is acknowledged.
func (b *burst) hold(blk *event.Block) {
	if n := len(b.blocks); n > 0 && b.blocks[n-1] == blk {
		return
	}
	blk.Hold()
	b.blocks = append(b.blocks, blk)
}

// close ends the burst: no line is added after it. The harvester closes
// its bursts in order, which is the order of their offsets.
func (b *burst) close() {
	c := &b.h.counters
	c.linesRead.Add(float64(b.lines))
	c.bytesRead.Add(float64(b.lineBytes))
	if b.lines > 0 || b.skipped > 0 {
		b.seq = b.gen.acks.sentMarked(b.end, b.streams, b.h.reader.markAt(b.end))
	}
	b.ackOne()
}

// ackOne takes one acknowledgement (or the close); the last one completes
// the burst.
func (b *burst) ackOne() {
	if b.pending.Add(-1) != 0 {
		return
	}
	// Kafka is done with the records: their blocks can be used again.
	for i, blk := range b.blocks {
		blk.Release()
		b.blocks[i] = nil
	}
	if b.lines == 0 && b.skipped == 0 {
		return
	}
	sh := b.h.sh
	c := &b.h.counters
	if b.lines > 0 {
		c.linesAcked.Add(float64(b.lines))
		c.bytesAcked.Add(float64(b.lineBytes))
		sh.metrics.produceLatency.Observe(time.Since(b.start).Seconds())
	}
	sh.stall.Advance(1)
	if off, m, moved := b.gen.acks.ackMarked(b.seq); moved {
		sh.registry.advance(b.gen.id, off, m)
		if streams, ok := b.gen.acks.streamEnds(); ok {
			sh.registry.setStreams(b.gen.id, streams)
		}
	}
	// Last: a budget all free means every acknowledged offset is in the
	// registry (settleSent relies on it).
	sh.budget.release(b.reserved)
}
