package aggregator

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap"
)

// ReplayOptions select what `sluice replay` sends through the stages
// again.
type ReplayOptions struct {
	// Topic is read from its start (or From): the dead-letter topic after a
	// mapping fix, or a source topic.
	Topic string
	// From and To, when set, bound the records by their Kafka timestamp.
	From, To time.Time
	// IdleTimeout, when set, ends the replay with an *IdleError when
	// Kafka returns no record for that long while partitions are not
	// read to their end: records that cannot be read (expired meanwhile,
	// transaction markers at the end) are not waited for for ever.
	IdleTimeout time.Duration
}

// ReplayStats says what a replay did.
type ReplayStats struct {
	Records int // records read in the range
}

// Replay reads opts.Topic up to the end it has when the replay starts, and
// sends every record in the time range through parsing and indexing again,
// as the aggregator does; records Elasticsearch still rejects go to the
// dead-letter topic again. It commits nothing: it is not a group member.
// Documents keep their deterministic ids, so replaying twice indexes once.
func Replay(ctx context.Context, cfg Config, opts ReplayOptions, log *zap.Logger) (ReplayStats, error) {
	cfg.SetDefaults()
	start := kgo.NewOffset().AtStart()
	if !opts.From.IsZero() {
		start = kgo.NewOffset().AfterMilli(opts.From.UnixMilli())
	}
	a, err := newAggregator(cfg, prometheus.NewRegistry(), log, false,
		kgo.ConsumeTopics(opts.Topic), kgo.ConsumeResetOffset(start))
	if err != nil {
		return ReplayStats{}, err
	}
	defer a.client.Close()
	a.suspects.SetAll() // any record may have been indexed before
	if err := a.prepare(ctx); err != nil {
		return ReplayStats{}, err
	}
	ends, err := kadm.NewClient(a.client).ListEndOffsets(ctx, opts.Topic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return ReplayStats{}, fmt.Errorf("reading the end of %s: %w", opts.Topic, err)
	}
	starts, err := kadm.NewClient(a.client).ListStartOffsets(ctx, opts.Topic)
	if err == nil {
		err = starts.Error()
	}
	if err != nil {
		return ReplayStats{}, fmt.Errorf("reading the start of %s: %w", opts.Topic, err)
	}
	remaining := map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) {
		// A partition whose records all expired (retention, or
		// DeleteRecords) has an end above 0 and nothing to read: its
		// start is its end.
		if s, ok := starts.Lookup(opts.Topic, o.Partition); ok && s.Offset >= o.Offset {
			return
		}
		if o.Offset > 0 {
			remaining[o.Partition] = o.Offset
		}
	})
	if !opts.From.IsZero() {
		// Partitions with nothing after From have nothing to wait for.
		starts, err := kadm.NewClient(a.client).ListOffsetsAfterMilli(ctx, opts.From.UnixMilli(), opts.Topic)
		if err == nil {
			err = starts.Error()
		}
		if err != nil {
			return ReplayStats{}, fmt.Errorf("finding %s in %s: %w", opts.From, opts.Topic, err)
		}
		starts.Each(func(o kadm.ListedOffset) {
			if end, ok := remaining[o.Partition]; ok && o.Offset >= end {
				delete(remaining, o.Partition)
			}
		})
	}
	var stats ReplayStats
	read := map[int32]int64{} // next offset to read, by partition
	var idleAt time.Time      // when to give up waiting; zero: never
	wait := func() {
		if opts.IdleTimeout > 0 {
			idleAt = time.Now().Add(opts.IdleTimeout)
		}
	}
	wait()
	for len(remaining) > 0 {
		fetches, err := pollUntil(ctx, a.client, a.cfg.Kafka.MaxPollRecords, idleAt)
		if ctx.Err() != nil {
			return stats, ctx.Err()
		}
		if err != nil {
			return stats, &IdleError{Topic: opts.Topic, Idle: opts.IdleTimeout, Read: read, Remaining: remaining}
		}
		var batch []*kgo.Record
		fetches.EachRecord(func(r *kgo.Record) {
			end, open := remaining[r.Partition]
			if !open || r.Offset >= end {
				return
			}
			read[r.Partition] = r.Offset + 1
			wait() // only records still wanted count as activity
			if r.Offset+1 >= end {
				delete(remaining, r.Partition)
			}
			if !opts.To.IsZero() && r.Timestamp.After(opts.To) {
				return
			}
			batch = append(batch, r)
		})
		if len(batch) == 0 {
			continue
		}
		if err := a.loop.Process(ctx, batch); err != nil {
			return stats, err
		}
		stats.Records += len(batch)
		log.Info("replayed", zap.Int("records", stats.Records))
		wait() // delivering is not waiting for Kafka
	}
	return stats, nil
}

// IdleError says which partitions a replay did not read to their end
// because Kafka returned nothing for IdleTimeout.
type IdleError struct {
	Topic     string
	Idle      time.Duration
	Read      map[int32]int64 // next offset read, by partition (absent: none)
	Remaining map[int32]int64 // end offset not reached, by partition
}

func (e *IdleError) Error() string {
	parts := make([]int32, 0, len(e.Remaining))
	for p := range e.Remaining {
		parts = append(parts, p)
	}
	slices.Sort(parts)
	var b strings.Builder
	fmt.Fprintf(&b, "no record from %s for %s; stopped before the end of partition", e.Topic, e.Idle)
	if len(parts) > 1 {
		b.WriteString("s")
	}
	for i, p := range parts {
		if i > 0 {
			b.WriteString(",")
		}
		if next, ok := e.Read[p]; ok {
			fmt.Fprintf(&b, " %d (read to offset %d of %d)", p, next, e.Remaining[p])
		} else {
			fmt.Fprintf(&b, " %d (nothing read; end offset %d)", p, e.Remaining[p])
		}
	}
	b.WriteString(": the records left may have expired or be unreadable; run the replay again to retry")
	return b.String()
}

// errIdle is pollUntil's answer when nothing came by its deadline.
var errIdle = errors.New("no record within the idle timeout")

// pollUntil polls until records (or fetch errors) come, ctx ends, or the
// deadline passes (errIdle); a zero deadline waits as long as ctx.
func pollUntil(ctx context.Context, c *kgo.Client, maxRecords int, deadline time.Time) (kgo.Fetches, error) {
	pctx := ctx
	if !deadline.IsZero() {
		var cancel context.CancelFunc
		pctx, cancel = context.WithDeadline(ctx, deadline)
		defer cancel()
	}
	fetches := c.PollRecords(pctx, maxRecords)
	if fetches.NumRecords() == 0 && pctx.Err() != nil && ctx.Err() == nil {
		return nil, errIdle
	}
	return fetches, nil
}
