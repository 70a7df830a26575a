package aggregator

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap/zaptest"

	"github.com/sluicelog/sluice/aggregator/internal/records"
	"github.com/sluicelog/sluice/internal/testenv"
)

// produceService writes service events from to to (exclusive) to each of
// partitions of topic and waits for Kafka's acknowledgement.
func produceService(t *testing.T, stack *testenv.Stack, topic string, partitions []int32, from, to int) {
	t.Helper()
	cl := stack.Client(t, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	var recs []*kgo.Record
	for _, p := range partitions {
		for i := from; i < to; i++ {
			recs = append(recs, eventOf(topic, p, i))
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatalf("producing: %v", err)
	}
}

// eventOf is the i-th event of partition p of topic, as a shipper sends
// it; the offset in the file makes its document id unique.
func eventOf(topic string, p int32, i int) *kgo.Record {
	r := records.Service(int64(p)<<32+int64(i*100), fmt.Sprintf(`{"msg":"event","id":"p%d-%d"}`, p, i))
	r.Topic, r.Partition = topic, p
	return r
}

// cleanES deletes, when the test ends, the indices and the index template
// of a config made by replayConfig.
func cleanES(t *testing.T, stack *testenv.Stack, prefix string) {
	stack.DeleteIndices(t, prefix+"-*")
	t.Cleanup(func() { stack.ES(t, "DELETE", "/_index_template/"+prefix, nil, nil) })
}

// sourceTopic makes a topic of partitions named after the test, with
// the indices and template of its prefix deleted when the test ends.
func sourceTopic(t *testing.T, kind string, partitions int32) (stack *testenv.Stack, prefix, topic string) {
	stack = testenv.Start(t)
	prefix = testenv.Name(t, kind)
	topic = prefix + "-src"
	stack.CreateTopic(t, topic, partitions)
	cleanES(t, stack, prefix)
	return stack, prefix, topic
}

// replayConfig is an aggregator config against the stack, indexing into
// indices named after prefix.
func replayConfig(stack *testenv.Stack, es, prefix string) Config {
	var cfg Config
	cfg.Kafka.Brokers = []string{stack.Broker}
	cfg.Kafka.DeadLetterTopic = prefix + "-dead"
	cfg.Elasticsearch.Addresses = []string{es}
	cfg.Elasticsearch.Index = prefix + "-{type}"
	cfg.Elasticsearch.TemplateName = prefix
	cfg.SetDefaults()
	return cfg
}

// TestReplayOfExpiredRecordsFinishes replays a topic one of whose
// partitions had every record deleted (as retention does: its end offset
// stays above 0), and one half deleted: the replay reads what is left and
// finishes. Before, it waited for ever for the deleted partition's last
// offset.
func TestReplayOfExpiredRecordsFinishes(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test needs Kafka and Elasticsearch")
	}
	stack, prefix, topic := sourceTopic(t, "replay", 3)
	produceService(t, stack, topic, []int32{0, 1, 2}, 0, 20)

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	adm := kadm.NewClient(stack.Client(t))
	var del kadm.Offsets
	del.Add(kadm.Offset{Topic: topic, Partition: 0, At: 20}) // all of partition 0
	del.Add(kadm.Offset{Topic: topic, Partition: 1, At: 10}) // half of partition 1
	resp, err := adm.DeleteRecords(ctx, del)
	if err == nil {
		err = resp.Error()
	}
	if err != nil {
		t.Fatalf("deleting records: %v", err)
	}

	cfg := replayConfig(stack, stack.Elasticsearch, prefix)
	done := make(chan error, 1)
	var stats ReplayStats
	go func() {
		var err error
		stats, err = Replay(ctx, cfg, ReplayOptions{Topic: topic}, zaptest.NewLogger(t))
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("replay: %v", err)
		}
	case <-time.After(45 * time.Second):
		t.Fatal("replay of a topic with expired records did not finish in 45s")
	}
	if stats.Records != 30 {
		t.Errorf("replayed %d records, want 30 (10 left in partition 1, 20 in partition 2)", stats.Records)
	}
	if n := stack.WaitCount(t, prefix+"-*", 30, 30*time.Second); n != 30 {
		t.Errorf("%d documents indexed, want 30", n)
	}
}

// TestReplayIdleTimeout: records that never come (a transaction's commit
// marker is the partition's last offset, and no consumer is given it) end
// the replay after the idle timeout, with an error naming the partition
// and how far it was read, instead of a wait for ever.
func TestReplayIdleTimeout(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test needs Kafka and Elasticsearch")
	}
	stack, prefix, topic := sourceTopic(t, "replayidle", 1)
	var recs []*kgo.Record
	for i := range 5 {
		recs = append(recs, eventOf(topic, 0, i))
	}
	stack.ProduceTransaction(t, prefix, recs...)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	cfg := replayConfig(stack, stack.Elasticsearch, prefix)
	start := time.Now()
	stats, err := Replay(ctx, cfg, ReplayOptions{Topic: topic, IdleTimeout: 2 * time.Second}, zaptest.NewLogger(t))
	var idle *IdleError
	if !errors.As(err, &idle) {
		t.Fatalf("replay ended with %v, want an *IdleError", err)
	}
	if took := time.Since(start); took > 30*time.Second {
		t.Errorf("replay took %s to give up", took)
	}
	if stats.Records != 5 {
		t.Errorf("replayed %d records, want the 5 readable ones", stats.Records)
	}
	if msg := err.Error(); !strings.Contains(msg, "partition 0 (read to offset 5 of 6)") {
		t.Errorf("error %q does not say what was not reached", msg)
	}
}
