package aggregator

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap/zaptest"

	"github.com/sluicelog/sluice/internal/event"
	"github.com/sluicelog/sluice/internal/testenv"
)

// TestSuspects: after an assignment, records below the end offset the
// partition had then are suspect, and no others; lines flagged resent
// always; in a replay, every record.
func dedupeAggregator(t *testing.T, stack *testenv.Stack, index, action string) *Aggregator {
	t.Helper()
	var cfg Config
	cfg.SetDefaults()
	cfg.Elasticsearch.Addresses = []string{stack.Elasticsearch}
	cfg.Elasticsearch.Index = index
	cfg.Elasticsearch.Action = action
	f := false
	cfg.Elasticsearch.Template = &f
	a, err := newStages(cfg, prometheus.NewRegistry(), zaptest.NewLogger(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// dataStream names a data stream for the test, removed when it ends, and
// installs an index template that makes it one.
func dataStream(t *testing.T, stack *testenv.Stack, prefix string) string {
	t.Helper()
	stream := testenv.Name(t, prefix)
	stack.DeleteIndices(t, stream)
	t.Cleanup(func() { stack.ES(t, http.MethodDelete, "/_index_template/"+stream, nil, nil) })
	tmpl := fmt.Sprintf(`{"index_patterns":[%q],"data_stream":{},"priority":500,"template":{"settings":{"number_of_replicas":0}}}`, stream)
	if code := stack.ES(t, http.MethodPut, "/_index_template/"+stream, strings.NewReader(tmpl), nil); code != http.StatusOK {
		t.Fatalf("index template: %d", code)
	}
	return stream
}

// wantOnce checks that n lines delivered twice are n documents with the
// duplicate check, and, without it, 2n: the duplicates the test is about.
func wantOnce(t *testing.T, check bool, got, n int) {
	t.Helper()
	switch {
	case check && got != n:
		t.Errorf("%d documents after the re-delivery, want %d", got, n)
	case !check && got != 2*n:
		t.Errorf("without the check: %d documents, want the duplicates this test is about (%d)", got, 2*n)
	}
}

func lineRecords(n int, read time.Time, flags ...string) []*kgo.Record {
	recs := make([]*kgo.Record, n)
	for i := range recs {
		ev := event.Event{Type: "plain", Node: "node-1", Path: "/var/log/app.log", FileID: "f1", Offset: int64(i) * 100,
			ReadTime: read, Flags: flags, Line: fmt.Appendf(nil, "line %d without a time of its own", i)}
		recs[i] = ev.Record("logs-plain", nil)
		recs[i].Partition, recs[i].Offset = 0, int64(i)
	}
	return recs
}

// TestRedeliveryAfterRolloverIndexesOnce: records written with create into
// a data stream, the stream rolled over, the same records delivered again
// (a new owner after a crash before the commit): without the check the
// second delivery goes to the new write index with 201, a second document
// each; with the records suspect, as after an assignment, they are found
// and not written again.
func TestRedeliveryAfterRolloverIndexesOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test needs Elasticsearch")
	}
	stack := testenv.Start(t)
	for _, check := range []bool{false, true} {
		t.Run(fmt.Sprintf("check=%v", check), func(t *testing.T) {
			stream := dataStream(t, stack, "ds")
			a := dedupeAggregator(t, stack, stream, "create")
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			recs := lineRecords(50, time.Now())
			if err := a.loop.Process(ctx, recs); err != nil {
				t.Fatal(err)
			}
			if code := stack.ES(t, http.MethodPost, "/"+stream+"/_rollover", nil, nil); code != http.StatusOK {
				t.Fatalf("rollover: %d", code)
			}
			if check {
				a.suspects.SetAll() // as an assignment does: every record below the end offset is suspect
			}
			if err := a.loop.Process(ctx, recs); err != nil {
				t.Fatal(err)
			}
			got := stack.Count(t, stream)
			wantOnce(t, check, got, len(recs))
		})
	}
}

// TestRereadAcrossMidnightIndexesOnce: a line without its own time goes to
// the daily index of its read time; the shipper crashes, reads it again
// after midnight and flags it resent. Without the flag the re-read lands in
// the next day's index, a second document; with it, it is found in the
// first and not written again.
func TestRereadAcrossMidnightIndexesOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test needs Elasticsearch")
	}
	stack := testenv.Start(t)
	for _, flag := range []bool{false, true} {
		t.Run(fmt.Sprintf("resent=%v", flag), func(t *testing.T) {
			name := testenv.Name(t, "daily")
			stack.DeleteIndices(t, name+"-*")
			a := dedupeAggregator(t, stack, name+"-{+2006.01.02}", "index")
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			midnight := time.Now().UTC().Truncate(24 * time.Hour)
			if err := a.loop.Process(ctx, lineRecords(20, midnight.Add(-time.Second))); err != nil {
				t.Fatal(err)
			}
			var flags []string
			if flag {
				flags = []string{event.FlagResent}
			}
			if err := a.loop.Process(ctx, lineRecords(20, midnight.Add(5*time.Second), flags...)); err != nil {
				t.Fatal(err)
			}
			got, next := stack.Count(t, name+"-*"), stack.Count(t, name+"-"+midnight.Format("2006.01.02"))
			wantOnce(t, flag, got, 20)
			if flag && next != 0 {
				t.Errorf("%d documents in the next day's index, want 0", next)
			}
		})
	}
}

// TestGroupRedeliveryAfterRolloverIndexesOnce runs the consumer group end to
// end: an aggregator indexes a topic into a data stream and commits; the
// group's offsets are put back to the start, as a crash before the commit
// leaves them; the stream rolls over; the next member is assigned the
// partitions and consumes the same records again. With the check they are
// found (the assignment made them suspect); without it each becomes a
// second document in the new write index.
func TestGroupRedeliveryAfterRolloverIndexesOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test needs Kafka and Elasticsearch")
	}
	stack := testenv.Start(t)
	for _, check := range []bool{false, true} {
		t.Run(fmt.Sprintf("check=%v", check), func(t *testing.T) {
			stream := dataStream(t, stack, "gds")
			topic := testenv.Name(t, "gtopic")
			stack.CreateTopic(t, topic, 1)
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			const n = 40
			cl := stack.Client(t)
			for _, r := range lineRecords(n, time.Now()) {
				r.Topic, r.Partition = topic, 0
				if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
					t.Fatal(err)
				}
			}
			var cfg Config
			cfg.SetDefaults()
			cfg.Kafka.Brokers = []string{stack.Broker}
			cfg.Kafka.Topics = []string{topic}
			cfg.Kafka.Group = topic
			cfg.Kafka.DeadLetterTopic = topic + "-dead"
			cfg.Kafka.SessionTimeout = 6 * time.Second
			cfg.Elasticsearch.Addresses = []string{stack.Elasticsearch}
			cfg.Elasticsearch.Index = stream
			cfg.Elasticsearch.Action = "create"
			f := false
			cfg.Elasticsearch.Template = &f
			cfg.Elasticsearch.Dedupe = &check
			adm := kadm.NewClient(cl)
			runUntilCommitted := func() {
				t.Helper()
				a, err := New(cfg, prometheus.NewRegistry(), zaptest.NewLogger(t))
				if err != nil {
					t.Fatal(err)
				}
				actx, stop := context.WithCancel(ctx)
				done := make(chan error, 1)
				go func() { done <- a.Run(actx) }()
				defer func() { stop(); <-done }()
				for ctx.Err() == nil {
					offs, err := adm.FetchOffsets(ctx, topic)
					if o, ok := offs.Lookup(topic, 0); err == nil && ok && o.At == n {
						return
					}
					time.Sleep(200 * time.Millisecond)
				}
				t.Fatal("the group did not commit every record")
			}
			runUntilCommitted()
			if got := stack.Count(t, stream); got != n {
				t.Fatalf("first delivery: %d documents, want %d", got, n)
			}
			var back kadm.Offsets
			back.Add(kadm.Offset{Topic: topic, Partition: 0, At: 0, LeaderEpoch: -1})
			if _, err := adm.CommitOffsets(ctx, topic, back); err != nil {
				t.Fatal(err)
			}
			if code := stack.ES(t, http.MethodPost, "/"+stream+"/_rollover", nil, nil); code != http.StatusOK {
				t.Fatalf("rollover: %d", code)
			}
			runUntilCommitted()
			got := stack.Count(t, stream)
			wantOnce(t, check, got, n)
		})
	}
}
