package aggregator

import (
	"context"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap"
)

// ReplayOptions select what `sluice replay` sends through the pipeline
// again.
type ReplayOptions struct {
	// Topic is read from its start (or From): the dead-letter topic after a
	// mapping fix, or a source topic.
	Topic string
	// From and To, when set, bound the records by their Kafka timestamp.
	From, To time.Time
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
	a, err := newAggregator(cfg, prometheus.NewRegistry(), log,
		kgo.ConsumeTopics(opts.Topic), kgo.ConsumeResetOffset(start))
	if err != nil {
		return ReplayStats{}, err
	}
	defer a.client.Close()
	a.dedupe.suspects.setAll() // any record may have been indexed before
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
	remaining := map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) {
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
	for len(remaining) > 0 {
		fetches := a.client.PollRecords(ctx, a.cfg.Kafka.MaxPollRecords)
		if ctx.Err() != nil {
			return stats, ctx.Err()
		}
		var batch []*kgo.Record
		fetches.EachRecord(func(r *kgo.Record) {
			end, open := remaining[r.Partition]
			if !open || r.Offset >= end {
				return
			}
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
		if err := a.process(ctx, batch); err != nil {
			return stats, err
		}
		stats.Records += len(batch)
		log.Info("replayed", zap.Int("records", stats.Records))
	}
	return stats, nil
}
