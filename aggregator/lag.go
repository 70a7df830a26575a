package aggregator

import (
	"strconv"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"
)

// lagTracker keeps, per partition, the high watermark seen at the last fetch
// and the committed offset, and publishes the committed offset and the
// consumer lag (their difference) as metrics. The poll loop reports
// fetches and the flow's finisher commits, so it locks.
type lagTracker struct {
	m          *metrics
	mu         sync.Mutex
	partitions map[topicPartition]*partitionLag
}

type topicPartition struct {
	topic     string
	partition int32
}

type partitionLag struct {
	highWatermark, committed int64 // -1: not known yet
	lag, offset              prometheus.Gauge
}

func newLagTracker(m *metrics) *lagTracker {
	return &lagTracker{m: m, partitions: make(map[topicPartition]*partitionLag)}
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
}

func (p *partitionLag) publish() {
	if p.highWatermark >= 0 && p.committed >= 0 {
		p.lag.Set(float64(max(0, p.highWatermark-p.committed)))
	}
}
