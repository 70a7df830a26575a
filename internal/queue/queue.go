// Package queue is the in-process hand-over between the shipper and the
// aggregator in `sluice run`: a FIFO of Kafka wire records bounded by bytes.
//
// Put blocks while the queue holds its byte budget, so a slow sink stops
// the readers and the files stay the buffer, as with Kafka. Every blocking
// call takes a context. Each message carries the acknowledgement callback
// of its line; the consumer calls it once the line's document is delivered.
package queue

import (
	"context"
	"errors"
	"sync"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicelog/sluice/internal/budget"
)

// ErrClosed is returned by Put after Close, and by Take once a closed queue
// is empty.
var ErrClosed = errors.New("queue closed")

// Message is one record on its way from the shipper to the sink.
type Message struct {
	// Record is the line in the same wire format it has in Kafka.
	Record *kgo.Record
	// Ack is called once the record's document is delivered (indexed,
	// written to the output or dead-lettered). It may be nil.
	Ack func()
	// size is what the message counts against the byte budget.
	size int64
}

// Queue is a FIFO of messages bounded by their total size. It is safe for
// concurrent use by any number of producers and consumers.
type Queue struct {
	room *budget.Bytes // the messages' sizes, from Put until Take

	mu      sync.Mutex
	items   []Message
	closed  bool
	changed chan struct{} // closed and replaced whenever items or closed change
}

// New returns a queue holding at most maxBytes of messages. A message larger
// than maxBytes is still accepted when the queue is empty, so that no record
// can block forever.
func New(maxBytes int64) *Queue {
	return &Queue{room: budget.New(maxBytes), changed: make(chan struct{})}
}

// broadcast wakes every waiter; call with mu held.
func (q *Queue) broadcast() {
	close(q.changed)
	q.changed = make(chan struct{})
}

// Put appends a message, waiting while the queue is full. It returns
// ctx.Err() if ctx ends first (the message is then not queued) and
// ErrClosed after Close.
func (q *Queue) Put(ctx context.Context, m Message) error {
	m.size = budget.Size(m.Record)
	if err := q.room.Acquire(ctx, m.size); err != nil {
		if errors.Is(err, budget.ErrClosed) {
			return ErrClosed
		}
		return err
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		q.room.Release(m.size)
		return ErrClosed
	}
	q.items = append(q.items, m)
	q.broadcast()
	return nil
}

// Take removes and returns up to maxItems messages, waiting until there is
// at least one. It returns ctx.Err() if ctx ends first, and ErrClosed once
// the queue is closed and empty.
func (q *Queue) Take(ctx context.Context, maxItems int) ([]Message, error) {
	maxItems = max(maxItems, 1)
	for {
		q.mu.Lock()
		if n := min(len(q.items), maxItems); n > 0 {
			out := make([]Message, n)
			copy(out, q.items)
			clear(q.items[:n])
			q.items = q.items[n:]
			if len(q.items) == 0 {
				q.items = nil // let the backing array go
			}
			for _, m := range out {
				q.room.Release(m.size)
			}
			q.broadcast()
			q.mu.Unlock()
			return out, nil
		}
		if q.closed {
			q.mu.Unlock()
			return nil, ErrClosed
		}
		wait := q.changed
		q.mu.Unlock()
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-wait:
		}
	}
}

// Close stops Put; Take still returns what is queued, then ErrClosed.
func (q *Queue) Close() {
	q.mu.Lock()
	defer q.mu.Unlock()
	if !q.closed {
		q.closed = true
		q.room.Close()
		q.broadcast()
	}
}

// Len returns the number of queued messages and their size in bytes.
func (q *Queue) Len() (int, int64) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.items), q.room.Held()
}
