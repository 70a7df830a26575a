package consume

import (
	"context"
	"math"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap"

	"github.com/sluicelog/sluice/internal/backoff"
	"github.com/sluicelog/sluice/internal/event"
)

// Suspects says which records may already be indexed, for the duplicate
// check (see deliver's dedupe.go). Safe for concurrent use: the group's
// callbacks set it, the poll loop reads it.
type Suspects struct {
	mu sync.Mutex
	// below holds, per assigned partition, the end offset it had when it
	// was assigned: records below it are suspect.
	below map[topicPartition]int64
	all   bool // replay: every record
	log   *zap.Logger
}

// NewSuspects returns a Suspects that suspects no record yet.
func NewSuspects(log *zap.Logger) *Suspects {
	return &Suspects{below: make(map[topicPartition]int64), log: log}
}

// Assigned is the group's OnPartitionsAssigned: it notes the end offsets
// of the new partitions. Until it returns no record of them is fetched. If
// the end offsets cannot be read within a minute, every record of the
// partitions is suspect until they are assigned again: slower, never a
// duplicate.
func (s *Suspects) Assigned(ctx context.Context, cl *kgo.Client, assigned map[string][]int32) {
	if len(assigned) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	topics := make([]string, 0, len(assigned))
	for t := range assigned {
		topics = append(topics, t)
	}
	var ends kadm.ListedOffsets
	err := backoff.Steady().Retry(ctx, s.log, "reading the end offsets of assigned partitions", func() error {
		lctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		var err error
		if ends, err = kadm.NewClient(cl).ListEndOffsets(lctx, topics...); err == nil {
			err = ends.Error()
		}
		return err
	})
	if err != nil {
		s.log.Warn("cannot read the end offsets of assigned partitions: all their records are looked up before they are written",
			zap.Error(err))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for t, ps := range assigned {
		for _, p := range ps {
			end := int64(math.MaxInt64)
			if o, ok := ends.Lookup(t, p); ok && err == nil {
				end = o.Offset
			}
			s.below[topicPartition{t, p}] = end
		}
	}
}

// SetAll makes every record suspect: for replay.
func (s *Suspects) SetAll() {
	s.mu.Lock()
	s.all = true
	s.mu.Unlock()
}

// Suspect reports whether the record, or its event, may already be
// indexed.
func (s *Suspects) Suspect(rec *kgo.Record, ev *event.Event) bool {
	if ev.HasFlag(event.FlagResent) {
		return true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.all {
		return true
	}
	tp := topicPartition{rec.Topic, rec.Partition}
	end, ok := s.below[tp]
	if !ok {
		return false
	}
	if rec.Offset >= end {
		delete(s.below, tp) // offsets only grow: past it for good
		return false
	}
	return true
}
