package consume

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/sluicelog/sluice/aggregator/deliver"
	"github.com/sluicelog/sluice/aggregator/internal/records"
	"github.com/sluicelog/sluice/internal/backoff"
	"github.com/sluicelog/sluice/internal/event"
)

// svcRecord is a record of service svc at offset off of partition p.
func svcRecord(svc string, p int32, off int64) *kgo.Record {
	ev := event.Event{Type: "service", Node: "n1", Path: "/var/log/" + svc + ".log", FileID: fmt.Sprint(svc, p), Offset: off * 100,
		ReadTime: time.Unix(1764064800, 0), Fields: map[string]string{"service": svc, "environment": "prod"},
		Line: []byte(fmt.Sprintf(`{"level":"info","msg":"line %d"}`, off))}
	r := ev.Record("logs-service", event.EncodeFields(ev.Fields))
	r.Partition, r.Offset = p, off
	return r
}

// partsConsumer hands out polls of records of several partitions and
// keeps each partition's committed offset; nothing is checked, the tests
// look at what is committed.
type partsConsumer struct {
	mu        sync.Mutex
	polls     [][]*kgo.Record
	next      int
	committed map[int32]int64
	// notMember: commits fail with UNKNOWN_MEMBER_ID until AllowRebalance.
	notMember bool
	allowed   int
	paused    map[string][]int32
}

func (c *partsConsumer) PollRecords(ctx context.Context, _ int) kgo.Fetches {
	c.mu.Lock()
	if c.next < len(c.polls) {
		recs := c.polls[c.next]
		c.next++
		c.mu.Unlock()
		byPart := map[int32][]*kgo.Record{}
		var order []int32
		for _, r := range recs {
			if byPart[r.Partition] == nil {
				order = append(order, r.Partition)
			}
			byPart[r.Partition] = append(byPart[r.Partition], r)
		}
		var ps []kgo.FetchPartition
		for _, p := range order {
			ps = append(ps, kgo.FetchPartition{Partition: p, HighWatermark: 1 << 20, Records: byPart[p]})
		}
		return kgo.Fetches{{Topics: []kgo.FetchTopic{{Topic: "logs-service", Partitions: ps}}}}
	}
	c.mu.Unlock()
	if ctx == nil {
		return nil
	}
	<-ctx.Done()
	return kgo.NewErrFetch(ctx.Err())
}

func (c *partsConsumer) CommitRecords(_ context.Context, records ...*kgo.Record) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.notMember {
		return kerr.UnknownMemberID
	}
	for _, r := range records {
		c.committed[r.Partition] = max(c.committed[r.Partition], r.Offset+1)
	}
	return nil
}

func (c *partsConsumer) AllowRebalance() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.notMember = false // joined again
	c.allowed++
}

func (c *partsConsumer) PauseFetchPartitions(m map[string][]int32) map[string][]int32 {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.paused = m
	return m
}

func (c *partsConsumer) ResumeFetchPartitions(map[string][]int32) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.paused = nil
}

func (c *partsConsumer) committedAt(p int32) int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.committed[p]
}

// waitFor polls cond until it holds, or fails the test after d.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(d); !cond(); {
		if time.Now().After(end) {
			t.Fatalf("after %v: %s", d, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// redSink answers like Elasticsearch with one index red: its items fail
// with 503 while red is set, the others are indexed. index retries until
// delivered, as the bulk indexer does; attempt tries once.
type redSink struct {
	red   string // index
	mu    sync.Mutex
	isRed bool
	got   map[string]bool // ids indexed
}

func (s *redSink) setRed(v bool) {
	s.mu.Lock()
	s.isRed = v
	s.mu.Unlock()
}

func (s *redSink) Deliver(_ context.Context, items []deliver.Item) ([]deliver.Outcome, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]deliver.Outcome, len(items))
	for i, it := range items {
		if s.isRed && it.Index == s.red {
			out[i] = deliver.Outcome{Again: true, Status: 503, Reason: "unavailable_shards_exception: primary shard is not active"}
			continue
		}
		s.got[it.ID] = true
		out[i] = deliver.Outcome{Delivered: true, Status: 201}
	}
	return out, nil
}

func (s *redSink) DeliverAll(ctx context.Context, items []deliver.Item) ([]deliver.Outcome, error) {
	for {
		out, _ := s.Deliver(ctx, items)
		todo := 0
		for _, o := range out {
			if o.Again {
				todo++
			}
		}
		if todo == 0 {
			return out, nil
		}
		if err := backoff.Sleep(ctx, 10*time.Millisecond); err != nil {
			return nil, err
		}
	}
}

func (s *redSink) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.got)
}

// TestFlowRedIndexDoesNotStallOthers: with one index failing every item
// (503), the documents of the other indices keep being indexed and their
// partitions committed; the failing index is named in a metric; its
// partition is committed only up to its first waiting record; once the
// index recovers every document arrives and every partition is committed.
func TestFlowRedIndexDoesNotStallOthers(t *testing.T) {
	s := &redSink{red: "logs-service-red-prod", isRed: true, got: map[string]bool{}}
	a := testAggregator(t, s, 2, 1200)
	// Partition 0 holds the healthy service, partition 1 the red one;
	// every poll has records of both.
	c := &partsConsumer{committed: map[int32]int64{}}
	const polls, per = 40, 5
	for i := range polls {
		var recs []*kgo.Record
		for j := range per {
			recs = append(recs, svcRecord("green", 0, int64(i*per+j)))
		}
		for j := range per {
			recs = append(recs, svcRecord("red", 1, int64(i*per+j)))
		}
		c.polls = append(c.polls, recs)
	}
	stop, _ := consumeInBackground(t, a, c)
	waitFor(t, 10*time.Second, "the healthy partition is not committed while the other index is red", func() bool {
		return c.committedAt(0) == polls*per
	})
	if got := c.committedAt(1); got != 0 {
		t.Errorf("the red index's partition committed up to %d while none of it is indexed", got)
	}
	if n := testutil.ToFloat64(a.metrics.indexFailing.WithLabelValues(s.red)); n == 0 {
		t.Errorf("sluice_aggregator_index_failing{index=%q} is 0 while its documents wait", s.red)
	}
	s.setRed(false)
	waitFor(t, 10*time.Second, "the red index's partition is not committed after it recovered", func() bool {
		return c.committedAt(1) == polls*per
	})
	if n := s.count(); n != 2*polls*per {
		t.Errorf("%d documents indexed, want %d", n, 2*polls*per)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if waiting, _ := a.Waiting(); waiting != 0 {
		t.Errorf("Waiting says %d documents wait after the recovery", waiting)
	}
}

// TestFlowPausesOnlyPartitionsOfWaitingDocuments: past the bound of
// waiting bytes, the partitions holding them are paused, and resumed once
// the index recovers.
func TestFlowPausesOnlyPartitionsOfWaitingDocuments(t *testing.T) {
	s := &redSink{red: "logs-service-red-prod", isRed: true, got: map[string]bool{}}
	a := testAggregator(t, s, 2, 1200)
	a.budget = 4000 // a few polls' worth of the red index's records
	c := &partsConsumer{committed: map[int32]int64{}}
	for i := range 40 {
		c.polls = append(c.polls, []*kgo.Record{svcRecord("green", 0, int64(i)), svcRecord("red", 1, int64(i))})
	}
	stop, _ := consumeInBackground(t, a, c)
	waitFor(t, 10*time.Second, "the red index's partition is not paused", func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		return len(c.paused["logs-service"]) == 1 && c.paused["logs-service"][0] == 1
	})
	waitFor(t, 10*time.Second, "the healthy partition is not committed", func() bool { return c.committedAt(0) == 40 })
	s.setRed(false)
	waitFor(t, 10*time.Second, "the partition is not resumed after the recovery", func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.paused == nil && c.committed[1] == 40
	})
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}

// TestFlowExpelledMemberRejoins: commits refused with UNKNOWN_MEMBER_ID
// (the member was expelled, e.g. stopped for longer than session_timeout)
// are not retried for ever: the waiting rebalance is allowed, and once
// the member is back in the group what it delivered is committed and it
// goes on.
func TestFlowExpelledMemberRejoins(t *testing.T) {
	s := newTestSink(true)
	a := testAggregator(t, s, 2, 1)
	c := &partsConsumer{committed: map[int32]int64{}, notMember: true}
	for i := range 10 {
		c.polls = append(c.polls, []*kgo.Record{flowRecord(int64(2 * i)), flowRecord(int64(2*i + 1))})
	}
	notify(a.rebalance) // franz-go: a rebalance waits for AllowRebalance
	stop, _ := consumeInBackground(t, a, c)
	waitFor(t, 10*time.Second, "nothing committed after the expulsion", func() bool { return c.committedAt(0) == 20 })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}

// TestFlowStopCommitsInFlight: a stop (SIGTERM, SIGHUP) with documents in
// flight delivers and commits them before consume returns, so that a
// restart consumes nothing again.
func TestFlowStopCommitsInFlight(t *testing.T) {
	s := newTestSink(false)
	a := testAggregator(t, s, 2, 1)
	c := newTestConsumer(t, s, flowBatches(3, 2))
	stop, _ := consumeInBackground(t, a, c)
	first := s.next(t)
	errc := make(chan error, 1)
	go func() { errc <- stop() }()
	first.release <- nil
	s.releaseAll(t)
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.committed != c.handed {
		t.Errorf("stopped with offsets %d to %d handed out and not committed", c.committed, c.handed)
	}
}

// slowSink is a redSink whose requests take time: a few milliseconds, and
// redWait for one holding a document of the red index (Elasticsearch waits
// for the missing primary before it answers 503).
type slowSink struct {
	*redSink
	per, redWait time.Duration
}

func (s slowSink) Deliver(ctx context.Context, items []deliver.Item) ([]deliver.Outcome, error) {
	d := s.per
	s.mu.Lock()
	for _, it := range items {
		if s.isRed && it.Index == s.red {
			d = s.redWait
		}
	}
	s.mu.Unlock()
	if err := backoff.Sleep(ctx, d); err != nil {
		return nil, err
	}
	return s.redSink.Deliver(ctx, items)
}

func (s slowSink) DeliverAll(ctx context.Context, items []deliver.Item) ([]deliver.Outcome, error) {
	for {
		out, err := s.Deliver(ctx, items)
		if err != nil {
			return nil, err
		}
		again := false
		for _, o := range out {
			again = again || o.Again
		}
		if !again {
			return out, nil
		}
	}
}

// TestFlowRedIndexKeepsHealthyRate: the healthy partition is indexed and
// committed at no less than 90% of its rate without the red index, once
// the red index's first request (which holds a worker for as long as
// Elasticsearch waits for the primary) is counted out.
func TestFlowRedIndexKeepsHealthyRate(t *testing.T) {
	const polls, green = 400, 9
	const redWait = 300 * time.Millisecond
	run := func(red bool) time.Duration {
		s := slowSink{redSink: &redSink{red: "logs-service-red-prod", isRed: red, got: map[string]bool{}},
			per: 2 * time.Millisecond, redWait: redWait}
		a := testAggregator(t, s, 4, 900) // about two documents a request
		c := &partsConsumer{committed: map[int32]int64{}}
		for i := range polls {
			var recs []*kgo.Record
			for j := range green {
				recs = append(recs, svcRecord("green", 0, int64(i*green+j)))
			}
			c.polls = append(c.polls, append(recs, svcRecord("red", 1, int64(i))))
		}
		start := time.Now()
		stop, _ := consumeInBackground(t, a, c)
		waitFor(t, 30*time.Second, "the healthy partition is not committed", func() bool { return c.committedAt(0) == polls*green })
		took := time.Since(start)
		a.cfg.ShutdownTimeout = time.Millisecond
		if err := stop(); err != nil {
			t.Fatal(err)
		}
		return took
	}
	normal := run(false)
	withRed := run(true)
	rate := float64(normal) / float64(max(withRed-redWait, normal))
	t.Logf("healthy partition: %v without the red index, %v with it (%.0f%% of the rate; up to %v of it is the first red requests' wait): %.0f%% without that",
		normal.Round(time.Millisecond), withRed.Round(time.Millisecond), 100*float64(normal)/float64(withRed), redWait, 100*rate)
	if rate < 0.9 {
		t.Errorf("healthy rate %.0f%% of normal while an index is red, want at least 90%%", 100*rate)
	}
}

// TestFlowRebalanceDrainIsBounded: with documents waiting on a red index
// when a rebalance comes, the drain gives up at its bound and allows the
// rebalance; the partition revoked is forgotten (its waiting documents let
// go, nothing committed for it) and the one kept goes on.
func TestFlowRebalanceDrainIsBounded(t *testing.T) {
	s := &redSink{red: "logs-service-red-prod", isRed: true, got: map[string]bool{}}
	a := testAggregator(t, s, 2, 1200)
	a.drainTimeout = 200 * time.Millisecond
	c := &partsConsumer{committed: map[int32]int64{}}
	for i := range 10 {
		c.polls = append(c.polls, []*kgo.Record{svcRecord("green", 0, int64(i)), svcRecord("red", 1, int64(i))})
	}
	stop, _ := consumeInBackground(t, a, c)
	waitFor(t, 10*time.Second, "the healthy partition is not committed", func() bool { return c.committedAt(0) == 10 })
	notify(a.rebalance)
	waitFor(t, 10*time.Second, "the rebalance is not allowed at the drain's bound", func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.allowed > 0
	})
	// franz-go's OnPartitionsRevoked, after AllowRebalance.
	a.cur.Load().forget([]topicPartition{{"logs-service", 1}})
	if waiting, _ := a.Waiting(); waiting != 0 {
		t.Errorf("%d documents still wait for a partition revoked", waiting)
	}
	s.setRed(false)
	c.mu.Lock()
	c.polls = append(c.polls, []*kgo.Record{svcRecord("green", 0, 10)})
	c.mu.Unlock()
	notify(a.rebalance) // wakes the idle poll, as the next fetch would
	waitFor(t, 10*time.Second, "the partition kept does not go on", func() bool { return c.committedAt(0) == 11 })
	if got := c.committedAt(1); got != 0 {
		t.Errorf("the revoked partition was committed up to %d", got)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}

// TestDeadLetterWarningsRateLimited: a burst of rejected documents logs
// one warning per index and status, not one per document; every one is
// still dead-lettered.
func TestDeadLetterWarningsRateLimited(t *testing.T) {
	core, logs := observer.New(zap.WarnLevel)
	a := testAggregator(t, newTestSink(true), 1, 1)
	a.log = zap.New(core)
	dl := &records.DeadLetters{}
	a.dead = dl
	b := &batch{}
	for i := range 500 {
		b.items = append(b.items, deliver.Item{Index: "logs-x", ID: fmt.Sprint(i), Record: flowRecord(int64(i))})
		b.outcomes = append(b.outcomes, deliver.Outcome{Status: 404, Reason: "index_not_found_exception: no such index"})
	}
	if err := a.finish(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	if n := logs.FilterMessageSnippet("dead-letter").Len(); n != 1 {
		t.Errorf("%d dead-letter warnings for 500 documents of one index and status, want 1", n)
	}
	if n := testutil.ToFloat64(a.metrics.deadLettered); n != 500 || len(dl.Letters()) != 500 {
		t.Errorf("%v dead-lettered, want 500", n)
	}
}

// errConsumer's commits fail with err.
type errConsumer struct {
	partsConsumer
	err   error
	calls int
}

func (c *errConsumer) CommitRecords(context.Context, ...*kgo.Record) error {
	c.calls++
	return c.err
}

// TestCommitNotMemberIsNotRetried: a commit refused for a membership or
// generation that is gone returns errNotMember at once, for every error
// that says so; others are retried.
func TestCommitNotMemberIsNotRetried(t *testing.T) {
	a := testAggregator(t, newTestSink(true), 1, 1)
	for _, err := range []error{kerr.UnknownMemberID, kerr.IllegalGeneration, kerr.RebalanceInProgress, kerr.FencedInstanceID,
		fmt.Errorf("wrapped: %w", kerr.UnknownMemberID)} {
		c := &errConsumer{err: err}
		got := a.commit(context.Background(), c, []*kgo.Record{flowRecord(1)})
		if !errors.Is(got, errNotMember) || c.calls != 1 {
			t.Errorf("%v: commit returned %v after %d calls, want errNotMember after 1", err, got, c.calls)
		}
	}
	c := &errConsumer{err: kerr.CoordinatorNotAvailable}
	ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	defer cancel()
	if got := a.commit(ctx, c, []*kgo.Record{flowRecord(1)}); errors.Is(got, errNotMember) || c.calls < 2 {
		t.Errorf("COORDINATOR_NOT_AVAILABLE: commit returned %v after %d calls, want retries", got, c.calls)
	}
}

// TestFlowRedIndexInSamePartition: with documents of a red index in the
// same polls and partition as healthy ones, the healthy ones keep being
// delivered: once handled they no longer count against the budget, even
// though their partition cannot be committed past the first waiting one.
func TestFlowRedIndexInSamePartition(t *testing.T) {
	s := &redSink{red: "logs-service-red-prod", isRed: true, got: map[string]bool{}}
	a := testAggregator(t, s, 2, 1200)
	a.budget = 3000 // a few polls
	c := &partsConsumer{committed: map[int32]int64{}}
	off := int64(0)
	for range 40 {
		var recs []*kgo.Record
		for range 4 {
			recs = append(recs, svcRecord("green", 0, off))
			off++
		}
		c.polls = append(c.polls, append(recs, svcRecord("red", 0, off)))
		off++
	}
	stop, _ := consumeInBackground(t, a, c)
	waitFor(t, 10*time.Second, "the healthy documents stop while the red ones wait in their partition", func() bool { return s.count() == 160 })
	if got := c.committedAt(0); got > 5 {
		t.Errorf("partition committed up to %d, past its first waiting record (4)", got)
	}
	s.setRed(false)
	waitFor(t, 10*time.Second, "the partition is not committed after the recovery", func() bool { return c.committedAt(0) == 200 })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}
