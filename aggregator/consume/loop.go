// Package consume is the aggregator's first stage and the way its
// acknowledgements come back: the poll loop (Loop) reads batches of
// records from Kafka as a consumer group member and carries them, through
// the document building (process) and the delivery (deliver), in a flow
// that keeps several bulk requests in flight; each partition's offset is
// committed only once every record up to it is delivered or dead-lettered.
// It also follows rebalances, pauses partitions whose documents wait for a
// failing index, and measures the consumer lag.
package consume

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap"

	"github.com/sluicelog/sluice/aggregator/deliver"
	"github.com/sluicelog/sluice/aggregator/process"
	"github.com/sluicelog/sluice/internal/backoff"
	"github.com/sluicelog/sluice/internal/tap"
	"github.com/sluicelog/sluice/internal/telemetry"
)

// Config is what the consumer reads of the aggregator's configuration.
type Config struct {
	Kafka KafkaConfig
	// Elasticsearch gives bulk_bytes, workers, flush_interval and
	// retry_max: the size, number and pace of the requests in flight.
	Elasticsearch deliver.ElasticsearchConfig
	// ShutdownTimeout bounds the drain at a stop.
	ShutdownTimeout time.Duration
	// StallAfter is http.stall_after, for the progress watchdog.
	StallAfter time.Duration
	// Budget is the bytes of uncommitted records above which the poll
	// loop waits (0: (workers+2) x bulk_bytes: every worker's request,
	// the one being filled, and one more of records whose documents are
	// delivered and whose commit waits for an earlier batch); WaitLimit
	// those of records waiting for a failing index above which their
	// partitions are paused (0: Budget). The aggregator derives both
	// from memory_limit.
	Budget, WaitLimit int
}

// Stages are where the loop's records go.
type Stages struct {
	Documents *process.Documents
	Sink      deliver.Sink
	// Workers is how many chunks are delivered at once: the configured
	// workers for Elasticsearch, 1 for a sink that must keep the
	// documents' order.
	Workers     int
	DeadLetters deliver.DeadLetters
	// Retried counts documents sent again (deliver's metric).
	Retried func(n int)
}

// Loop consumes records into the stages.
type Loop struct {
	cfg     Config
	log     *zap.Logger
	metrics *metrics
	docs    *process.Documents
	sink    deliver.Sink
	dead    deliver.DeadLetters
	retried func(n int)
	lag     *lagTracker
	// budget bounds the bytes of uncommitted records: the poll loop waits
	// above it (Config.Budget); waitLimit those waiting for a failing
	// index (Config.WaitLimit; 0: budget).
	budget, waitLimit int
	// sinkWorkers is how many chunks are delivered at once.
	sinkWorkers int
	// rebalance is signalled when a rebalance waits for the poll loop to
	// allow it; nil without a consumer group.
	rebalance chan struct{}
	// logEvery rate-limits warnings that repeat per document.
	logEvery *telemetry.Every
	// cur is the running flow, for Waiting; nil between flows.
	cur atomic.Pointer[flow]
	// drainTimeout bounds the drain before a rebalance (drainTimeout, the
	// constant, but for tests).
	drainTimeout time.Duration
}

// New prepares a loop for a validated cfg; its metrics go to reg, and its
// repeated warnings are rate-limited by logEvery.
func New(cfg Config, st Stages, reg prometheus.Registerer, log *zap.Logger, logEvery *telemetry.Every) *Loop {
	m := newMetrics(reg, cfg.Kafka.Topics...)
	if cfg.Budget <= 0 {
		cfg.Budget = (cfg.Elasticsearch.Workers + 2) * cfg.Elasticsearch.BulkBytes
	}
	return &Loop{
		cfg: cfg, log: log, metrics: m, logEvery: logEvery,
		docs: st.Documents, sink: st.Sink, dead: st.DeadLetters, retried: st.Retried,
		sinkWorkers: st.Workers, budget: cfg.Budget, waitLimit: cfg.WaitLimit,
		lag: newLagTracker(m, reg, cfg.StallAfter), drainTimeout: drainTimeout,
		rebalance: make(chan struct{}, 1),
	}
}

// GroupOpts are the Kafka client's options for consuming as a member of
// the consumer group: the callbacks by which the loop follows rebalances,
// and s learns which records a previous owner may have indexed.
func (a *Loop) GroupOpts(s *Suspects) []kgo.Opt {
	log := a.log
	// Called by franz-go's group loop, after AllowRebalance: the flow
	// abandons what it has of partitions no longer this member's.
	forget := func(m map[string][]int32) {
		if f := a.cur.Load(); f != nil {
			f.forget(topicPartitions(m))
		}
	}
	return []kgo.Opt{
		kgo.ConsumerGroup(a.cfg.Kafka.Group),
		kgo.ConsumeTopics(a.cfg.Kafka.Topics...),
		kgo.DisableAutoCommit(),
		kgo.SessionTimeout(a.cfg.Kafka.SessionTimeout),
		// See Consume for how rebalances and work in flight meet.
		kgo.BlockRebalanceOnPoll(),
		kgo.OnPartitionsCallbackBlocked(func(context.Context, *kgo.Client) { notify(a.rebalance) }),
		kgo.RebalanceTimeout(rebalanceTimeout),
		kgo.OnPartitionsAssigned(func(ctx context.Context, cl *kgo.Client, m map[string][]int32) {
			log.Info("partitions assigned", zap.Any("partitions", m))
			// franz-go keeps one callback: the duplicate check learns
			// here which records a previous owner may have indexed.
			s.Assigned(ctx, cl, m)
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
	}
}

// WatchLag measures the group's lag from Kafka through cl until ctx ends
// (lagTracker.watch).
func (a *Loop) WatchLag(ctx context.Context, cl *kgo.Client) {
	a.lag.watch(ctx, cl, a.cfg.Kafka.Group, a.cfg.Kafka.Topics, lagInterval, a.log)
}

// Progress is the progress watchdog: records committed, and work waiting.
func (a *Loop) Progress() *telemetry.Progress { return a.lag.progress }

// Waiting returns the documents waiting to be sent again after a passing
// failure, and the indices they are for.
func (a *Loop) Waiting() (documents int, indices []string) {
	if f := a.cur.Load(); f != nil {
		f.mu.Lock()
		documents = f.w.items
		for index := range f.w.byIndex {
			indices = append(indices, index)
		}
		f.mu.Unlock()
	}
	return documents, indices
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

func topicPartitions(m map[string][]int32) []topicPartition {
	var out []topicPartition
	for t, ps := range m {
		for _, p := range ps {
			out = append(out, topicPartition{t, p})
		}
	}
	return out
}

// Consumer is the part of the Kafka client the poll loop uses.
type Consumer interface {
	PollRecords(ctx context.Context, maxPollRecords int) kgo.Fetches
	CommitRecords(ctx context.Context, records ...*kgo.Record) error
	AllowRebalance()
	PauseFetchPartitions(map[string][]int32) map[string][]int32
	ResumeFetchPartitions(map[string][]int32)
}

// Consume is the poll loop: it polls batches into a flow, which keeps
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
func (a *Loop) Consume(ctx context.Context, c Consumer) error {
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
func (a *Loop) pause(f *flow, c Consumer, paused map[string][]int32) map[string][]int32 {
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
func (a *Loop) stopFlow(f *flow) error {
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
func (a *Loop) polled(fetches kgo.Fetches) []*kgo.Record {
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
func (a *Loop) pollWait(ctx context.Context, f *flow, c Consumer, wake <-chan struct{}, due time.Time) (_ kgo.Fetches, rebalanceWanted bool) {
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

// Process delivers every record of a batch to the sink or the dead
// letters, and returns once all are handled; it commits nothing.
func (a *Loop) Process(ctx context.Context, records []*kgo.Record) error {
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
func (a *Loop) finish(ctx context.Context, b *batch) error {
	if err := a.docs.RetryConflicts(ctx, a.sink, b.items, b.outcomes); err != nil {
		return err
	}
	now := time.Now()
	dead := b.dead
	for k, o := range b.outcomes {
		it := b.items[k]
		if o.Delivered {
			if !it.Read.IsZero() {
				a.metrics.endToEnd.Observe(now.Sub(it.Read).Seconds())
			}
			continue
		}
		if ok, n := a.logEvery.Allow("dead letter " + it.Index + " " + strconv.Itoa(o.Status)); ok {
			a.log.Warn("elasticsearch rejected a document; sending it to the dead-letter topic (one line a minute per index and status)",
				zap.String("index", it.Index), zap.String("id", it.ID), zap.Int("status", o.Status), zap.String("reason", o.Reason),
				zap.Int("suppressed", n))
		}
		dead = append(dead, deliver.DeadLetter{Record: it.Record, Status: o.Status, Reason: o.Reason, Index: it.Index})
	}
	if len(dead) == 0 {
		return nil
	}
	for i := 0; i < len(dead) && tap.Tapping(); i++ {
		tap.DeadLetter(dead[i].Record, dead[i].Status, dead[i].Reason, dead[i].Index)
	}
	if err := a.dead.Write(ctx, dead); err != nil {
		return err
	}
	a.metrics.deadLettered.Add(float64(len(dead)))
	return nil
}

// errNotMember is commit's when the group no longer counts this member
// (or its generation): no retry can commit for it.
var errNotMember = errors.New("not a member of the consumer group any more")

// commit commits the offsets of records, which are delivered, as every
// record before them. It retries, except when the membership or generation
// is gone (errNotMember): the partitions are another member's, or will be
// given again from the committed offsets once this one joins again.
func (a *Loop) commit(ctx context.Context, c Consumer, records []*kgo.Record) error {
	var gone error
	err := backoff.Steady().Retry(ctx, a.log, "committing offsets", func() error {
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
