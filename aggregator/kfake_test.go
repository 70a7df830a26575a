package aggregator

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap/zaptest"

	"github.com/sluicelog/sluice/internal/testenv"
)

// fakeES answers GET / and _bulk as Elasticsearch would, every item
// accepted, and counts the documents by id.
type fakeES struct {
	mu  sync.Mutex
	ids map[string]int
	srv *httptest.Server
}

func newFakeES(t *testing.T) *fakeES {
	f := &fakeES{ids: map[string]int{}}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Elastic-Product", "Elasticsearch")
		w.Header().Set("Content-Type", "application/json")
		switch {
		case r.URL.Path == "/" && r.Method == http.MethodGet:
			fmt.Fprint(w, `{"version":{"number":"8.19.0"},"tagline":"You Know, for Search"}`)
		case r.URL.Path == "/_bulk":
			f.bulk(w, r)
		default:
			fmt.Fprint(w, `{}`)
		}
	}))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeES) bulk(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	var items []string
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	action := true
	f.mu.Lock()
	for sc.Scan() {
		if len(bytes.TrimSpace(sc.Bytes())) == 0 {
			continue
		}
		if action {
			var a map[string]struct {
				Index string `json:"_index"`
				ID    string `json:"_id"`
			}
			_ = json.Unmarshal(sc.Bytes(), &a)
			for op, m := range a {
				f.ids[m.ID]++
				items = append(items, fmt.Sprintf(`{%q:{"_index":%q,"_id":%q,"status":201,"result":"created"}}`, op, m.Index, m.ID))
			}
		}
		action = !action
	}
	f.mu.Unlock()
	fmt.Fprintf(w, `{"took":1,"errors":false,"items":[%s]}`, bytes.Join(func() [][]byte {
		out := make([][]byte, len(items))
		for i, s := range items {
			out[i] = []byte(s)
		}
		return out
	}(), []byte(",")))
}

func (f *fakeES) documents() (distinct, total int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, n := range f.ids {
		distinct++
		total += n
	}
	return distinct, total
}

// kfakeAggregatorConfig is an aggregator of group on topic in cluster,
// indexing into es.
func kfakeAggregatorConfig(c *kfake.Cluster, es *fakeES, topic string) Config {
	var cfg Config
	cfg.SetDefaults()
	cfg.Kafka.Brokers = c.ListenAddrs()
	cfg.Kafka.Topics = []string{topic}
	cfg.Kafka.Group = topic
	cfg.Kafka.DeadLetterTopic = topic + "-dead"
	cfg.Kafka.SessionTimeout = 6 * time.Second
	cfg.Elasticsearch.Addresses = []string{es.srv.URL}
	cfg.Elasticsearch.Index = "logs"
	no := false
	cfg.Elasticsearch.Template = &no
	cfg.Elasticsearch.Dedupe = &no
	return cfg
}

// produceLines writes n wire records to topic, spread over its partitions.
func produceLines(t *testing.T, cl *kgo.Client, topic string, n int, partitions int32) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	recs := lineRecords(n, time.Now())
	for i, r := range recs {
		r.Topic, r.Partition = topic, int32(i)%partitions
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

// committed is the group's committed offsets summed over topic's
// partitions.
func committed(ctx context.Context, adm *kadm.Client, group, topic string) int64 {
	offs, err := adm.FetchOffsets(ctx, group)
	if err != nil {
		return -1
	}
	var sum int64
	offs.Each(func(o kadm.OffsetResponse) {
		if o.Topic == topic && o.Err == nil {
			sum += o.At
		}
	})
	return sum
}

// runAggregator runs an aggregator of cfg until the returned stop is
// called.
func runAggregator(t *testing.T, cfg Config) (stop func()) {
	t.Helper()
	a, err := New(cfg, prometheus.NewRegistry(), zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("aggregator Run: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// newKfake starts an in-process Kafka with topic of partitions, and a
// client of it.
func newKfake(t *testing.T, topic string, partitions int32) (*kfake.Cluster, *kgo.Client) {
	t.Helper()
	c := testenv.KfakeCluster(t, kfake.SeedTopics(partitions, topic))
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.DefaultProduceTopic(topic))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return c, cl
}

// waitCommitted waits until the group committed n records of topic.
func waitCommitted(t *testing.T, adm *kadm.Client, group, topic string, n int64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for ctx.Err() == nil {
		if committed(ctx, adm, group, topic) == n {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("the group committed %d records, want %d", committed(context.Background(), adm, group, topic), n)
}

// waitMembers waits until group is stable with n members, each assigned
// partitions.
func waitMembers(t *testing.T, adm *kadm.Client, group string, n int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for ctx.Err() == nil {
		groups, err := adm.DescribeGroups(ctx, group)
		if g, ok := groups[group]; err == nil && ok && g.State == "Stable" && len(g.Members) == n {
			assigned := 0
			for _, m := range g.Members {
				if a, ok := m.Assigned.AsConsumer(); ok && len(a.Topics) > 0 {
					assigned++
				}
			}
			if assigned == n {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("group %s did not settle with %d members, each with partitions", group, n)
}

// TestKfakeCommitAfterIndexing: the poll loop, flow and ordered commit
// with franz-go's real consumer group, on kfake (no JVM): every record is
// indexed, and the group's offsets reach the end.
func TestKfakeCommitAfterIndexing(t *testing.T) {
	const topic, n = "logs-plain", 300
	c, cl := newKfake(t, topic, 3)
	es := newFakeES(t)
	produceLines(t, cl, topic, n, 3)
	stop := runAggregator(t, kfakeAggregatorConfig(c, es, topic))
	waitCommitted(t, kadm.NewClient(cl), topic, topic, n)
	stop()
	if distinct, _ := es.documents(); distinct != n {
		t.Fatalf("%d distinct documents indexed, want %d", distinct, n)
	}
}

// TestKfakeRebalance: a second member joins while the first is consuming,
// the partitions are split between them (the first drains and commits
// before giving any up), and every record is indexed and committed.
func TestKfakeRebalance(t *testing.T) {
	const topic, n = "logs-plain", 600
	c, cl := newKfake(t, topic, 4)
	es := newFakeES(t)
	cfg := kfakeAggregatorConfig(c, es, topic)
	produceLines(t, cl, topic, n/2, 4)
	stop1 := runAggregator(t, cfg)
	waitCommitted(t, kadm.NewClient(cl), topic, topic, n/2)
	stop2 := runAggregator(t, cfg)
	waitMembers(t, kadm.NewClient(cl), topic, 2)
	produceLines(t, cl, topic, n/2, 4)
	waitCommitted(t, kadm.NewClient(cl), topic, topic, n)
	stop2()
	stop1()
	if distinct, _ := es.documents(); distinct != n/2 {
		// lineRecords repeats its ids: the second half has the first's.
		t.Fatalf("%d distinct documents indexed, want %d", distinct, n/2)
	}
	if _, total := es.documents(); total < n {
		t.Fatalf("%d documents indexed, want at least %d", total, n)
	}
}
