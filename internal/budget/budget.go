// Package budget is Sluice's one bound on bytes in flight: the shipper's
// lines read but not acknowledged, `sluice run`'s in-process queue and the
// aggregator's records polled but not committed. Each stage reserves what
// it takes and releases it once the next stage has acknowledged it, so a
// slow destination stops the sources and the files (or Kafka) stay the
// buffer. Size is the one rule for what a Kafka record weighs.
package budget

import (
	"container/list"
	"context"
	"errors"
	"sync"

	"github.com/twmb/franz-go/pkg/kgo"
)

// ErrClosed is Acquire's after Close.
var ErrClosed = errors.New("budget closed")

// Overhead is what a record weighs beyond its bytes: the bookkeeping that
// carries it (a queue slot, a batch's outcome, a pending acknowledgement).
const Overhead = 64

// Size is what a Kafka record weighs against a budget: its value, key,
// topic and headers, plus Overhead.
func Size(r *kgo.Record) int64 {
	n := int64(len(r.Value) + len(r.Key) + len(r.Topic) + Overhead)
	for _, h := range r.Headers {
		n += int64(len(h.Key) + len(h.Value))
	}
	return n
}

// Bytes is a budget of max bytes. Acquire waits in FIFO order while the
// bytes held and those asked for are over max, except that a request
// larger than max is granted once nothing else is held, so that no
// request waits forever. Safe for concurrent use.
type Bytes struct {
	max int64

	mu      sync.Mutex
	held    int64
	closed  bool
	waiters list.List // of *waiter, in arrival order
}

type waiter struct {
	n     int64
	ready chan struct{} // closed once granted, or at Close (granted false)
	ok    bool
}

// New returns a budget of size bytes (at least 1).
func New(size int64) *Bytes {
	return &Bytes{max: max(size, 1)}
}

// Max is the budget's size.
func (b *Bytes) Max() int64 { return b.max }

// Held is the bytes acquired or charged and not released.
func (b *Bytes) Held() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.held
}

// Full reports whether the bytes held reach max.
func (b *Bytes) Full() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.held >= b.max
}

// fits reports whether n bytes may be granted now. Under mu.
func (b *Bytes) fits(n int64) bool {
	return b.held+n <= b.max || b.held == 0
}

// TryAcquire takes n bytes if they are free now and nobody waits before.
func (b *Bytes) TryAcquire(n int64) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed || b.waiters.Len() > 0 || !b.fits(n) {
		return false
	}
	b.held += n
	return true
}

// Acquire takes n bytes, waiting for them in turn. It returns ctx.Err() if
// ctx ends first, and ErrClosed once the budget is closed; then nothing is
// taken.
func (b *Bytes) Acquire(ctx context.Context, n int64) error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return ErrClosed
	}
	if b.waiters.Len() == 0 && b.fits(n) {
		b.held += n
		b.mu.Unlock()
		return nil
	}
	w := &waiter{n: n, ready: make(chan struct{})}
	e := b.waiters.PushBack(w)
	b.mu.Unlock()
	select {
	case <-w.ready:
		if !w.ok {
			return ErrClosed
		}
		return nil
	case <-ctx.Done():
		b.mu.Lock()
		select {
		case <-w.ready: // granted (or closed) meanwhile: give it back
			if w.ok {
				b.held -= n
				b.grant()
			}
		default:
			b.waiters.Remove(e)
			b.grant() // the next in line may fit now that this one left
		}
		b.mu.Unlock()
		return ctx.Err()
	}
}

// Charge takes n bytes at once, past max if need be, for a caller that
// holds them already (the aggregator's poll has its records in hand) and
// waits for room its own way, with Full.
func (b *Bytes) Charge(n int64) {
	b.mu.Lock()
	b.held += n
	b.mu.Unlock()
}

// Release gives back n bytes taken by Acquire, TryAcquire or Charge.
func (b *Bytes) Release(n int64) {
	b.mu.Lock()
	b.held -= n
	b.grant()
	b.mu.Unlock()
}

// grant wakes the waiters at the front of the line that fit now. Under mu.
func (b *Bytes) grant() {
	for e := b.waiters.Front(); e != nil; e = b.waiters.Front() {
		w := e.Value.(*waiter)
		if b.closed || !b.fits(w.n) {
			return
		}
		b.held += w.n
		w.ok = true
		close(w.ready)
		b.waiters.Remove(e)
	}
}

// Close fails the waiting and later Acquires with ErrClosed; Release
// still works.
func (b *Bytes) Close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return
	}
	b.closed = true
	for e := b.waiters.Front(); e != nil; e = b.waiters.Front() {
		close(e.Value.(*waiter).ready)
		b.waiters.Remove(e)
	}
}
