package consume

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap/zaptest"

	"github.com/sluicelog/sluice/aggregator/deliver"
	"github.com/sluicelog/sluice/aggregator/internal/records"
	"github.com/sluicelog/sluice/aggregator/process"
	"github.com/sluicelog/sluice/internal/event"
	"github.com/sluicelog/sluice/internal/telemetry"
)

// flowRecord is a record at Kafka offset off of partition 0.
func flowRecord(off int64) *kgo.Record {
	r := records.Service(off*100, fmt.Sprintf(`{"level":"info","msg":"line %d"}`, off))
	r.Offset = off
	return r
}

// flowID is the document id of flowRecord(off).
func flowID(off int64) string { return event.DocID("n1", "1-2-3", off*100) }

// flowBatches makes n batches of size records each, offsets from 0.
func flowBatches(n, size int) [][]*kgo.Record {
	out := make([][]*kgo.Record, n)
	off := int64(0)
	for i := range out {
		for range size {
			out[i] = append(out[i], flowRecord(off))
			off++
		}
	}
	return out
}

// testSink delivers every document, at once (auto) or when the test
// releases the call.
type testSink struct {
	auto  bool
	calls chan *sinkCall

	mu        sync.Mutex
	delivered map[string]bool
	inFlight  int
	maxFlight int
	nCalls    int // index calls
}

type sinkCall struct {
	items    []deliver.Item
	release  chan error    // nil: delivered; else the call fails
	returned chan struct{} // closed once delivered
}

func newTestSink(auto bool) *testSink {
	return &testSink{auto: auto, calls: make(chan *sinkCall, 1000), delivered: map[string]bool{}}
}

func (s *testSink) DeliverAll(ctx context.Context, items []deliver.Item) ([]deliver.Outcome, error) {
	return s.Deliver(ctx, items)
}

func (s *testSink) Deliver(ctx context.Context, items []deliver.Item) ([]deliver.Outcome, error) {
	s.mu.Lock()
	s.nCalls++
	s.inFlight++
	s.maxFlight = max(s.maxFlight, s.inFlight)
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.inFlight--
		s.mu.Unlock()
	}()
	if !s.auto {
		c := &sinkCall{items: items, release: make(chan error, 1), returned: make(chan struct{})}
		s.calls <- c
		select {
		case err := <-c.release:
			if err != nil {
				return nil, err
			}
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		defer close(c.returned)
	}
	out := make([]deliver.Outcome, len(items))
	s.mu.Lock()
	for i, it := range items {
		s.delivered[it.ID] = true
		out[i] = deliver.Outcome{Delivered: true, Status: 200}
	}
	s.mu.Unlock()
	return out, nil
}

// releaseAll releases every call from now on, until the test ends.
func (s *testSink) releaseAll(t *testing.T) {
	done := make(chan struct{})
	t.Cleanup(func() { close(done) })
	go func() {
		for {
			select {
			case call := <-s.calls:
				call.release <- nil
			case <-done:
				return
			}
		}
	}()
}

// requests is how many index calls the sink received.
func (s *testSink) requests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.nCalls
}

func (s *testSink) isDelivered(off int64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.delivered[flowID(off)]
}

// next returns the next call the sink received.
func (s *testSink) next(t *testing.T) *sinkCall {
	t.Helper()
	select {
	case c := <-s.calls:
		return c
	case <-time.After(10 * time.Second):
		t.Fatal("no bulk call")
		return nil
	}
}

// testConsumer hands out batches, one per poll, and checks every commit
// and AllowRebalance: commits in offset order, only over delivered
// documents; AllowRebalance only with everything committed.
type testConsumer struct {
	t       *testing.T
	sink    *testSink
	batches [][]*kgo.Record
	budget  int // when set, a poll is refused over this many undelivered record bytes
	// onPoll, when set, is called after batch i was handed out.
	onPoll  func(i int)
	commits chan int64 // each commit's next offset
	allowed chan int   // next at each AllowRebalance

	mu             sync.Mutex
	next           int   // batch to hand out next
	handed         int64 // offsets below are handed out
	committed      int64 // offsets below are committed
	maxOutstanding int
	allowedAt      []int // next at each AllowRebalance
	paused         map[string][]int32
}

func newTestConsumer(t *testing.T, sink *testSink, batches [][]*kgo.Record) *testConsumer {
	return &testConsumer{t: t, sink: sink, batches: batches, commits: make(chan int64, 1000), allowed: make(chan int, 1000)}
}

// outstanding is the bytes of the records handed out and not delivered:
// what the flow's budget bounds (delivered ones wait for their commit
// holding no more than a record pointer per batch).
func (c *testConsumer) outstanding() int {
	n := 0
	for _, b := range c.batches[:c.next] {
		for _, r := range b {
			if r.Offset >= c.committed && !c.sink.isDelivered(r.Offset) {
				n += process.RecordSize(r)
			}
		}
	}
	return n
}

func (c *testConsumer) PollRecords(ctx context.Context, _ int) kgo.Fetches {
	c.mu.Lock()
	if c.next < len(c.batches) {
		if out := c.outstanding(); c.budget > 0 && out > 0 && out >= c.budget {
			c.t.Errorf("polled with %d bytes uncommitted, budget %d", out, c.budget)
		}
		i := c.next
		b := c.batches[i]
		c.next++
		c.handed = b[len(b)-1].Offset + 1
		c.maxOutstanding = max(c.maxOutstanding, c.outstanding())
		c.mu.Unlock()
		if c.onPoll != nil {
			c.onPoll(i)
		}
		return kgo.Fetches{{Topics: []kgo.FetchTopic{{Topic: "logs-service", Partitions: []kgo.FetchPartition{
			{Partition: 0, HighWatermark: 1 << 20, Records: b},
		}}}}}
	}
	c.mu.Unlock()
	if ctx == nil {
		return nil
	}
	<-ctx.Done()
	return kgo.NewErrFetch(ctx.Err())
}

func (c *testConsumer) CommitRecords(_ context.Context, records ...*kgo.Record) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, r := range records {
		if r.Offset < c.committed {
			c.t.Errorf("commit of offset %d after a commit up to %d", r.Offset+1, c.committed)
		}
		for off := c.committed; off <= r.Offset; off++ {
			if !c.sink.isDelivered(off) {
				c.t.Errorf("commit up to %d before offset %d was delivered", r.Offset+1, off)
			}
		}
		c.committed = max(c.committed, r.Offset+1)
	}
	c.commits <- c.committed
	return nil
}

func (c *testConsumer) AllowRebalance() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.committed != c.handed {
		c.t.Errorf("AllowRebalance with offsets %d to %d uncommitted", c.committed, c.handed)
	}
	c.allowedAt = append(c.allowedAt, c.next)
	c.allowed <- c.next
}

func (c *testConsumer) PauseFetchPartitions(m map[string][]int32) map[string][]int32 {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.paused = m
	return m
}

func (c *testConsumer) ResumeFetchPartitions(map[string][]int32) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.paused = nil
}

// waitCommitted waits for a commit up to next.
func (c *testConsumer) waitCommitted(t *testing.T, next int64) {
	t.Helper()
	for {
		select {
		case n := <-c.commits:
			if n >= next {
				return
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("nothing committed up to %d", next)
		}
	}
}

// byOffset orders calls of one document each by its offset, below n; a
// missing offset is nil.
func byOffset(t *testing.T, calls []*sinkCall, n int64) []*sinkCall {
	t.Helper()
	out := make([]*sinkCall, n)
	for _, c := range calls {
		for off := range n {
			if c.items[0].ID == flowID(off) {
				out[off] = c
			}
		}
	}
	return out
}

func testAggregator(t *testing.T, s deliver.Sink, workers, bulkBytes int) *Loop {
	t.Helper()
	var pc process.Config
	pc.SetDefaults()
	reg := prometheus.NewRegistry()
	docs, err := process.New(pc, nil, reg, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{
		Kafka:         KafkaConfig{Topics: []string{"logs-service", "logs-nginx"}, MaxPollRecords: 5000},
		Elasticsearch: pc.Elasticsearch, ShutdownTimeout: 10 * time.Second, StallAfter: time.Minute,
	}
	cfg.Elasticsearch.Workers = workers
	cfg.Elasticsearch.BulkBytes = bulkBytes
	a := New(cfg, Stages{Documents: docs, Sink: s, Workers: workers, DeadLetters: &records.DeadLetters{}, Retried: func(int) {}},
		reg, zaptest.NewLogger(t), telemetry.NewEvery(time.Minute))
	a.budget = 1 << 20 // what one-document chunks would otherwise make tiny
	return a
}

// consumeInBackground runs a.consume until the test stops it; stop
// cancels it and returns its result.
func consumeInBackground(t *testing.T, a *Loop, c Consumer) (stop func() error, done <-chan error) {
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	errc := make(chan error, 1)
	go func() { errc <- a.Consume(ctx, c) }()
	return func() error { cancel(); return <-errc }, errc
}

// TestFlowOverlapsBatches: with every bulk call held, the next batch's
// documents are sent while the previous batch is still in flight.
func TestFlowOverlapsBatches(t *testing.T) {
	s := newTestSink(false)
	a := testAggregator(t, s, 3, 1) // one document per chunk
	c := newTestConsumer(t, s, flowBatches(3, 2))
	stop, _ := consumeInBackground(t, a, c)
	var held []*sinkCall
	for range 3 {
		held = append(held, s.next(t))
	}
	// Batch 0 is offsets 0 and 1: the third call in flight is batch 1's.
	if byOffset(t, held, 3)[2] == nil {
		t.Fatalf("the calls in flight do not hold the next batch's first document")
	}
	for _, h := range held {
		h.release <- nil
	}
	for range 3 {
		s.next(t).release <- nil
	}
	c.waitCommitted(t, 6)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if s.maxFlight > 3 {
		t.Errorf("%d calls in flight, want at most the 3 workers", s.maxFlight)
	}
}

// TestFlowFillsChunksAcrossBatches: batches polled back to back go out in
// one request of up to bulk_bytes, not one per batch or per worker.
func TestFlowFillsChunksAcrossBatches(t *testing.T) {
	s := newTestSink(false)
	a := testAggregator(t, s, 4, 1<<20)
	c := newTestConsumer(t, s, flowBatches(3, 4))
	stop, _ := consumeInBackground(t, a, c)
	call := s.next(t)
	if len(call.items) != 12 {
		t.Errorf("first request holds %d documents, want all 12 of the 3 batches", len(call.items))
	}
	call.release <- nil
	c.waitCommitted(t, 12)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}

// TestFlowCommitsInPollOrder: chunks completing in reverse order commit
// nothing until the first batch is delivered, then in poll order (the
// consumer checks every commit against the delivered documents).
func TestFlowCommitsInPollOrder(t *testing.T) {
	s := newTestSink(false)
	a := testAggregator(t, s, 4, 1)
	c := newTestConsumer(t, s, flowBatches(4, 1))
	stop, _ := consumeInBackground(t, a, c)
	var calls []*sinkCall
	for range 4 {
		calls = append(calls, s.next(t))
	}
	held := byOffset(t, calls, 4)
	for i := 3; i >= 1; i-- {
		held[i].release <- nil
	}
	// Batches 1 to 3 are delivered; batch 0 is not: no commit may come.
	// The consumer would flag one; this also waits for batch 1's outcome
	// to be seen before releasing batch 0, which a commit of batch 1
	// alone would then show.
	for i := 3; i >= 1; i-- {
		<-held[i].returned
	}
	select {
	case n := <-c.commits:
		t.Fatalf("committed up to %d while batch 0 was in flight", n)
	default:
	}
	held[0].release <- nil
	c.waitCommitted(t, 4)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}

// TestFlowBoundsUncommittedRecords: with a slow sink, the poll loop does
// not poll past the budget of undelivered record bytes.
func TestFlowBoundsUncommittedRecords(t *testing.T) {
	s := newTestSink(false)
	const workers, bulkBytes = 2, 1200
	a := testAggregator(t, s, workers, bulkBytes)
	c := newTestConsumer(t, s, flowBatches(30, 3))
	c.budget = (workers + 2) * bulkBytes
	a.budget = c.budget
	stop, _ := consumeInBackground(t, a, c)
	s.releaseAll(t)
	c.waitCommitted(t, 90)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if c.maxOutstanding == 0 || s.maxFlight > workers {
		t.Errorf("at most %d bytes uncommitted and %d calls in flight", c.maxOutstanding, s.maxFlight)
	}
	t.Logf("at most %d record bytes uncommitted (budget %d), %d calls in flight", c.maxOutstanding, c.budget, s.maxFlight)
}

// TestFlowErrorEndsConsume: a sink error ends the loop with it, and
// nothing is committed.
func TestFlowErrorEndsConsume(t *testing.T) {
	s := newTestSink(false)
	a := testAggregator(t, s, 2, 1)
	c := newTestConsumer(t, s, flowBatches(3, 2))
	_, done := consumeInBackground(t, a, c)
	boom := errors.New("disk full")
	s.next(t).release <- boom
	select {
	case err := <-done:
		if !errors.Is(err, boom) {
			t.Fatalf("consume returned %v, want %v", err, boom)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("consume did not end on the sink's error")
	}
	if c.committed != 0 {
		t.Errorf("committed up to %d", c.committed)
	}
}

// TestFlowCancelAbandons: when the context ends, work in flight that is
// not delivered within shutdown_timeout is abandoned uncommitted and
// consume returns nil.
func TestFlowCancelAbandons(t *testing.T) {
	s := newTestSink(false)
	a := testAggregator(t, s, 2, 1)
	a.cfg.ShutdownTimeout = 100 * time.Millisecond
	c := newTestConsumer(t, s, flowBatches(3, 2))
	stop, _ := consumeInBackground(t, a, c)
	s.next(t)
	s.next(t)
	if err := stop(); err != nil {
		t.Fatalf("consume returned %v after cancel, want nil", err)
	}
	if c.committed != 0 {
		t.Errorf("committed up to %d after cancel", c.committed)
	}
}

// TestFlowDrainsForRebalance: a rebalance waiting while batches keep
// coming makes the loop deliver and commit everything before it allows
// the rebalance, and then go on.
func TestFlowDrainsForRebalance(t *testing.T) {
	s := newTestSink(true)
	a := testAggregator(t, s, 2, 1)
	c := newTestConsumer(t, s, flowBatches(10, 2))
	c.onPoll = func(i int) {
		if i == 2 {
			notify(a.rebalance) // franz-go's OnPartitionsCallbackBlocked
		}
	}
	stop, _ := consumeInBackground(t, a, c)
	c.waitCommitted(t, 20)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if len(c.allowedAt) == 0 || c.allowedAt[0] != 3 {
		t.Errorf("AllowRebalance after polling batches %v, want first after batch 2 (3)", c.allowedAt)
	}
}

// TestFlowRebalanceInterruptsIdlePoll: a rebalance signalled while the
// loop waits for records with work in flight cuts the poll short; the
// rebalance is allowed once that work is committed.
func TestFlowRebalanceInterruptsIdlePoll(t *testing.T) {
	s := newTestSink(false)
	a := testAggregator(t, s, 2, 1<<20)
	c := newTestConsumer(t, s, flowBatches(1, 3))
	stop, _ := consumeInBackground(t, a, c)
	call := s.next(t) // sent because nothing more was buffered
	notify(a.rebalance)
	call.release <- nil
	c.waitCommitted(t, 3)
	select {
	case <-c.allowed:
	case <-time.After(10 * time.Second):
		t.Fatal("the rebalance was not allowed after the work in flight was committed")
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}

// TestProcessDeliversEveryRecord: process, as sluice run and replay use
// it, returns once every record is delivered.
func TestProcessDeliversEveryRecord(t *testing.T) {
	s := newTestSink(true)
	a := testAggregator(t, s, 1, 1)
	if err := a.Process(context.Background(), flowBatches(1, 5)[0]); err != nil {
		t.Fatal(err)
	}
	for off := range int64(5) {
		if !s.isDelivered(off) {
			t.Errorf("offset %d not delivered when process returned", off)
		}
	}
}
