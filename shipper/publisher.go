package shipper

import (
	"context"
	"fmt"
	"sync"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicelog/sluice/internal/budget"
	"github.com/sluicelog/sluice/internal/queue"
)

// Publisher is where harvesters hand their lines: Kafka for `sluice ship`,
// an in-process queue for `sluice run`. Records are in the Kafka wire
// format of package event either way.
type Publisher interface {
	// Prepare readies the destination for records to topic, e.g. creates
	// the Kafka topic. Harvesters call it before their first record.
	Prepare(ctx context.Context, topic string) error
	// Publish hands rec over and calls acked once the destination
	// acknowledged it, at most once, from any goroutine. It may block while
	// the destination is full, until ctx ends; an error means rec was not
	// taken and acked will not be called.
	// Once acked is called, rec's memory is used for other records: the
	// destination must be done with rec and its bytes by then.
	Publish(ctx context.Context, rec *kgo.Record, acked func()) error
	// Close waits up to ctx's deadline for published records to be
	// acknowledged, then releases the destination. Records not
	// acknowledged by then never are: the registry keeps their lines
	// unread.
	Close(ctx context.Context) error
}

// Option changes how New builds a shipper.
type Option func(*Shipper)

// WithPublisher makes the shipper hand its lines to p instead of producing
// them to Kafka; the kafka config section is then unused.
func WithPublisher(p Publisher) Option {
	return func(s *Shipper) { s.publisher = p }
}

// QueuePublisher publishes to an in-process queue. A record's ack fires when
// the queue's consumer acknowledges its message.
type QueuePublisher struct {
	q *queue.Queue

	mu          sync.Mutex
	outstanding int
	settled     chan struct{} // closed and replaced when outstanding drops to 0
}

// NewQueuePublisher returns a Publisher onto q.
func NewQueuePublisher(q *queue.Queue) *QueuePublisher {
	return &QueuePublisher{q: q, settled: make(chan struct{})}
}

// Prepare does nothing: a queue has no topics to create.
func (p *QueuePublisher) Prepare(context.Context, string) error { return nil }

// Publish queues rec, waiting while the queue is full.
func (p *QueuePublisher) Publish(ctx context.Context, rec *kgo.Record, acked func()) error {
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

func (p *QueuePublisher) done() {
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
func (p *QueuePublisher) Close(ctx context.Context) error {
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

// recordOverhead approximates the bytes a record costs beyond its value.
const recordOverhead = 512

// inFlight bounds the bytes read but not yet acknowledged: acquire blocks
// while it is spent, so a slow destination stops the readers. A line
// reserves its bytes plus recordOverhead before its record is built.
type inFlight struct {
	max     int64
	bytes   *budget.Bytes
	metrics *metrics
}

func newBudget(max int64, m *metrics) *inFlight {
	return &inFlight{max: max, bytes: budget.New(max), metrics: m}
}

// tryAcquire reserves n bytes if they are free now.
func (b *inFlight) tryAcquire(n int64) bool {
	if !b.bytes.TryAcquire(n) {
		return false
	}
	b.metrics.inFlightBytes.Add(float64(n))
	return true
}

// acquire reserves n bytes, waiting while the budget is spent.
func (b *inFlight) acquire(ctx context.Context, n int64) error {
	if err := b.bytes.Acquire(ctx, n); err != nil {
		return err
	}
	b.metrics.inFlightBytes.Add(float64(n))
	return nil
}

// release returns n reserved bytes.
func (b *inFlight) release(n int64) {
	// The gauge goes down before the bytes are free to take: the other way
	// round, another reader's acquire could add to it first, and it would
	// show more in flight than the budget allows.
	b.metrics.inFlightBytes.Sub(float64(n))
	b.bytes.Release(n)
}
