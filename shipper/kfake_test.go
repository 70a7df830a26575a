package shipper

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.uber.org/goleak"
	"go.uber.org/zap"

	"github.com/sluicelog/sluice/internal/testenv"
)

// TestKfakeProduceRefusedIsRetried: Kafka refuses the first produce
// request (not enough in-sync replicas); its records are produced again,
// and every line arrives once, none lost (kfake: no JVM). One refusal:
// franz-go refreshes its metadata before each retry, at most every 5s.
func TestKfakeProduceRefusedIsRetried(t *testing.T) {
	c := testenv.KfakeCluster(t)
	var refused atomic.Int32
	c.ControlKey(int16(kmsg.Produce), func(req kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		if refused.Load() >= 1 {
			return nil, nil, false
		}
		refused.Add(1)
		pr := req.(*kmsg.ProduceRequest)
		resp := pr.ResponseKind().(*kmsg.ProduceResponse)
		for _, rt := range pr.Topics {
			st := kmsg.NewProduceResponseTopic()
			st.Topic = rt.Topic
			for _, rp := range rt.Partitions {
				sp := kmsg.NewProduceResponseTopicPartition()
				sp.Partition = rp.Partition
				sp.ErrorCode = kerr.NotEnoughReplicas.Code
				st.Partitions = append(st.Partitions, sp)
			}
			resp.Topics = append(resp.Topics, st)
		}
		return resp, nil, true
	})
	h := newHarnessOn(t, &testenv.Stack{Broker: c.ListenAddrs()[0]}, nil)
	writeLines(t, h.path("app.log"), "a", 0, 500)
	h.start()
	recs := h.records(500, 30*time.Second)
	if dups := h.assertIDs(recs, "a", 500); dups != 0 {
		t.Errorf("%d lines arrived twice", dups)
	}
	if refused.Load() < 1 {
		t.Fatal("kafka refused no produce request")
	}
}

// TestShipperMadeButNotRunLeaksNothing: a shipper made but never run (a
// start that fails before Run, or a test that scans by hand) leaves no
// goroutine behind. Its inotify watcher used to be made in New, and its
// reading goroutine leaked (found by goleak in TestMain).
func TestShipperMadeButNotRunLeaksNothing(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	dir := t.TempDir()
	if _, err := New(testConfig(dir), prometheus.NewRegistry(), zap.NewNop(), WithPublisher(&shufflingPublisher{values: map[string]int{}})); err != nil {
		t.Fatal(err)
	}
}
