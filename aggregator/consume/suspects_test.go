package consume

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap/zaptest"

	"github.com/sluicelog/sluice/internal/event"
	"github.com/sluicelog/sluice/internal/testenv"
)

func TestSuspects(t *testing.T) {
	s := NewSuspects(zaptest.NewLogger(t))
	s.below[topicPartition{"t", 0}] = 10
	rec := func(p int32, off int64) *kgo.Record { return &kgo.Record{Topic: "t", Partition: p, Offset: off} }
	plain, resent := &event.Event{}, &event.Event{Flags: []string{event.FlagTruncated, event.FlagResent}}
	for _, tt := range []struct {
		rec  *kgo.Record
		ev   *event.Event
		want bool
	}{
		{rec(0, 3), plain, true},
		{rec(0, 9), plain, true},
		{rec(1, 3), plain, false}, // not assigned after a crash: nothing noted
		{rec(1, 3), resent, true},
		{rec(0, 10), plain, false},
		{rec(0, 5), plain, false}, // past the end once: done with
		{rec(0, 11), resent, true},
	} {
		if got := s.Suspect(tt.rec, tt.ev); got != tt.want {
			t.Errorf("offset %d/%d flags %v: suspect %v, want %v", tt.rec.Partition, tt.rec.Offset, tt.ev.Flags, got, tt.want)
		}
	}
	s.SetAll()
	if !s.Suspect(rec(2, 1000), plain) {
		t.Error("a replayed record is not suspect")
	}
}

// TestSuspectsFromAssignment: the group callback notes each assigned
// partition's end offset, read from the real Kafka.
func TestSuspectsFromAssignment(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test needs Kafka")
	}
	stack := testenv.Start(t)
	topic := testenv.Name(t, "suspects")
	stack.CreateTopic(t, topic, 2)
	cl := stack.Client(t, kgo.DefaultProduceTopic(topic), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for i := range 5 {
		if err := cl.ProduceSync(ctx, &kgo.Record{Partition: int32(i % 2), Value: []byte("x")}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	s := NewSuspects(zaptest.NewLogger(t))
	s.Assigned(ctx, cl, map[string][]int32{topic: {0, 1}})
	if got := s.below; got[topicPartition{topic, 0}] != 3 || got[topicPartition{topic, 1}] != 2 {
		t.Errorf("end offsets noted: %v, want 3 and 2", got)
	}
}

// dedupeAggregator is an aggregator over the real Elasticsearch indexing
// into index with action, and records of n lines of one file, read at
// read, in partition 0 from offset 0.
