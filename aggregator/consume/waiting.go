package consume

import (
	"strconv"
	"time"

	"go.uber.org/zap"

	"github.com/sluicelog/sluice/aggregator/deliver"
)

// waitingRoom holds the documents Elasticsearch did not take yet, by
// index, out of the workers: a red index (every item 503 after the
// primary's timeout), a write block, a 429 storm. They are sent again by
// the retrier, with backoff, at most one request per index at a time and
// at most one per worker overall, on slots of their own, so that a failing
// index costs the healthy ones no worker. All of it is under flow.mu.
type waitingRoom struct {
	byIndex map[string]*waitingIndex
	items   int // documents waiting, sent again or not
	bytes   int // their records' sizes
	slots   chan struct{}
	wake    chan struct{}
}

// waitingIndex is one index's waiting documents.
type waitingIndex struct {
	index string
	queue []waiter // not being sent
	// sending is the requests being sent, by number: one while the index
	// fails, up to the slots while it takes documents again.
	sending map[int][]waiter
	seq     int
	attempt int // failed attempts in a row
	next    time.Time
	since   time.Time // first failure of this spell
	status  int       // of the last failure
	reason  string
}

// waiter is one waiting document: its batch's item k.
type waiter struct {
	b *batch
	k int
}

func (w *waitingRoom) init(workers int) {
	w.byIndex = map[string]*waitingIndex{}
	w.slots = make(chan struct{}, max(workers, 1))
	w.wake = make(chan struct{}, 1)
}

// failing reports whether documents of index wait: new ones wait behind
// them instead of taking a worker for a request that would fail too.
func (w *waitingRoom) failing(index string) bool {
	return w.byIndex[index] != nil
}

// stuck reports whether documents wait, all for indices that failed
// again when sent again: not a passing 429, a lasting failure.
func (w *waitingRoom) stuck() bool {
	for _, wi := range w.byIndex {
		if wi.attempt < 2 {
			return false
		}
	}
	return len(w.byIndex) > 0
}

// park puts item k of b in the waiting room after o, a passing failure,
// and moves its record's bytes from the budget to the waiting room's
// bound. Under flow.mu.
func (f *flow) park(b *batch, k int, o deliver.Outcome) {
	w := &f.w
	it := &b.items[k]
	wi := w.byIndex[it.Index]
	if wi == nil {
		wi = &waitingIndex{index: it.Index, since: time.Now(), next: time.Now().Add(deliver.Retry(f.a.cfg.Elasticsearch.RetryMax).Delay(0)),
			sending: map[int][]waiter{}}
		w.byIndex[it.Index] = wi
	}
	if o.Again {
		wi.status, wi.reason = o.Status, o.Reason
	}
	wi.queue = append(wi.queue, waiter{b, k})
	w.items++
	w.bytes += it.RecBytes
	b.charged -= it.RecBytes
	f.room.Release(int64(it.RecBytes))
	f.a.metrics.indexFailing.WithLabelValues(it.Index).Inc()
	f.a.metrics.waiting.Set(float64(w.items))
	f.a.metrics.waitingBytes.Set(float64(w.bytes))
	notify(w.wake)
}

// unpark counts out a waiting document that has its outcome, or is let go.
func (w *waitingRoom) unpark(m *metrics, it *deliver.Item) {
	w.items--
	w.bytes -= it.RecBytes
	m.indexFailing.WithLabelValues(it.Index).Dec()
	m.waiting.Set(float64(w.items))
	m.waitingBytes.Set(float64(w.bytes))
}

// forgetGone lets go of the waiting documents of forgotten partitions.
func (w *waitingRoom) forgetGone(m *metrics) {
	for _, wi := range w.byIndex {
		kept := wi.queue[:0]
		for _, x := range wi.queue {
			if x.b.p.gone {
				w.unpark(m, &x.b.items[x.k])
				continue
			}
			kept = append(kept, x)
		}
		clear(wi.queue[len(kept):])
		wi.queue = kept
		// Those being sent are counted out when their request returns.
	}
}

// partitions returns the partitions that hold waiting documents.
func (w *waitingRoom) partitions() map[topicPartition]bool {
	out := map[topicPartition]bool{}
	for _, wi := range w.byIndex {
		for _, x := range wi.queue {
			if !x.b.p.gone {
				out[x.b.p.tp] = true
			}
		}
		for _, req := range wi.sending {
			for _, x := range req {
				if !x.b.p.gone {
					out[x.b.p.tp] = true
				}
			}
		}
	}
	return out
}

func (w *waitingRoom) clearMetrics(m *metrics) {
	for index := range w.byIndex {
		m.indexFailing.DeleteLabelValues(index)
	}
	m.waiting.Set(0)
	m.waitingBytes.Set(0)
}

// retrier sends the waiting documents again when their index's backoff
// has passed.
func (f *flow) retrier() {
	defer f.wg.Done()
	t := time.NewTimer(time.Hour)
	defer t.Stop()
	for {
		next := f.sendWaiting()
		wait := time.Hour
		if !next.IsZero() {
			wait = max(time.Until(next), time.Millisecond)
		}
		t.Reset(wait)
		select {
		case <-t.C:
		case <-f.w.wake:
		case <-f.ctx.Done():
			return
		}
	}
}

// sendWaiting starts a request for every index whose backoff has passed
// and that has none in flight, as far as slots allow, and returns when the
// next one is due (zero: none).
func (f *flow) sendWaiting() (next time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	now := time.Now()
	for _, wi := range f.w.byIndex {
		// One request at a time while the index fails; as many as there
		// are slots once it took one, to catch up.
		if len(wi.queue) == 0 || len(wi.sending) > 0 && wi.attempt > 0 {
			continue
		}
		if wi.next.After(now) {
			if next.IsZero() || wi.next.Before(next) {
				next = wi.next
			}
			continue
		}
		select {
		case f.w.slots <- struct{}{}:
		default:
			return now.Add(50 * time.Millisecond) // all busy; look again soon
		}
		size, n := 0, 0
		for n < len(wi.queue) {
			it := &wi.queue[n].b.items[wi.queue[n].k]
			s := deliver.BulkSize(it)
			if n > 0 && size+s > f.a.cfg.Elasticsearch.BulkBytes {
				break
			}
			size += s
			n++
		}
		req := append([]waiter(nil), wi.queue[:n]...)
		wi.queue = wi.queue[n:]
		wi.seq++
		wi.sending[wi.seq] = req
		items := make([]deliver.Item, n)
		for i, x := range req {
			items[i] = x.b.items[x.k]
		}
		f.wg.Add(1)
		go f.resend(wi, wi.seq, items)
	}
	return next
}

// resend sends an index's waiting documents again and hands out the
// outcomes; those that fail again go back to the front of the queue.
func (f *flow) resend(wi *waitingIndex, seq int, items []deliver.Item) {
	defer func() { <-f.w.slots; f.wg.Done(); notify(f.w.wake); notify(f.freed) }()
	f.a.retried(len(items))
	res, err := f.deliver(f.ctx, items)
	if err != nil {
		if f.ctx.Err() == nil {
			f.fail(err)
		}
		return
	}
	m := f.a.metrics
	f.mu.Lock()
	defer f.mu.Unlock()
	var again []waiter
	req := wi.sending[seq]
	delete(wi.sending, seq)
	for i, x := range req {
		o := res[i]
		if o.Again {
			if !x.b.p.gone {
				again = append(again, x)
				wi.status, wi.reason = o.Status, o.Reason
				continue
			}
		}
		w := &f.w
		w.unpark(m, &x.b.items[x.k])
		if x.b.p.gone {
			continue // let go; its bytes left the budget with the partition
		}
		f.outcome(x.b, x.k, o)
		x.b.pending--
		f.checkDelivered(x.b)
	}
	if len(again) > 0 {
		wi.queue = append(again, wi.queue...)
		wi.attempt++
		wi.next = time.Now().Add(deliver.Retry(f.a.cfg.Elasticsearch.RetryMax).Delay(wi.attempt))
		f.warnWaiting(wi)
		return
	}
	wi.attempt = 0
	wi.next = time.Time{}
	if len(wi.queue) == 0 && len(wi.sending) == 0 && f.w.byIndex[wi.index] == wi {
		delete(f.w.byIndex, wi.index)
		m.indexFailing.DeleteLabelValues(wi.index)
		f.a.log.Info("elasticsearch takes the documents of the index again", zap.String("index", wi.index),
			zap.Duration("failing_for", time.Since(wi.since).Round(time.Second)))
	}
}

// warnWaiting says, once a minute per index and status, that an index's
// documents wait.
func (f *flow) warnWaiting(wi *waitingIndex) {
	ok, n := f.a.logEvery.Allow("waiting " + wi.index + " " + strconv.Itoa(wi.status))
	if !ok {
		return
	}
	f.a.log.Warn("elasticsearch does not take the documents of an index; they wait and are sent again, other indices go on",
		zap.String("index", wi.index), zap.Int("status", wi.status), zap.String("reason", wi.reason),
		zap.Int("waiting", len(wi.queue)), zap.Duration("failing_for", time.Since(wi.since).Round(time.Second)),
		zap.Int("warnings_suppressed", n))
}
