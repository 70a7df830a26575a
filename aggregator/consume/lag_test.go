package consume

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/twmb/franz-go/pkg/kgo"
)

func fetchOf(topic string, partition int32, hwm int64, offsets ...int64) kgo.Fetches {
	var recs []*kgo.Record
	for _, o := range offsets {
		recs = append(recs, &kgo.Record{Topic: topic, Partition: partition, Offset: o})
	}
	return kgo.Fetches{{Topics: []kgo.FetchTopic{{Topic: topic, Partitions: []kgo.FetchPartition{
		{Partition: partition, HighWatermark: hwm, Records: recs},
	}}}}}
}

func TestLagTracker(t *testing.T) {
	m := newMetrics(prometheus.NewRegistry())
	lt := newLagTracker(m, prometheus.NewRegistry(), time.Minute)
	lag := func(p string) float64 { return testutil.ToFloat64(m.lag.WithLabelValues("logs", p)) }
	committed := func(p string) float64 { return testutil.ToFloat64(m.committed.WithLabelValues("logs", p)) }

	// A first fetch from offset 100 of a partition whose end is 1000:
	// 900 records behind before anything is committed.
	f := fetchOf("logs", 0, 1000, 100, 101, 102)
	lt.fetched(f)
	if got := lag("0"); got != 900 {
		t.Errorf("lag after the first fetch = %v, want 900", got)
	}
	lt.committed(f.Records())
	if got, want := committed("0"), 103.0; got != want {
		t.Errorf("committed = %v, want %v", got, want)
	}
	if got := lag("0"); got != 897 {
		t.Errorf("lag after commit = %v, want 897", got)
	}
	// Records of several partitions, out of order within a batch: the
	// highest offset of each counts.
	lt.fetched(fetchOf("logs", 1, 50, 40, 41))
	recs := append(fetchOf("logs", 1, 50, 41, 40).Records(), fetchOf("logs", 0, 1000, 999).Records()...)
	lt.committed(recs)
	if got := lag("0"); got != 0 {
		t.Errorf("partition 0 lag = %v, want 0", got)
	}
	if got := lag("1"); got != 8 {
		t.Errorf("partition 1 lag = %v, want 8", got)
	}
	if got := committed("1"); got != 42 {
		t.Errorf("partition 1 committed = %v, want 42", got)
	}
}
