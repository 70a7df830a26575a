package consume

import (
	"context"
	"time"

	"github.com/sluicelog/sluice/aggregator/deliver"
)

// A chunk is one call to the sink: documents in poll order, up to
// bulk_bytes, possibly from several batches. Chunks are filled across poll
// boundaries so that each bulk request is as large as the data queued
// allows, instead of a batch's share per worker: with one poll of 5000
// records about one 5 MiB request, a chunk per batch and worker made
// requests a quarter of that size.
type chunk struct {
	items []deliver.Item
	size  int    // deliver.BulkSize of the items
	spans []span // whose items these are, in order
	// since is when the first item was put: the chunk goes out at
	// flush_interval from then if not full before (flushAged).
	since time.Time
}

// span says that the next hi-lo items of a chunk are b.items[lo:hi].
type span struct {
	b      *batch
	lo, hi int
}

// put adds the batch's item k to the chunk being filled, first sending
// that chunk when the item would take it over bulk_bytes. Poll loop only.
func (f *flow) put(b *batch, k int) error {
	f.mu.Lock()
	failing := f.w.failing(b.items[k].Index)
	if failing {
		// Sent with the others of its index, when Elasticsearch takes
		// them: in a chunk it would hold a worker for a request that
		// fails for it (or, a red index, waits a minute to).
		f.park(b, k, deliver.Outcome{})
	}
	f.mu.Unlock()
	if failing {
		return nil
	}
	n := deliver.BulkSize(&b.items[k])
	if len(f.cur.items) > 0 && f.cur.size+n > f.a.cfg.Elasticsearch.BulkBytes {
		if err := f.flush(); err != nil {
			return err
		}
	}
	if len(f.cur.items) == 0 {
		f.cur.since = time.Now()
	}
	f.cur.items = append(f.cur.items, b.items[k])
	f.cur.size += n
	if last := len(f.cur.spans) - 1; last >= 0 && f.cur.spans[last].b == b && f.cur.spans[last].hi == k {
		f.cur.spans[last].hi++
	} else {
		f.cur.spans = append(f.cur.spans, span{b: b, lo: k, hi: k + 1})
	}
	return nil
}

// flush sends the chunk being filled, full or not, waiting while every
// worker is busy. Whatever the poll loop is about to wait for (room for
// another batch, the end of the work in flight) may depend on this chunk's
// delivery, so it flushes first; only a poll that finds nothing buffered
// may hold it, up to flush_interval (flushAged). Poll loop only.
func (f *flow) flush() error {
	_, err := f.send(true)
	return err
}

// flushAged sends the chunk being filled if it is flush_interval old, and
// else returns when it will be (zero: nothing held). With wait false an
// aged chunk goes only if a worker is free at once, and is otherwise
// filled on (a full one goes at put), due at once. Poll loop only.
func (f *flow) flushAged(wait bool) (due time.Time, err error) {
	if len(f.cur.items) == 0 {
		return time.Time{}, nil
	}
	due = f.cur.since.Add(f.a.cfg.Elasticsearch.FlushInterval)
	if time.Now().Before(due) {
		return due, nil
	}
	if sent, err := f.send(wait); sent || err != nil {
		return time.Time{}, err
	}
	return due, nil
}

// send hands the chunk being filled to a worker: waiting for one to be
// free, or with wait false only if one is (sent says whether it went).
func (f *flow) send(wait bool) (sent bool, err error) {
	if len(f.cur.items) == 0 {
		return false, nil
	}
	select {
	case f.slots <- struct{}{}:
	default:
		if !wait {
			return false, nil
		}
		select {
		case f.slots <- struct{}{}:
		case <-f.abort:
			return false, errDrainTimeout // abandoned with the rest
		case <-f.ctx.Done():
			return false, f.failure()
		}
	}
	ch := f.cur
	f.cur = chunk{items: make([]deliver.Item, 0, len(ch.items))}
	f.mu.Lock()
	f.inChunks += len(ch.items)
	f.mu.Unlock()
	f.wg.Add(1)
	go f.index(ch)
	return true, nil
}

// index delivers a chunk and hands each outcome to its batch; what
// Elasticsearch did not take yet goes to the waiting room.
func (f *flow) index(ch chunk) {
	defer func() { <-f.slots; f.wg.Done() }()
	items, at := f.sendable(ch)
	var res []deliver.Outcome
	if len(items) > 0 {
		var err error
		if res, err = f.deliver(f.ctx, items); err != nil {
			if f.ctx.Err() == nil {
				f.fail(err)
			}
			return // inChunks no longer matters: the flow is over
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.inChunks -= len(ch.items)
	defer notify(f.freed) // a drain may be waiting for the chunks to end
	j := 0
	for _, s := range ch.spans {
		for k := s.lo; k < s.hi; k++ {
			i := at[j]
			j++
			if i < 0 || s.b.p.gone {
				continue // waiting already, or let go
			}
			o := res[i]
			if o.Again {
				f.park(s.b, k, o)
				f.warnWaiting(f.w.byIndex[s.b.items[k].Index])
				continue
			}
			f.outcome(s.b, k, o)
			// Handled: its record no longer counts against the budget,
			// even while its batch waits for a document of a failing index.
			s.b.charged -= s.b.items[k].RecBytes
			f.room.Release(int64(s.b.items[k].RecBytes))
			s.b.pending--
		}
		if !s.b.p.gone {
			f.checkDelivered(s.b)
		}
	}
}

// sendable returns the chunk's items to send, and for each item of the
// chunk its position among them, or -1 for one not sent: of a partition
// let go, or of an index found failing since the chunk was filled (while
// it waited for a worker), which goes to the waiting room instead of
// holding this worker as long as the request that fails it.
func (f *flow) sendable(ch chunk) (items []deliver.Item, at []int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	items = ch.items[:0:0]
	at = make([]int, 0, len(ch.items))
	for _, s := range ch.spans {
		for k := s.lo; k < s.hi; k++ {
			switch {
			case s.b.p.gone:
				at = append(at, -1)
			case f.w.failing(s.b.items[k].Index):
				f.park(s.b, k, deliver.Outcome{})
				at = append(at, -1)
			default:
				at = append(at, len(items))
				items = append(items, s.b.items[k])
			}
		}
	}
	if len(items) == len(ch.items) {
		items = ch.items // as filled
	}
	return items, at
}

// deliver sends items once (what fails for a passing reason comes back
// as Again).
func (f *flow) deliver(ctx context.Context, items []deliver.Item) ([]deliver.Outcome, error) {
	return f.a.sink.Deliver(ctx, items)
}

// outcome records item k's outcome. A delivered document's bytes and
// record are let go at once: only rejected ones are needed later, for the
// conflict retry and the dead letter. Under f.mu.
func (f *flow) outcome(b *batch, k int, o deliver.Outcome) {
	b.outcomes[k] = o
	if o.Delivered {
		b.items[k].Source = nil
		b.items[k].Record = nil
	}
}
