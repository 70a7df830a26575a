package shipper

import (
	"context"
	"sync/atomic"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicelog/sluice/internal/budget"
)

// Publisher is where harvesters hand their lines: Kafka by default, or
// what WithPublisher gives. Records are in the Kafka wire format of package
// event either way.
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

// recordOverhead approximates the bytes a record costs beyond its value.
const recordOverhead = 512

// inFlight bounds the bytes read but not yet acknowledged: acquire blocks
// while it is spent, so a slow destination stops the readers. A line
// reserves its bytes plus recordOverhead before its record is built.
type inFlight struct {
	max     int64
	bytes   *budget.Bytes
	metrics *metrics
	// readers is the harvesters running, among which turns share it
	// (turn.go).
	readers atomic.Int64
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
