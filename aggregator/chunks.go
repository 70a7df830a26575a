package aggregator

import (
	"context"
	"sync"
)

// chunkIndexer sends a batch's documents to the sink chunk by chunk while
// the rest of the batch is still being parsed, with at most the configured
// number of requests in flight: Elasticsearch indexes one chunk while the
// next is prepared, instead of waiting for the whole batch. For a sink
// other than Elasticsearch one chunk is in flight at a time, which keeps
// the batch's order.
type chunkIndexer struct {
	ctx   context.Context
	sink  sink
	slots chan struct{}
	wg    sync.WaitGroup

	mu     sync.Mutex
	chunks []indexedChunk
	err    error
}

type indexedChunk struct {
	lo       int // position of the chunk's first item in the batch
	outcomes []outcome
}

func (a *Aggregator) newChunkIndexer(ctx context.Context) *chunkIndexer {
	workers := a.cfg.Elasticsearch.Workers
	if a.sink != sink(a.bulk) {
		workers = 1
	}
	return &chunkIndexer{ctx: ctx, sink: a.sink, slots: make(chan struct{}, workers)}
}

// submit starts indexing items, the batch's items from position lo,
// waiting while every worker is busy.
func (c *chunkIndexer) submit(lo int, items []item) {
	if len(items) == 0 {
		return
	}
	select {
	case c.slots <- struct{}{}:
	case <-c.ctx.Done():
		c.fail(c.ctx.Err())
		return
	}
	c.wg.Add(1)
	go func() {
		defer func() { <-c.slots; c.wg.Done() }()
		res, err := c.sink.index(c.ctx, items)
		if err != nil {
			c.fail(err)
			return
		}
		c.mu.Lock()
		c.chunks = append(c.chunks, indexedChunk{lo: lo, outcomes: res})
		c.mu.Unlock()
	}()
}

func (c *chunkIndexer) fail(err error) {
	c.mu.Lock()
	if c.err == nil {
		c.err = err
	}
	c.mu.Unlock()
}

// wait returns the outcomes of the n items submitted, in batch order, once
// every chunk is done.
func (c *chunkIndexer) wait(n int) ([]outcome, error) {
	c.wg.Wait()
	if c.err != nil {
		return nil, c.err
	}
	out := make([]outcome, n)
	for _, ch := range c.chunks {
		copy(out[ch.lo:], ch.outcomes)
	}
	return out, nil
}
