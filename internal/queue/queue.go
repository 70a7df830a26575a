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

// Size is what a record counts against the byte budget: its value, key and
// headers, plus a fixed overhead for the bookkeeping.
func Size(r *kgo.Record) int64 {
	n := int64(len(r.Value) + len(r.Key) + len(r.Topic) + messageOverhead)
	for _, h := range r.Headers {
		n += int64(len(h.Key) + len(h.Value))
	}
	return n
}

const messageOverhead = 64

// Queue is a FIFO of messages bounded by their total size. It is safe for
// concurrent use by any number of producers and consumers.
type Queue struct {
	maxBytes int64

	mu      sync.Mutex
	items   []Message
	bytes   int64
	closed  bool
	changed chan struct{} // closed and replaced whenever items, bytes or closed change
}

// New returns a queue holding at most maxBytes of messages. A message larger
// than maxBytes is still accepted when the queue is empty, so that no record
// can block forever.
func New(maxBytes int64) *Queue {
	return &Queue{maxBytes: max(maxBytes, 1), changed: make(chan struct{})}
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
	m.size = Size(m.Record)
	for {
		q.mu.Lock()
		if q.closed {
			q.mu.Unlock()
			return ErrClosed
		}
		if q.bytes+m.size <= q.maxBytes || len(q.items) == 0 {
			q.items = append(q.items, m)
			q.bytes += m.size
			q.broadcast()
			q.mu.Unlock()
			return nil
		}
		wait := q.changed
		q.mu.Unlock()
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-wait:
		}
	}
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
				q.bytes -= m.size
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
		q.broadcast()
	}
}

// Len returns the number of queued messages and their size in bytes.
func (q *Queue) Len() (int, int64) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.items), q.bytes
}
