package aggregator

import (
	"context"
	"sync"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicelog/sluice/parser"
)

// flow carries polled batches to the sink and on to their commit, several
// batches at a time, so that Elasticsearch is never idle between polls:
//
//   - the poll loop builds each batch's documents into chunks of up to
//     bulk_bytes (put, flush), which may span batches;
//   - up to sinkWorkers chunks are delivered at once (index); flush waits
//     for a free worker, which bounds the documents in flight;
//   - one finisher takes the batches in poll order: once every document of
//     the head batch has an outcome it retries mapping conflicts, writes
//     dead letters and commits, together with the batches behind it that
//     are delivered too. A batch is committed only after every earlier
//     one, so an offset is committed only once every record at or below it
//     in its partition is handled.
//
// The records of uncommitted batches count against a budget of bytes
// (waitRoom): the poll loop does not poll again while it is spent.
//
// When the flow's context ends, or a sink, dead-letter or commit call
// fails, everything in flight is abandoned uncommitted (stop).
type flow struct {
	a *Aggregator
	// commit commits the offsets of the records, the latest of each
	// partition; nil where nothing is committed (replay, sluice run).
	commit func(ctx context.Context, latest []*kgo.Record) error
	budget int // bytes of uncommitted records above which polling waits

	ctx    context.Context
	cancel context.CancelFunc
	slots  chan struct{} // one per chunk being delivered
	wg     sync.WaitGroup

	cur chunk // being filled; poll loop only

	mu    sync.Mutex
	queue []*batch // uncommitted, in poll order
	bytes int      // of the queue's records
	err   error
	// queued wakes the finisher when a batch is queued; freed wakes the
	// poll loop when batches leave the queue.
	queued, freed chan struct{}
}

// batch is one poll's records on their way through the flow.
type batch struct {
	records []*kgo.Record
	bytes   int // recordSize of the records
	// items and outcomes have a place for every record; the poll loop
	// fills items[:n], chunks fill outcomes. Their slice headers change
	// only under flow.mu, at seal.
	items    []item
	outcomes []outcome
	n        int
	dead     []deadLetter // records that never became documents; poll loop, then finisher

	// Under flow.mu: pending is the items without an outcome, counted
	// down by chunks as they complete and up by n at seal, so it is 0
	// only once the batch is sealed and every item has its outcome.
	pending   int
	sealed    bool
	delivered chan struct{} // closed then
}

func (b *batch) checkDelivered() {
	if b.sealed && b.pending == 0 {
		close(b.delivered)
	}
}

// newFlow starts a flow; stop ends it.
func (a *Aggregator) newFlow(ctx context.Context, commit func(context.Context, []*kgo.Record) error) *flow {
	ctx, cancel := context.WithCancel(ctx)
	f := &flow{
		a: a, commit: commit,
		budget: a.budget,
		ctx:    ctx, cancel: cancel,
		slots:  make(chan struct{}, a.sinkWorkers),
		queued: make(chan struct{}, 1), freed: make(chan struct{}, 1),
	}
	f.wg.Add(1)
	go f.finisher()
	return f
}

// stop abandons what is in flight and waits for the flow's goroutines.
func (f *flow) stop() {
	f.cancel()
	f.wg.Wait()
}

// fail ends the flow with err, the first error.
func (f *flow) fail(err error) {
	f.mu.Lock()
	if f.err == nil {
		f.err = err
	}
	f.mu.Unlock()
	f.cancel()
}

// failure is why the flow ended: the first error, or its context's.
func (f *flow) failure() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return f.err
	}
	return f.ctx.Err()
}

func notify(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// recordSize is what a record weighs against the budget.
func recordSize(r *kgo.Record) int {
	n := len(r.Key) + len(r.Value)
	for _, h := range r.Headers {
		n += len(h.Key) + len(h.Value)
	}
	return n
}

// add builds a polled batch into documents, sends them on in chunks and
// queues the batch for its commit. Poll loop only.
func (f *flow) add(records []*kgo.Record) error {
	b := &batch{records: records, items: make([]item, len(records)), outcomes: make([]outcome, len(records)),
		delivered: make(chan struct{})}
	for _, r := range records {
		b.bytes += recordSize(r)
	}
	f.mu.Lock()
	f.queue = append(f.queue, b)
	f.bytes += b.bytes
	f.mu.Unlock()
	notify(f.queued)
	a := f.a
	for i, rec := range records {
		a.metrics.consumed.WithLabelValues(rec.Topic).Inc()
		ev, err := a.decoder.Decode(rec)
		if err != nil {
			a.metrics.malformed.Inc()
			b.dead = append(b.dead, deadLetter{rec: rec, status: 0, reason: err.Error()})
			continue
		}
		doc := docPool.Get().(*parser.Doc)
		parsed, keep, _ := a.build(&ev, doc)
		if !parsed {
			a.metrics.parseFailures.WithLabelValues(ev.Type).Inc()
		}
		if !keep {
			recycle(doc)
			continue // not indexed; its offset is committed with the batch
		}
		src, err := appendDocument(make([]byte, 0, len(ev.Line)*2+512), doc)
		if err != nil {
			recycle(doc)
			b.dead = append(b.dead, deadLetter{rec: rec, reason: "encoding document: " + err.Error()})
			continue
		}
		// The document is done with once encoded: a conflict retry rebuilds
		// it from its JSON, so in-flight work holds only the bytes.
		index := a.names.name(&ev, doc)
		b.items[b.n] = item{index: index, id: ev.DocID(), source: src, rec: i, read: ev.ReadTime,
			lookup: a.dedupe.lookup(rec, &ev, doc, index)}
		recycle(doc)
		b.n++
		if err := f.put(b, b.n-1); err != nil {
			return err
		}
	}
	f.mu.Lock()
	b.items, b.outcomes = b.items[:b.n], b.outcomes[:b.n]
	b.sealed = true
	b.pending += b.n
	b.checkDelivered()
	f.mu.Unlock()
	return nil
}

// idle reports whether every batch is committed.
func (f *flow) idle() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.queue) == 0
}

// waitRoom flushes and waits while the uncommitted records are over the
// budget, or, when rebalance is signalled meanwhile, until then. One batch
// is always allowed, whatever its size. Poll loop only.
func (f *flow) waitRoom(rebalance <-chan struct{}) (rebalanceWanted bool, err error) {
	return f.waitUntil(rebalance, func() bool { return len(f.queue) == 0 || f.bytes < f.budget })
}

// drain delivers and commits everything in flight. Poll loop only.
func (f *flow) drain() error {
	_, err := f.waitUntil(nil, func() bool { return len(f.queue) == 0 })
	return err
}

// waitUntil waits until done, called under f.mu, is true, first sending
// the chunk being filled if it has to wait at all.
func (f *flow) waitUntil(rebalance <-chan struct{}, done func() bool) (rebalanceWanted bool, err error) {
	for flushed := false; ; {
		f.mu.Lock()
		ok, err := done(), f.err
		f.mu.Unlock()
		if err != nil {
			return false, err
		}
		if ok {
			return false, nil
		}
		if !flushed {
			if err := f.flush(); err != nil {
				return false, err
			}
			flushed = true
			continue
		}
		select {
		case <-f.freed:
		case <-rebalance:
			return true, nil
		case <-f.ctx.Done():
			return false, f.failure()
		}
	}
}

// finisher finishes and commits the batches in poll order.
func (f *flow) finisher() {
	defer f.wg.Done()
	for {
		b, err := f.head()
		if err != nil {
			return
		}
		select {
		case <-b.delivered:
		case <-f.ctx.Done():
			return
		}
		done := []*batch{b}
		if err := f.a.finish(f.ctx, b); err != nil {
			f.fail(err)
			return
		}
		// The batches behind it that are delivered too are committed
		// with it: one commit instead of several.
		for {
			f.mu.Lock()
			var next *batch
			if len(done) < len(f.queue) {
				next = f.queue[len(done)]
			}
			f.mu.Unlock()
			if next == nil || !isClosed(next.delivered) {
				break
			}
			if err := f.a.finish(f.ctx, next); err != nil {
				f.fail(err)
				return
			}
			done = append(done, next)
		}
		if f.commit != nil {
			if err := f.commit(f.ctx, latest(done)); err != nil {
				f.fail(err)
				return
			}
		}
		f.mu.Lock()
		for i, d := range done {
			f.bytes -= d.bytes
			f.queue[i] = nil
		}
		f.queue = f.queue[len(done):]
		f.mu.Unlock()
		notify(f.freed)
	}
}

// head waits for the first uncommitted batch.
func (f *flow) head() (*batch, error) {
	for {
		f.mu.Lock()
		var b *batch
		if len(f.queue) > 0 {
			b = f.queue[0]
		}
		f.mu.Unlock()
		if b != nil {
			return b, nil
		}
		select {
		case <-f.queued:
		case <-f.ctx.Done():
			return nil, f.ctx.Err()
		}
	}
}

func isClosed(c chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// latest returns, of each partition in the batches, its record with the
// highest offset: what a commit of the batches needs.
func latest(batches []*batch) []*kgo.Record {
	last := make(map[topicPartition]*kgo.Record)
	for _, b := range batches {
		for _, r := range b.records {
			tp := topicPartition{r.Topic, r.Partition}
			if l, ok := last[tp]; !ok || r.Offset > l.Offset {
				last[tp] = r
			}
		}
	}
	out := make([]*kgo.Record, 0, len(last))
	for _, r := range last {
		out = append(out, r)
	}
	return out
}
