package consume

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap"

	"github.com/sluicelog/sluice/internal/telemetry"
)

// lagTracker keeps, per partition, the end offset and the committed
// offset, and publishes the committed offset and the consumer lag (their
// difference) as metrics. Two sources feed it: the poll loop's fetches and
// commits, which stop when the aggregator is stuck, and a timer (watch)
// that asks Kafka, which does not. The timer also tells the progress
// watchdog how much work waits for this member, and commits tell it of
// progress. The poll loop, the flow's finisher and the timer all report,
// so it locks.
type lagTracker struct {
	m          *metrics
	progress   *telemetry.Progress
	mu         sync.Mutex
	partitions map[topicPartition]*partitionLag
	// own is the assignment the last measurement found; nil: every
	// partition.
	own map[topicPartition]bool
}

type topicPartition struct {
	topic     string
	partition int32
}

type partitionLag struct {
	highWatermark, committed int64 // -1: not known yet
	lag, offset              prometheus.Gauge
}

// newLagTracker returns a tracker publishing on m, whose progress
// watchdog reports stalls after stallAfter.
func newLagTracker(m *metrics, reg prometheus.Registerer, stallAfter time.Duration) *lagTracker {
	p := telemetry.NewProgress(telemetry.ProgressOptions{StallAfter: stallAfter})
	p.Register(reg, "aggregator")
	return &lagTracker{m: m, progress: p, partitions: make(map[topicPartition]*partitionLag)}
}

func (t *lagTracker) get(topic string, partition int32) *partitionLag {
	tp := topicPartition{topic, partition}
	p, ok := t.partitions[tp]
	if !ok {
		label := strconv.Itoa(int(partition))
		p = &partitionLag{
			highWatermark: -1, committed: -1,
			lag:    t.m.lag.WithLabelValues(topic, label),
			offset: t.m.committed.WithLabelValues(topic, label),
		}
		t.partitions[tp] = p
	}
	return p
}

// fetched records the partitions' high watermarks.
func (t *lagTracker) fetched(fetches kgo.Fetches) {
	t.mu.Lock()
	defer t.mu.Unlock()
	fetches.EachPartition(func(f kgo.FetchTopicPartition) {
		if f.Err != nil || f.HighWatermark < 0 {
			return
		}
		p := t.get(f.Topic, f.Partition)
		p.highWatermark = f.HighWatermark
		if p.committed < 0 && len(f.Records) > 0 {
			// Not committed by this member yet: count from where it
			// started reading.
			p.committed = f.Records[0].Offset
		}
		p.publish()
	})
}

// committed records that every record up to the last of each partition in
// records is committed.
func (t *lagTracker) committed(records []*kgo.Record) {
	last := make(map[topicPartition]int64)
	for _, r := range records {
		tp := topicPartition{r.Topic, r.Partition}
		if next := r.Offset + 1; next > last[tp] {
			last[tp] = next
		}
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	for tp, next := range last {
		p := t.get(tp.topic, tp.partition)
		p.committed = next
		p.offset.Set(float64(next))
		p.publish()
	}
	t.progress.Advance(len(records))
}

// lagInterval is how often watch asks Kafka for the lag.
const lagInterval = 10 * time.Second

// lagRetry is how soon watch measures again after a failure.
const lagRetry = time.Second

// watch measures the group's lag from Kafka at once and then every
// interval until ctx ends, whether or not the aggregator polls: the lag
// must be right exactly when nothing moves, and from the start. A failed
// measurement is tried again after lagRetry, not a whole interval later.
func (t *lagTracker) watch(ctx context.Context, cl *kgo.Client, group string, topics []string, interval time.Duration, log *zap.Logger) {
	adm := kadm.NewClient(cl)
	failing := false
	for {
		mctx, cancel := context.WithTimeout(ctx, interval)
		err := t.measure(mctx, adm, cl, group, topics)
		cancel()
		switch {
		case ctx.Err() != nil:
			return
		case err != nil && !failing:
			log.Warn("measuring the consumer lag failed; trying again every second", zap.Error(err))
		case err == nil && failing:
			log.Info("measuring the consumer lag again")
		}
		failing = err != nil
		next := interval
		if failing {
			next = min(interval, lagRetry)
		}
		wait := time.NewTimer(next)
		select {
		case <-ctx.Done():
			wait.Stop()
			return
		case <-wait.C:
		}
	}
}

// measure reads the end, start and committed offsets of topics' partitions
// and publishes the lag of each: the end minus what the group committed,
// or minus the start where it committed nothing (it starts there). Work
// waiting, for the watchdog, is the lag of the partitions assigned to this
// member; of all of them while it is not a member yet (it would take some).
func (t *lagTracker) measure(ctx context.Context, adm *kadm.Client, cl *kgo.Client, group string, topics []string) error {
	ends, err := adm.ListEndOffsets(ctx, topics...)
	if err != nil && len(ends) == 0 {
		return fmt.Errorf("listing end offsets: %w", err)
	}
	starts, err := adm.ListStartOffsets(ctx, topics...)
	if err != nil && len(starts) == 0 {
		return fmt.Errorf("listing start offsets: %w", err)
	}
	commits, err := adm.FetchOffsets(ctx, group)
	if err != nil {
		return fmt.Errorf("fetching the offsets of group %s: %w", group, err)
	}
	own, ownErr := assigned(ctx, adm, cl, group)
	var waiting int64
	t.mu.Lock()
	if ownErr != nil {
		own = t.own // the lag is still worth publishing
	}
	t.own = own
	ends.Each(func(end kadm.ListedOffset) {
		if end.Err != nil || end.Offset < 0 {
			return
		}
		from := int64(-1)
		if s, ok := starts.Lookup(end.Topic, end.Partition); ok && s.Err == nil {
			from = s.Offset
		}
		p := t.get(end.Topic, end.Partition)
		if c, ok := commits.Lookup(end.Topic, end.Partition); ok && c.Err == nil && c.At >= 0 {
			if c.At >= p.committed { // else this member committed more since
				p.offset.Set(float64(c.At))
			}
			from = max(from, c.At) // below the start, records expired: the group resumes at the start
		}
		if from < 0 {
			return
		}
		// Offsets only grow; what the poll loop saw may be newer.
		p.highWatermark = max(p.highWatermark, end.Offset)
		p.committed = max(p.committed, from)
		p.publish()
		if own == nil || own[topicPartition{end.Topic, end.Partition}] {
			waiting += max(0, p.highWatermark-p.committed)
		}
	})
	t.mu.Unlock()
	t.progress.Waiting(waiting)
	return ownErr
}

// assigned returns the partitions the group assigned to this member, or
// nil while it is not a member or the group is rebalancing (a member
// joined and not assigned yet would read as idle).
func assigned(ctx context.Context, adm *kadm.Client, cl *kgo.Client, group string) (map[topicPartition]bool, error) {
	member, _ := cl.GroupMetadata()
	if member == "" {
		return nil, nil
	}
	described, err := adm.DescribeGroups(ctx, group)
	if err == nil {
		err = described.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("describing group %s: %w", group, err)
	}
	for _, g := range described {
		if g.State != "Stable" {
			return nil, nil // assignments being made: not settled
		}
		for _, m := range g.Members {
			if m.MemberID != member {
				continue
			}
			own := map[topicPartition]bool{}
			if c, ok := m.Assigned.AsConsumer(); ok {
				for _, tp := range c.Topics {
					for _, p := range tp.Partitions {
						own[topicPartition{tp.Topic, p}] = true
					}
				}
			}
			return own, nil
		}
	}
	return nil, nil // rejoining: counted as not a member
}

func (p *partitionLag) publish() {
	if p.highWatermark >= 0 && p.committed >= 0 {
		p.lag.Set(float64(max(0, p.highWatermark-p.committed)))
	}
}
