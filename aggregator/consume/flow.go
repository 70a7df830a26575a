package consume

import (
	"cmp"
	"context"
	"errors"
	"sort"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap"

	"github.com/sluicelog/sluice/aggregator/deliver"
	"github.com/sluicelog/sluice/aggregator/process"
	"github.com/sluicelog/sluice/internal/budget"
)

// flow carries polled batches to the sink and on to their commit, several
// batches at a time, so that Elasticsearch is never idle between polls:
//
//   - the poll loop splits each poll by partition into batches and builds
//     their documents into chunks of up to bulk_bytes (put, flush), which
//     may span batches; a chunk not full goes out flush_interval after its
//     first document (flushAged), or before the loop waits for anything
//     else;
//   - up to sinkWorkers chunks are delivered at once (index); flush waits
//     for a free worker, which bounds the documents in flight;
//   - a document Elasticsearch does not take yet (429, 5xx, a cluster
//     block, a failed request) leaves its worker for the waiting room of
//     its index (waiting.go): it is sent again there, with backoff, one
//     request per index at a time, while the other indices go on. New
//     documents of a failing index go straight to its waiting room;
//   - one finisher takes the batches whose documents all have an outcome,
//     retries mapping conflicts, writes dead letters, and commits each
//     partition up to its first batch not finished: an offset is
//     committed only once every record at or below it in its partition is
//     handled, and a batch stuck on a failing index holds back only its
//     own partition.
//
// The records not handled yet, less those waiting, count against a
// budget of bytes (waitRoom): the poll loop does not poll again while it
// is spent. The records waiting count against a bound of their own; above
// it the partitions that hold them are paused (pauses).
//
// When the flow's context ends, or a sink, dead-letter or commit call
// fails, everything in flight is abandoned uncommitted (stop). A commit
// refused because this member is no longer in the group abandons the
// partitions instead (forget), and the flow goes on.
type flow struct {
	a *Loop
	// commit commits the offsets of the records, the latest of each
	// partition; nil where nothing is committed (replay, sluice run).
	commit func(ctx context.Context, latest []*kgo.Record) error
	// waitLimit is the bytes of waiting records above which their
	// partitions are paused.
	waitLimit int

	ctx    context.Context
	cancel context.CancelFunc
	slots  chan struct{} // one per chunk being delivered
	wg     sync.WaitGroup

	cur chunk // being filled; poll loop only
	// abort is closed at the shutdown deadline: waits of the poll loop
	// give up then (errDrainTimeout). Nil: none.
	abort chan struct{}

	mu    sync.Mutex
	parts map[topicPartition]*partition // with batches not committed
	room  *budget.Bytes                 // charged by batches not finished, up to budget
	done  []*batch                      // delivered, for the finisher
	err   error
	w     waitingRoom
	// commitBlocked: a commit was refused for a membership or generation
	// that is gone; none can succeed before the group's rebalance, which
	// the drain then does not wait for.
	commitBlocked bool
	// inChunks is the documents in chunks handed to a worker; busy is
	// whether the finisher has batches in hand. With neither, and only
	// documents of failing indices left, a drain need not wait.
	inChunks int
	busy     bool
	// finishing wakes the finisher when a batch is delivered; freed wakes
	// the poll loop when batches are finished or committed.
	finishing, freed chan struct{}
}

// partition is one partition's batches not committed yet, in offset order.
type partition struct {
	tp      topicPartition
	batches []*batch
	gone    bool // forgotten: revoked, lost, or this member left the group
}

// batch is one partition's records of one poll on their way through the
// flow.
type batch struct {
	p    *partition
	last *kgo.Record // highest offset: what a commit needs
	// charged is the bytes the batch holds against the budget: its
	// records' sizes less those of its documents handled (delivered or
	// rejected) or waiting.
	charged int
	// items and outcomes have a place for every record; the poll loop
	// fills items[:n], chunks fill outcomes. Their slice headers change
	// only under flow.mu, at seal.
	items    []deliver.Item
	outcomes []deliver.Outcome
	n        int
	dead     []deliver.DeadLetter // records that never became documents; poll loop, then finisher

	// Under flow.mu: pending is the items without an outcome, counted
	// down as they get one and up by n at seal, so it is 0 only once the
	// batch is sealed and every item has its outcome.
	pending  int
	sealed   bool
	queued   bool // handed to the finisher
	finished bool // finished, to be committed
}

// checkDelivered hands the batch to the finisher once every item has an
// outcome. Under flow.mu.
func (f *flow) checkDelivered(b *batch) {
	if b.sealed && b.pending == 0 && !b.queued {
		b.queued = true
		f.done = append(f.done, b)
		notify(f.finishing)
	}
}

// newFlow starts a flow; stop ends it.
func (a *Loop) newFlow(ctx context.Context, commit func(context.Context, []*kgo.Record) error) *flow {
	ctx, cancel := context.WithCancel(ctx)
	f := &flow{
		a: a, commit: commit,
		waitLimit: cmp.Or(a.waitLimit, a.budget), room: budget.New(int64(a.budget)), // bytes of records in flight above which polling waits
		ctx: ctx, cancel: cancel,
		slots:     make(chan struct{}, a.sinkWorkers),
		parts:     make(map[topicPartition]*partition),
		finishing: make(chan struct{}, 1), freed: make(chan struct{}, 1),
	}
	f.w.init(a.sinkWorkers)
	f.wg.Add(2)
	go f.finisher()
	go f.retrier()
	return f
}

// stop abandons what is in flight and waits for the flow's goroutines.
func (f *flow) stop() {
	f.cancel()
	f.wg.Wait()
	f.mu.Lock()
	f.w.clearMetrics(f.a.metrics)
	f.mu.Unlock()
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

// add builds a polled batch into documents, sends them on in chunks and
// queues each partition's records for their commit. Poll loop only.
func (f *flow) add(records []*kgo.Record) error {
	for len(records) > 0 {
		// A poll's records come grouped by partition.
		n := 1
		for n < len(records) && records[n].Partition == records[0].Partition && records[n].Topic == records[0].Topic {
			n++
		}
		if err := f.addBatch(records[:n]); err != nil {
			return err
		}
		records = records[n:]
	}
	return nil
}

// addBatch is add for the records of one partition.
func (f *flow) addBatch(records []*kgo.Record) error {
	b := &batch{items: make([]deliver.Item, len(records)), outcomes: make([]deliver.Outcome, len(records))}
	for _, r := range records {
		b.charged += process.RecordSize(r)
		if b.last == nil || r.Offset > b.last.Offset {
			b.last = r
		}
	}
	tp := topicPartition{records[0].Topic, records[0].Partition}
	f.mu.Lock()
	p := f.parts[tp]
	if p == nil {
		p = &partition{tp: tp}
		f.parts[tp] = p
	}
	b.p = p
	p.batches = append(p.batches, b)
	f.room.Charge(int64(b.charged)) // polled already: the poll loop waits in waitRoom
	f.mu.Unlock()
	a := f.a
	for _, rec := range records {
		a.metrics.consumed.WithLabelValues(rec.Topic).Inc()
		it, keep, dead := a.docs.Item(rec)
		if dead != nil {
			b.dead = append(b.dead, *dead)
			continue
		}
		if !keep {
			continue // not indexed; its offset is committed with the batch
		}
		b.items[b.n] = it
		b.n++
		if err := f.put(b, b.n-1); err != nil {
			return err
		}
	}
	f.mu.Lock()
	b.items, b.outcomes = b.items[:b.n], b.outcomes[:b.n]
	b.sealed = true
	b.pending += b.n
	f.checkDelivered(b)
	f.mu.Unlock()
	return nil
}

// idle reports whether every batch is committed.
func (f *flow) idle() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.parts) == 0
}

// waitRoom flushes and waits while the records in flight are over the
// budget, or, when rebalance is signalled meanwhile, until then. One batch
// is always allowed, whatever its size. Poll loop only.
func (f *flow) waitRoom(rebalance <-chan struct{}) (rebalanceWanted bool, err error) {
	return f.waitUntil(rebalance, nil, func() bool { return len(f.parts) == 0 || !f.room.Full() })
}

// errDrainTimeout is drain's when work is still in flight at its deadline.
var errDrainTimeout = errors.New("work still in flight at the deadline")

// drain delivers and commits everything in flight, and fails with
// errDrainTimeout if that takes longer than d (0: no limit). Poll loop
// only.
func (f *flow) drain(d time.Duration) error {
	var deadline <-chan time.Time
	if d > 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		deadline = t.C
	}
	_, err := f.waitUntil(nil, deadline, func() bool { return len(f.parts) == 0 || f.commitBlocked || f.onlyStuck() })
	return err
}

// onlyStuck reports whether all that is left in flight is documents of
// indices that keep failing (with everything else handled and committed):
// a drain does not wait for them, for a red index can stay red for hours,
// and a rebalance or a stop would wait for nothing. Under f.mu.
func (f *flow) onlyStuck() bool {
	return f.inChunks == 0 && len(f.done) == 0 && !f.busy && f.w.stuck()
}

// unblock has the finisher try the commits again, once the rebalance a
// refused commit waited for is allowed.
func (f *flow) unblock() {
	f.mu.Lock()
	blocked := f.commitBlocked
	f.commitBlocked = false
	f.mu.Unlock()
	if blocked {
		notify(f.finishing)
	}
}

// waitUntil waits until done, called under f.mu, is true, first sending
// the chunk being filled if it has to wait at all.
func (f *flow) waitUntil(rebalance <-chan struct{}, deadline <-chan time.Time, done func() bool) (rebalanceWanted bool, err error) {
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
		case <-deadline:
			return false, errDrainTimeout
		case <-f.abort:
			return false, errDrainTimeout
		case <-f.ctx.Done():
			return false, f.failure()
		}
	}
}

// inFlight is the records not committed and the documents waiting, for
// logs.
func (f *flow) inFlight() (batches, waiting int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, p := range f.parts {
		batches += len(p.batches)
	}
	return batches, f.w.items
}

// finisher finishes the delivered batches and commits behind them.
func (f *flow) finisher() {
	defer f.wg.Done()
	for {
		f.mu.Lock()
		todo := f.done
		f.done = nil
		f.busy = len(todo) > 0
		f.mu.Unlock()
		if len(todo) == 0 {
			select {
			case <-f.finishing:
			case <-f.ctx.Done():
				return
			}
			f.mu.Lock()
			todo = f.done
			f.done = nil
			f.busy = true
			f.mu.Unlock()
		}
		for _, b := range todo {
			f.mu.Lock()
			gone := b.p.gone
			f.mu.Unlock()
			if !gone {
				if err := f.a.finish(f.ctx, b); err != nil {
					f.fail(err)
					return
				}
			}
			f.mu.Lock()
			b.finished = true
			f.room.Release(int64(b.charged))
			b.charged = 0
			b.items, b.outcomes, b.dead = nil, nil, nil
			f.mu.Unlock()
		}
		if err := f.commitFinished(); err != nil {
			f.fail(err)
			return
		}
		f.mu.Lock()
		f.busy = false
		f.mu.Unlock()
		notify(f.freed)
	}
}

// commitFinished commits each partition up to its first batch not
// finished, and lets go of the committed batches.
func (f *flow) commitFinished() error {
	type upTo struct {
		p *partition
		n int // batches
	}
	var commits []upTo
	var latest []*kgo.Record
	f.mu.Lock()
	for _, p := range f.parts {
		n := 0
		for n < len(p.batches) && p.batches[n].finished {
			n++
		}
		if n > 0 {
			commits = append(commits, upTo{p, n})
			latest = append(latest, p.batches[n-1].last)
		}
	}
	f.mu.Unlock()
	if len(commits) == 0 {
		return nil
	}
	if f.commit != nil {
		if err := f.commit(f.ctx, latest); err != nil {
			if !errors.Is(err, errNotMember) {
				return err
			}
			// Nothing commits before the group's rebalance, which waits
			// for this member to allow it: the drain lets it go on. Then
			// the partitions this member lost are forgotten (callbacks),
			// and those it keeps are committed (unblock).
			if ok, n := f.a.logEvery.Allow("not member"); ok {
				f.a.log.Warn("offsets not committed: this member is out of the consumer group or its generation; letting the group rebalance, then committing what this member still owns",
					zap.Error(err), zap.Int("suppressed", n))
			}
			f.mu.Lock()
			f.commitBlocked = true
			f.mu.Unlock()
			notify(f.freed)
			return nil
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, c := range commits {
		p := c.p
		clear(p.batches[:c.n])
		p.batches = p.batches[c.n:]
		if len(p.batches) == 0 && !p.gone && f.parts[p.tp] == p {
			delete(f.parts, p.tp)
		}
	}
	return nil
}

// forget abandons, uncommitted, what is in flight of the partitions: they
// were revoked or lost. Its documents still in a chunk finish there and
// are let go.
func (f *flow) forget(tps []topicPartition) {
	f.mu.Lock()
	for _, tp := range tps {
		p := f.parts[tp]
		if p == nil {
			continue
		}
		p.gone = true
		delete(f.parts, tp)
		for _, b := range p.batches {
			f.room.Release(int64(b.charged))
			b.charged = 0
		}
	}
	f.w.forgetGone(f.a.metrics)
	f.mu.Unlock()
	notify(f.freed)
}

// pauses returns which partitions to pause because too many of their
// documents wait: those that hold waiting documents while the waiting
// records are over the bound; and whether to resume the paused ones,
// once they are under half of it. Poll loop only.
func (f *flow) pauses() (pause map[string][]int32, resume bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.w.bytes < f.waitLimit {
		return nil, f.w.bytes < f.waitLimit/2
	}
	pause = map[string][]int32{}
	for tp := range f.w.partitions() {
		pause[tp.topic] = append(pause[tp.topic], tp.partition)
	}
	for _, ps := range pause {
		sort.Slice(ps, func(i, j int) bool { return ps[i] < ps[j] })
	}
	return pause, false
}
