// Package aggregator is `sluice aggregate`: a Kafka consumer group member
// that parses each line by its document type and bulk-indexes it into
// Elasticsearch.
//
// Data flows one way: poll a batch of records, decode each into an event,
// parse it into a document, route it to its index, and bulk-index it in
// requests of up to bulk_bytes or flush_interval old, which keep the
// configured number of requests in flight across polls (see flow).
// Acknowledgements flow back:
// a partition's offset is committed only once every one of its records up
// to it is acknowledged by Elasticsearch or written to the dead-letter
// topic; documents of an index that keeps failing wait apart, holding back
// only their own partitions. A rebalance first waits, up to a bound, for
// everything in flight to be committed; what is not by then is abandoned
// with the partitions that are revoked, for their next owner.
package aggregator

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/elastic/go-elasticsearch/v8"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap"

	"github.com/sluicelog/sluice/internal/backoff"
	"github.com/sluicelog/sluice/internal/event"
	"github.com/sluicelog/sluice/internal/kafkaclient"
	"github.com/sluicelog/sluice/internal/telemetry"
)

// Headers added to dead-lettered records.
const (
	HeaderDLQStatus = "sluice.dlq.status"
	HeaderDLQReason = "sluice.dlq.reason"
	HeaderDLQTopic  = "sluice.dlq.topic"
	HeaderDLQIndex  = "sluice.dlq.index"
)

// Aggregator consumes Sluice events from Kafka into Elasticsearch.
type Aggregator struct {
	builder // parsers, index template, pipelines, GeoIP

	cfg     Config
	log     *zap.Logger
	metrics *metrics
	client  *kgo.Client
	// deadLetterLimit is the largest record batch the dead-letter topic
	// takes: deadLetterMaxBytes, or its max.message.bytes if made smaller
	// beforehand.
	deadLetterLimit *atomic.Int32
	es              *elasticsearch.Client
	bulk            *bulkIndexer
	decoder         event.Decoder // used by the processing loop only
	lag             *lagTracker
	// sink receives the documents: bulk (Elasticsearch), behind the
	// duplicate check, unless a Processor was given another.
	sink   sink
	dedupe *deduper
	// budget bounds the bytes of uncommitted records: the poll loop waits
	// above it. (workers+2) x bulk_bytes: every worker's request, the one
	// being filled, and one more of records whose documents are delivered
	// and whose commit waits for an earlier batch.
	budget int
	// sinkWorkers is how many chunks are delivered at once: the
	// configured workers for Elasticsearch, 1 for a sink that must keep
	// the documents' order.
	sinkWorkers int
	// deadFile receives dead letters instead of the dead-letter topic when
	// there is no Kafka (sluice run).
	deadFile *DeadLetterFile
	// esReady is pingES, asked at most once a second: for /readyz and
	// the elasticsearch_accepting gauge.
	esReady telemetry.Check
	// rebalance is signalled when a rebalance waits for the poll loop to
	// allow it; nil without a consumer group.
	rebalance chan struct{}
	// logEvery rate-limits warnings that repeat per document.
	logEvery *telemetry.Every
	// cur is the running flow, for Accepting; nil between flows.
	cur atomic.Pointer[flow]
	// drainTimeout bounds the drain before a rebalance (drainTimeout, the
	// constant, but for tests).
	drainTimeout time.Duration
}

// Timing of rebalances and stops.
const (
	// rebalanceTimeout is how long the group waits for a member to join a
	// rebalance (franz-go's default, set explicitly since drainTimeout
	// depends on it).
	rebalanceTimeout = 60 * time.Second
	// drainTimeout bounds the drain before a rebalance: what is not
	// committed by then is abandoned with the partitions revoked, well
	// before the group would expel this member for being late.
	drainTimeout = rebalanceTimeout * 3 / 4
)

// New validates cfg and prepares an aggregator; Run starts it.
func New(cfg Config, reg prometheus.Registerer, log *zap.Logger) (*Aggregator, error) {
	cfg.SetDefaults()
	rebalance := make(chan struct{}, 1)
	var a *Aggregator
	// Called by franz-go's group loop, after AllowRebalance: the flow
	// abandons what it has of partitions no longer this member's.
	forget := func(m map[string][]int32) {
		if f := a.cur.Load(); f != nil {
			f.forget(topicPartitions(m))
		}
	}
	suspects := newSuspects(log)
	a, err := newAggregator(cfg, reg, log,
		kgo.ConsumerGroup(cfg.Kafka.Group),
		kgo.ConsumeTopics(cfg.Kafka.Topics...),
		kgo.DisableAutoCommit(),
		kgo.SessionTimeout(cfg.Kafka.SessionTimeout),
		// See consume for how rebalances and work in flight meet.
		kgo.BlockRebalanceOnPoll(),
		kgo.OnPartitionsCallbackBlocked(func(context.Context, *kgo.Client) { notify(rebalance) }),
		kgo.RebalanceTimeout(rebalanceTimeout),
		kgo.OnPartitionsAssigned(func(ctx context.Context, cl *kgo.Client, m map[string][]int32) {
			log.Info("partitions assigned", zap.Any("partitions", m))
			// franz-go keeps one callback: the duplicate check learns
			// here which records a previous owner may have indexed.
			suspects.assigned(ctx, cl, m)
		}),
		kgo.OnPartitionsRevoked(func(_ context.Context, _ *kgo.Client, m map[string][]int32) {
			if len(m) > 0 {
				log.Info("partitions revoked", zap.Any("partitions", m))
				forget(m)
			}
		}),
		kgo.OnPartitionsLost(func(_ context.Context, _ *kgo.Client, m map[string][]int32) {
			if len(m) > 0 {
				log.Warn("partitions lost: this member left the group (expelled, or the session timed out); their uncommitted work is abandoned", zap.Any("partitions", m))
				forget(m)
			}
		}),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
	)
	if err != nil {
		return nil, err
	}
	a.rebalance = rebalance
	a.dedupe.suspects = suspects
	return a, nil
}

func topicPartitions(m map[string][]int32) []topicPartition {
	var out []topicPartition
	for t, ps := range m {
		for _, p := range ps {
			out = append(out, topicPartition{t, p})
		}
	}
	return out
}

// newAggregator builds an aggregator whose Kafka client consumes as
// consume says: a group member for Run, a plain reader for Replay.
func newAggregator(cfg Config, reg prometheus.Registerer, log *zap.Logger, consume ...kgo.Opt) (*Aggregator, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	security, err := cfg.Kafka.Security.Opts(log)
	if err != nil {
		return nil, err
	}
	deadLetterLimit := new(atomic.Int32)
	deadLetterLimit.Store(deadLetterMaxBytes)
	client, err := kgo.NewClient(append(append(security,
		kgo.SeedBrokers(cfg.Kafka.Brokers...),
		kgo.FetchMaxBytes(2<<20), // compressed: ten times that in records, held until polled
		// The aggregator produces dead letters only; learnt in prepare,
		// before the first.
		kgo.ProducerBatchMaxBytesFn(func(string) int32 { return deadLetterLimit.Load() }),
	), consume...)...)
	if err != nil {
		return nil, fmt.Errorf("kafka client: %w", err)
	}
	a, err := newPipeline(cfg, reg, log)
	if err != nil {
		client.Close()
		return nil, err
	}
	a.client = client
	a.deadLetterLimit = deadLetterLimit
	return a, nil
}

// newPipeline builds what turns records into delivered documents: parsers,
// index template, Elasticsearch client and GeoIP, without a Kafka client.
// cfg is validated.
func newPipeline(cfg Config, reg prometheus.Registerer, log *zap.Logger) (*Aggregator, error) {
	es, err := newESClient(cfg.Elasticsearch, log)
	if err != nil {
		return nil, fmt.Errorf("elasticsearch client: %w", err)
	}
	m := newMetrics(reg, cfg.Kafka.Topics...)
	b, err := newBuilder(cfg, reg, log)
	if err != nil {
		return nil, err
	}
	every := telemetry.NewEvery(time.Minute)
	a := &Aggregator{
		builder: b, cfg: cfg, log: log, metrics: m, es: es,
		lag: newLagTracker(m, reg, cfg.HTTP.StallAfter), logEvery: every,
		bulk: &bulkIndexer{es: es, action: cfg.Elasticsearch.Action, maxBytes: cfg.Elasticsearch.BulkBytes,
			retryMax: cfg.Elasticsearch.RetryMax, log: log, metrics: m, health: &esHealth{}, logEvery: every},
	}
	a.esReady = telemetry.Cached(time.Second, a.pingES)
	a.drainTimeout = drainTimeout
	a.dedupe = newDeduper(cfg, b.index, es, reg, log)
	a.sink = lookupSink{a.bulk, a.dedupe}
	a.sinkWorkers = cfg.Elasticsearch.Workers
	a.budget = (cfg.Elasticsearch.Workers + 2) * cfg.Elasticsearch.BulkBytes
	return a, nil
}

// AddChecks registers the aggregator's readiness checks.
func (a *Aggregator) AddChecks(srv *telemetry.Server) {
	srv.AddCheck("kafka", telemetry.Cached(time.Second, func(ctx context.Context) error { return a.client.Ping(ctx) }))
	srv.AddCheck("elasticsearch", a.esReady)
	srv.AddCheck("progress", a.lag.progress.Check)
	srv.AddCheck("elasticsearch_bulk", a.bulkRefused)
}

// bulkRefused fails while Elasticsearch refuses bulk requests outright
// (400, 401, 403): the cluster may be green and nothing indexed.
func (a *Aggregator) bulkRefused(context.Context) error {
	_, refused := a.bulk.health.state()
	return refused
}

// Acceptance is what the aggregator knows of Elasticsearch taking its
// documents, for a progress watchdog.
type Acceptance struct {
	// LastDelivered is when Elasticsearch last accepted a document (zero:
	// never since the start).
	LastDelivered time.Time
	// Waiting is the documents waiting to be sent again after a passing
	// failure (429, 5xx, a cluster block, a failed request), and
	// FailingIndices the indices they are for.
	Waiting        int
	FailingIndices []string
	// Refused is Elasticsearch's refusal of the last bulk request (400,
	// 401, 403), nil when it took it.
	Refused error
}

// Accepting reports whether Elasticsearch takes the documents: a watchdog
// may call it at any time; with Waiting > 0 and LastDelivered old,
// Elasticsearch is not accepting.
func (a *Aggregator) Accepting() Acceptance {
	var acc Acceptance
	acc.LastDelivered, acc.Refused = a.bulk.health.state()
	if f := a.cur.Load(); f != nil {
		f.mu.Lock()
		acc.Waiting = f.w.items
		for index := range f.w.byIndex {
			acc.FailingIndices = append(acc.FailingIndices, index)
		}
		f.mu.Unlock()
	}
	return acc
}

func (a *Aggregator) pingES(ctx context.Context) error {
	res, err := a.es.Cluster.Health(a.es.Cluster.Health.WithContext(ctx))
	if err != nil {
		return err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("cluster health: %s", res.Status())
	}
	return nil
}

// Run consumes until ctx is done. When ctx ends (SIGTERM, SIGHUP), polling
// stops and what is in flight is delivered and committed, for up to
// shutdown_timeout; what is not by then is abandoned uncommitted, logged,
// and consumed again by whoever owns the partition next.
func (a *Aggregator) Run(ctx context.Context) error {
	defer func() {
		// A rebalance blocked by the last poll would hold up leaving the
		// group: what is in flight is committed or abandoned by now.
		a.client.AllowRebalance()
		a.client.Close()
		a.log.Info("aggregator stopped")
	}()
	a.log.Info("aggregator starting", zap.Strings("topics", a.cfg.Kafka.Topics), zap.String("group", a.cfg.Kafka.Group),
		zap.Strings("elasticsearch", redactURLs(a.cfg.Elasticsearch.Addresses)), zap.String("index", a.cfg.Elasticsearch.Index),
		zap.Bool("kafka_tls", a.cfg.Kafka.Security.TLS.Enabled), zap.String("kafka_sasl", a.cfg.Kafka.Security.SASL.Mechanism))
	// Before prepare, which waits while Elasticsearch is down; until Run
	// returns, which closes the client.
	observing, stopObserving := context.WithCancel(ctx)
	defer stopObserving()
	go a.observe(observing)
	if err := a.prepare(ctx); err != nil {
		return err
	}
	return a.consume(ctx, a.client)
}

// consumer is the part of the Kafka client the poll loop uses.
type consumer interface {
	PollRecords(ctx context.Context, maxPollRecords int) kgo.Fetches
	CommitRecords(ctx context.Context, records ...*kgo.Record) error
	AllowRebalance()
	PauseFetchPartitions(map[string][]int32) map[string][]int32
	ResumeFetchPartitions(map[string][]int32)
}

// consume is the poll loop: it polls batches into a flow, which keeps
// bulk requests in flight across polls and commits behind them, until ctx
// is done (nil) or the flow fails.
//
// Rebalances: the client blocks rebalances from the first poll that
// returns records until AllowRebalance (BlockRebalanceOnPoll), so every
// commit is for partitions this member still owns. AllowRebalance is
// called when the loop is idle (everything committed), and when a
// rebalance is waiting: franz-go says so through
// OnPartitionsCallbackBlocked (a.rebalance), and the loop then stops
// polling, delivers and commits what is in flight (drain) and allows it; a
// blocking poll is cut short for that. A drain takes seconds with
// Elasticsearch up; it is bounded by drainTimeout, well within the
// rebalance timeout, for documents can wait on a failing index for
// longer: what is still in flight then stays for the partitions this
// member keeps, and is forgotten, uncommitted, for those revoked or lost
// (OnPartitionsRevoked, OnPartitionsLost). A commit refused because this
// member is out of the group (expelled after a pause longer than
// session_timeout) is not retried: the drain lets the rebalance go on,
// franz-go joins again, the partitions lost are forgotten and what stays
// this member's is committed then.
//
// When ctx ends, polling stops and what is in flight is delivered and
// committed for up to shutdown_timeout (stop).
func (a *Aggregator) consume(ctx context.Context, c consumer) error {
	// The flow outlives ctx by the shutdown drain.
	f := a.newFlow(context.WithoutCancel(ctx), func(ctx context.Context, latest []*kgo.Record) error { return a.commit(ctx, c, latest) })
	// The shutdown deadline runs from the end of ctx, whatever the loop
	// is waiting for then.
	f.abort = make(chan struct{})
	stopAbort := context.AfterFunc(ctx, func() { time.AfterFunc(a.cfg.ShutdownTimeout, func() { close(f.abort) }) })
	a.cur.Store(f)
	defer func() {
		stopAbort()
		a.cur.Store(nil)
		f.stop()
	}()
	ended := func(err error) error {
		if ctx.Err() != nil {
			return a.stopFlow(f)
		}
		return err
	}
	var paused map[string][]int32
	rebalance := false
	for {
		if ctx.Err() != nil {
			return a.stopFlow(f)
		}
		select {
		case <-a.rebalance:
			rebalance = true
		default:
		}
		if !rebalance {
			var err error
			if rebalance, err = f.waitRoom(a.rebalance); err != nil {
				return ended(err)
			}
		}
		if rebalance {
			if err := f.drain(a.drainTimeout); errors.Is(err, errDrainTimeout) {
				batches, waiting := f.inFlight()
				a.log.Warn("a rebalance waits and the work in flight is not committed within the bound; allowing it: what is in flight of partitions revoked is abandoned, for their next owner",
					zap.Duration("waited", a.drainTimeout), zap.Int("batches", batches), zap.Int("documents_waiting", waiting))
			} else if err != nil {
				return ended(err)
			} else if _, waiting := f.inFlight(); waiting > 0 {
				a.log.Warn("allowing a rebalance with documents waiting for failing indices: those of partitions revoked are abandoned, for their next owner",
					zap.Int("documents_waiting", waiting))
			}
			c.AllowRebalance()
			f.unblock()
			rebalance = false
		}
		paused = a.pause(f, c, paused)
		// A chunk flush_interval old goes out if a worker is free, even
		// while polls keep finding records.
		if _, err := f.flushAged(false); err != nil {
			return ended(err)
		}
		// What is buffered now. With nothing, the chunk being filled
		// waits for more up to its flush_interval (due), not for a full
		// request: a trickle makes requests of many documents, not one
		// per poll.
		fetches := c.PollRecords(nil, a.cfg.Kafka.MaxPollRecords)
		if fetches.NumRecords() == 0 {
			a.polled(fetches)
			due, err := f.flushAged(true)
			if err != nil {
				return ended(err)
			}
			if f.idle() {
				c.AllowRebalance()
				f.unblock()
			}
			var wake <-chan struct{}
			if paused != nil {
				wake = f.freed // to resume them when the documents go
			}
			fetches, rebalance = a.pollWait(ctx, f, c, wake, due)
			if ctx.Err() != nil {
				return a.stopFlow(f)
			}
			if f.ctx.Err() != nil {
				return ended(f.failure())
			}
		}
		if records := a.polled(fetches); len(records) > 0 {
			if err := f.add(records); err != nil {
				return ended(err)
			}
		}
	}
}

// pause pauses fetching the partitions that hold too many waiting
// documents, and resumes them once fewer wait; it returns those paused.
func (a *Aggregator) pause(f *flow, c consumer, paused map[string][]int32) map[string][]int32 {
	pause, resume := f.pauses()
	switch {
	case pause != nil:
		if len(paused) == 0 {
			a.log.Warn("too many documents wait for failing indices; pausing their partitions, the others go on",
				zap.Any("partitions", pause))
		}
		all := c.PauseFetchPartitions(pause)
		// Those paused before stay paused: resumed with these.
		if paused == nil {
			paused = map[string][]int32{}
		}
		n := 0
		for t, ps := range pause {
			for _, p := range ps {
				if !slices.Contains(paused[t], p) {
					paused[t] = append(paused[t], p)
				}
			}
		}
		for _, ps := range all {
			n += len(ps)
		}
		a.metrics.paused.Set(float64(n))
		return paused
	case resume && len(paused) > 0:
		a.log.Info("resuming the paused partitions", zap.Any("partitions", paused))
		c.ResumeFetchPartitions(paused)
		a.metrics.paused.Set(0)
		return nil
	}
	return paused
}

// stopFlow is the graceful end of consume: what is in flight is delivered
// and committed, for up to shutdown_timeout.
func (a *Aggregator) stopFlow(f *flow) error {
	if f.ctx.Err() != nil {
		return nil // failed or already stopped: nothing to wait for
	}
	start := time.Now()
	err := f.drain(0) // until f.abort
	switch {
	case errors.Is(err, errDrainTimeout):
		batches, waiting := f.inFlight()
		a.log.Warn("stopping with work in flight not committed within shutdown_timeout; it is consumed again after the restart",
			zap.Duration("shutdown_timeout", a.cfg.ShutdownTimeout), zap.Int("batches", batches), zap.Int("documents_waiting", waiting))
	case err != nil:
		a.log.Warn("stopping: the work in flight could not be committed; it is consumed again after the restart", zap.Error(err))
	default:
		if batches, waiting := f.inFlight(); batches > 0 {
			a.log.Warn("stopping with documents waiting for failing indices; they and the records after them in their partitions are consumed again after the restart",
				zap.Int("documents_waiting", waiting), zap.Int("batches", batches))
			break
		}
		a.log.Info("stopping: everything consumed is delivered and committed", zap.Duration("took", time.Since(start)))
	}
	return nil
}

// polled logs a poll's fetch errors, notes its high watermarks and returns
// its records.
func (a *Aggregator) polled(fetches kgo.Fetches) []*kgo.Record {
	fetches.EachError(func(topic string, p int32, err error) {
		if errors.Is(err, context.Canceled) {
			return // the poll was cut short, for a rebalance or the end
		}
		a.log.Warn("fetch error", zap.String("topic", topic), zap.Int32("partition", p), zap.Error(err))
	})
	a.lag.fetched(fetches)
	return fetches.Records()
}

// pollWait polls, waiting for records until ctx or the flow ends, wake
// fires, the chunk being filled is due (when due is not zero: it is sent
// then, records or not) or a rebalance is signalled; rebalanceWanted
// reports the latter.
func (a *Aggregator) pollWait(ctx context.Context, f *flow, c consumer, wake <-chan struct{}, due time.Time) (_ kgo.Fetches, rebalanceWanted bool) {
	pctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(f.ctx, cancel)
	defer stop()
	var flushTimer <-chan time.Time
	if !due.IsZero() {
		t := time.NewTimer(time.Until(due))
		defer t.Stop()
		flushTimer = t.C
	}
	signalled := make(chan bool, 1)
	go func() {
		select {
		case <-a.rebalance:
			cancel()
			signalled <- true
		case <-wake:
			cancel()
			signalled <- false
		case <-flushTimer:
			cancel()
			signalled <- false
		case <-pctx.Done():
			signalled <- false
		}
	}()
	fetches := c.PollRecords(pctx, a.cfg.Kafka.MaxPollRecords)
	cancel()
	return fetches, <-signalled
}

// prepare fails on TLS or authentication settings Kafka or Elasticsearch
// refuse, starts the GeoIP reloader, installs the index template and
// creates the dead-letter topic.
func (a *Aggregator) prepare(ctx context.Context) error {
	if err := a.cfg.Kafka.Security.Check(ctx, a.client, a.log); err != nil {
		return err
	}
	if err := checkES(ctx, a.es, a.log); err != nil {
		return err
	}
	if a.geo != nil {
		go a.geo.Run(ctx)
	}
	if *a.cfg.Elasticsearch.Template {
		if err := retry(ctx, a.log, "installing index template", func() error {
			_, err := installTemplate(ctx, a.es, a.cfg.Elasticsearch, a.index)
			return err
		}); err != nil {
			return err
		}
	}
	return retry(ctx, a.log, "creating dead-letter topic", func() error { return a.ensureTopic(ctx, a.cfg.Kafka.DeadLetterTopic) })
}

// setupRetry is the pause between attempts of the aggregator's setup
// (index template, dead-letter topic).
var setupRetry = backoff.Policy{Initial: time.Second, Max: 30 * time.Second}

// retry calls fn until it succeeds or ctx is done.
func retry(ctx context.Context, log *zap.Logger, what string, fn func() error) error {
	for attempt := 0; ; attempt++ {
		err := fn()
		if err == nil {
			return nil
		}
		log.Warn(what+" failed; retrying", zap.Error(err))
		if err := setupRetry.Wait(ctx, attempt); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
	}
}

func (a *Aggregator) ensureTopic(ctx context.Context, topic string) error {
	got, err := kafkaclient.EnsureTopic(ctx, kadm.NewClient(a.client),
		kafkaclient.Topic{Name: topic, Partitions: 1, ReplicationFactor: -1, MaxMessageBytes: deadLetterMaxBytes}, nil)
	if err == nil {
		a.learnDeadLetterLimit(topic, got)
	}
	return err
}

// learnDeadLetterLimit takes the max.message.bytes of a dead-letter topic
// made beforehand: batches are kept under it, and a dead letter alone over
// it is cut to fit (cutToFit).
func (a *Aggregator) learnDeadLetterLimit(topic string, got kafkaclient.PreparedTopic) {
	v, err := got.MaxMessageBytes, got.LimitErr
	if err != nil {
		a.log.Warn("cannot read the dead-letter topic's max.message.bytes", zap.String("topic", topic), zap.Error(err))
		return
	}
	if v < deadLetterMaxBytes {
		a.deadLetterLimit.Store(max(v, 512))
		a.log.Warn("the dead-letter topic accepts records of at most max.message.bytes: larger dead letters are cut to fit and flagged truncated",
			zap.String("topic", topic), zap.Int32("max.message.bytes", v))
	}
}

// process delivers every record of a batch to Elasticsearch or the
// dead-letter topic, and returns once all are handled; it commits nothing.
func (a *Aggregator) process(ctx context.Context, records []*kgo.Record) error {
	f := a.newFlow(ctx, nil)
	a.cur.Store(f)
	defer func() {
		a.cur.CompareAndSwap(f, nil)
		f.stop()
	}()
	if err := f.add(records); err != nil {
		return err
	}
	return f.drain(0)
}

// finish handles a batch whose documents all have an outcome: conflict
// retries, end-to-end latency, dead letters.
func (a *Aggregator) finish(ctx context.Context, b *batch) error {
	if err := a.retryConflicts(ctx, b.items, b.outcomes); err != nil {
		return err
	}
	now := time.Now()
	dead := b.dead
	for k, o := range b.outcomes {
		it := b.items[k]
		if o.delivered {
			if !it.read.IsZero() {
				a.metrics.endToEnd.Observe(now.Sub(it.read).Seconds())
			}
			continue
		}
		if ok, n := a.logEvery.Allow("dead letter " + it.index + " " + strconv.Itoa(o.status)); ok {
			a.log.Warn("elasticsearch rejected a document; sending it to the dead-letter topic (one line a minute per index and status)",
				zap.String("index", it.index), zap.String("id", it.id), zap.Int("status", o.status), zap.String("reason", o.reason),
				zap.Int("suppressed", n))
		}
		dead = append(dead, deadLetter{rec: it.record, status: o.status, reason: o.reason, index: it.index})
	}
	return a.deadLetter(ctx, dead)
}

// retryConflicts gives each document Elasticsearch rejected for a mapping
// conflict one more chance, with the conflicting field moved aside as a
// string (labels.moved_<field>) and the tag mapping_conflict. Outcomes are
// updated in place; what still fails goes to the dead-letter topic.
func (a *Aggregator) retryConflicts(ctx context.Context, items []item, outcomes []outcome) error {
	var retry []item
	var pos []int
	for k, o := range outcomes {
		if o.delivered || o.status != http.StatusBadRequest {
			continue
		}
		doc, err := docOfJSON(items[k].source)
		if err != nil {
			continue // not from appendDocument; cannot happen
		}
		doc, ok := moveAside(doc, o.reason)
		if !ok {
			continue
		}
		src, err := appendDocument(nil, doc)
		if err != nil {
			continue
		}
		it := items[k]
		it.source = src
		retry = append(retry, it)
		pos = append(pos, k)
	}
	if len(retry) == 0 {
		return nil
	}
	a.metrics.conflictRetries.Add(float64(len(retry)))
	res, err := a.sink.index(ctx, retry)
	if err != nil {
		return err
	}
	for i, o := range res {
		if o.delivered {
			outcomes[pos[i]] = o
			items[pos[i]] = retry[i]
		} else {
			outcomes[pos[i]].reason += "; retried with the field moved aside: " + o.reason
		}
	}
	return nil
}

type deadLetter struct {
	rec    *kgo.Record
	status int
	reason string
	index  string
}

// deadLetter writes rejected records, with their original headers and the
// reason, to the dead-letter topic and waits for Kafka's acknowledgement;
// or, without Kafka, to the dead-letter file.
func (a *Aggregator) deadLetter(ctx context.Context, dead []deadLetter) error {
	if len(dead) == 0 {
		return nil
	}
	if a.deadFile != nil {
		return retry(ctx, a.log, "writing to the dead-letter file", func() error {
			if err := a.deadFile.write(dead); err != nil {
				return err
			}
			a.metrics.deadLettered.Add(float64(len(dead)))
			return nil
		})
	}
	recs := make([]*kgo.Record, len(dead))
	for i, d := range dead {
		h := append([]kgo.RecordHeader(nil), d.rec.Headers...)
		h = append(h,
			kgo.RecordHeader{Key: HeaderDLQStatus, Value: []byte(strconv.Itoa(d.status))},
			kgo.RecordHeader{Key: HeaderDLQReason, Value: []byte(d.reason)},
			kgo.RecordHeader{Key: HeaderDLQTopic, Value: []byte(d.rec.Topic)},
			kgo.RecordHeader{Key: HeaderDLQIndex, Value: []byte(d.index)},
		)
		recs[i] = &kgo.Record{Topic: a.cfg.Kafka.DeadLetterTopic, Key: d.rec.Key, Value: d.rec.Value, Headers: h}
	}
	// One at a time: dead letters are few, and a record alone is what a
	// topic's limit can refuse (a batch of several could be refused for
	// their sum when the limit could not be read).
	for _, rec := range recs {
		err := retry(ctx, a.log, "writing to the dead-letter topic", func() error {
			err := a.client.ProduceSync(ctx, rec).FirstErr()
			for errors.Is(err, kerr.MessageTooLarge) && len(rec.Value) > 0 {
				rec = a.cutToFit(rec) // shorter each time
				err = a.client.ProduceSync(ctx, rec).FirstErr()
			}
			return err
		})
		if err != nil {
			return err
		}
		a.metrics.deadLettered.Inc()
	}
	return nil
}

// deadLetterMaxBytes is the largest record batch the aggregator produces,
// and the max.message.bytes of the dead-letter topic it creates: a record
// of the largest line a shipper sends, with its headers and the dead-letter
// ones, fits.
const deadLetterMaxBytes = 16 << 20

// cutToFit returns r, which Kafka refused as too large, with its value cut
// to fit the dead-letter topic's limit, or in half if by that limit it
// fits (the limit could not be read), flagged truncated.
func (a *Aggregator) cutToFit(r *kgo.Record) *kgo.Record {
	cut, _, _ := event.CutShorter(r, int(a.deadLetterLimit.Load()))
	a.log.Warn("dead letter too large for the dead-letter topic's max.message.bytes; cut to fit and flagged truncated",
		zap.String("topic", r.Topic), zap.Int("bytes", len(r.Value)), zap.Int("cut_to", len(cut.Value)))
	return cut
}

// errNotMember is commit's when the group no longer counts this member
// (or its generation): no retry can commit for it.
var errNotMember = errors.New("not a member of the consumer group any more")

// commit commits the offsets of records, which are delivered, as every
// record before them. It retries, except when the membership or generation
// is gone (errNotMember): the partitions are another member's, or will be
// given again from the committed offsets once this one joins again.
func (a *Aggregator) commit(ctx context.Context, c consumer, records []*kgo.Record) error {
	var gone error
	err := retry(ctx, a.log, "committing offsets", func() error {
		err := c.CommitRecords(ctx, records...)
		if notMember(err) {
			gone = err
			return nil
		}
		if err != nil {
			return err
		}
		a.lag.committed(records)
		return nil
	})
	if gone != nil {
		return fmt.Errorf("committing offsets: %w: %w", errNotMember, gone)
	}
	return err
}

// notMember reports whether a commit failed for a membership or generation
// that is gone.
func notMember(err error) bool {
	return errors.Is(err, kerr.UnknownMemberID) || errors.Is(err, kerr.IllegalGeneration) ||
		errors.Is(err, kerr.RebalanceInProgress) || errors.Is(err, kerr.FencedInstanceID) ||
		errors.Is(err, kerr.StaleMemberEpoch) || errors.Is(err, kerr.FencedMemberEpoch) ||
		(err != nil && strings.Contains(err.Error(), "not assigned a group"))
}
