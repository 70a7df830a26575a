package runner

import (
	"context"
	"fmt"
	"sync"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicelog/sluice/internal/queue"
)

// queuePublisher is the shipper.Publisher of `sluice run`: it publishes
// to the in-process queue. A record's ack fires when
// the queue's consumer acknowledges its message.
type queuePublisher struct {
	q *queue.Queue

	mu          sync.Mutex
	outstanding int
	settled     chan struct{} // closed and replaced when outstanding drops to 0
}

// newQueuePublisher returns a Publisher onto q.
func newQueuePublisher(q *queue.Queue) *queuePublisher {
	return &queuePublisher{q: q, settled: make(chan struct{})}
}

// Prepare does nothing: a queue has no topics to create.
func (p *queuePublisher) Prepare(context.Context, string) error { return nil }

// Publish queues rec, waiting while the queue is full.
func (p *queuePublisher) Publish(ctx context.Context, rec *kgo.Record, acked func()) error {
	p.mu.Lock()
	p.outstanding++
	p.mu.Unlock()
	var once sync.Once
	err := p.q.Put(ctx, queue.Message{Record: rec, Ack: func() {
		once.Do(func() {
			acked()
			p.done()
		})
	}})
	if err != nil {
		p.done()
		return fmt.Errorf("queueing record: %w", err)
	}
	return nil
}

func (p *queuePublisher) done() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.outstanding--
	if p.outstanding == 0 {
		close(p.settled)
		p.settled = make(chan struct{})
	}
}

// Close waits until every published record is acknowledged, or ctx ends.
// It leaves the queue open: its owner closes it once the consumer is done.
func (p *queuePublisher) Close(ctx context.Context) error {
	for {
		p.mu.Lock()
		n, settled := p.outstanding, p.settled
		p.mu.Unlock()
		if n == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%d records still unacknowledged at shutdown (read again at the next start): %w", n, ctx.Err())
		case <-settled:
		}
	}
}
