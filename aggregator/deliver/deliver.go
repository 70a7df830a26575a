// Package deliver is the aggregator's last stage: documents to where they
// are kept, and each one's outcome back. Elasticsearch's bulk indexer
// (Bulk, behind the duplicate check Lookup) implements Sink, as do the
// NDJSON outputs of `sluice run`; records that cannot be delivered go to
// DeadLetters (the dead-letter Topic, or sluice run's file). It also
// holds what Elasticsearch needs beforehand: the client, the index
// template and the lifecycles.
package deliver

import "context"

// Sink is where documents go. It reports each item's outcome, in order.
type Sink interface {
	// Deliver sends items once: each is delivered, rejected for good (for
	// the dead letters), or Again: not taken yet for a reason that passes
	// (429, 5xx, a cluster block, a failed request), for the caller to
	// send again later. An error means the sink cannot go on (ctx ended, a
	// write failed) and no item has an outcome.
	Deliver(ctx context.Context, items []Item) ([]Outcome, error)
	// DeliverAll is Deliver that sends what is not taken yet again itself,
	// with backoff, until every item is delivered or rejected for good, or
	// ctx ends.
	DeliverAll(ctx context.Context, items []Item) ([]Outcome, error)
}
