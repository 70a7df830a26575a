package shipper

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

// TestKafkaWatch drives kafkaWatch through an outage by its hooks: records
// waiting with a broker error since the last acknowledgement make it not
// accepting after 1s (a warning naming the topic and the error, once per
// warnEvery), records waiting without any answer after 10s, and an
// acknowledgement or nothing waiting make it accepting again.
func TestKafkaWatch(t *testing.T) {
	core, logs := observer.New(zapcore.InfoLevel)
	m := newMetrics(prometheus.NewRegistry())
	w := newKafkaWatch(zap.New(core), m)
	accepting := func() float64 { return testutil.ToFloat64(m.kafkaAccepting) }
	t0 := time.Now()

	w.check(t0.Add(time.Hour)) // nothing waits: accepting however long it is quiet
	if accepting() != 1 {
		t.Fatal("not accepting with nothing to produce")
	}
	w.published("logs-service")
	w.OnBrokerConnect(kgo.BrokerMetadata{Host: "kafka", Port: 9092}, 0, nil, errors.New("connection refused"))
	start := time.Unix(0, w.busySince.Load())
	w.check(start.Add(500 * time.Millisecond))
	if accepting() != 1 {
		t.Fatal("not accepting 0.5s after an error: a moment's retry should not flip it")
	}
	w.check(start.Add(1500 * time.Millisecond))
	w.check(start.Add(2 * time.Second))
	if accepting() != 0 {
		t.Fatal("still accepting 1.5s after a connection error with records waiting")
	}
	warns := logs.FilterMessageSnippet("kafka is not accepting records")
	if warns.Len() != 1 {
		t.Fatalf("%d warnings, want 1 (rate-limited)", warns.Len())
	}
	if f := warns.All()[0].ContextMap(); f["topic"] != "logs-service" || f["broker"] != "kafka:9092" || f["broker_error"] != "connection refused" {
		t.Errorf("warning fields %v, want the topic, broker and error", f)
	}
	w.check(start.Add(2*time.Second + warnEvery))
	if n := logs.FilterMessageSnippet("kafka is not accepting records").Len(); n != 2 {
		t.Errorf("%d warnings after warnEvery more, want 2", n)
	}
	if got := testutil.ToFloat64(m.kafkaRequestErrors.WithLabelValues("connect")); got != 1 {
		t.Errorf("kafka_request_errors_total{stage=connect} = %v, want 1", got)
	}

	w.OnProduceBatchWritten(kgo.BrokerMetadata{}, "logs-service", 0, kgo.ProduceBatchMetrics{})
	w.done()
	w.check(time.Now())
	if accepting() != 1 || logs.FilterMessageSnippet("accepting records again").Len() != 1 {
		t.Fatal("not accepting again after an acknowledgement")
	}

	// A partition's error in a produce response, which franz-go retries
	// and only logs.
	w.published("logs-service")
	w.Log(kgo.LogLevelInfo, "batch in a produce request failed", "broker", "1", "topic", "logs-nginx", "partition", int32(0),
		"err", kerr.NotEnoughReplicas, "err_is_retryable", true)
	w.check(time.Unix(0, w.busySince.Load()).Add(2 * time.Second))
	if got := testutil.ToFloat64(m.kafkaRequestErrors.WithLabelValues("produce")); got != 1 || accepting() != 0 {
		t.Fatalf("after a produce error: request_errors_total{stage=produce} = %v, accepting %v; want 1 and 0", got, accepting())
	}
	if f := logs.FilterMessageSnippet("kafka is not accepting records").All()[2].ContextMap(); f["topic"] != "logs-nginx" || !strings.Contains(fmt.Sprint(f["broker_error"]), "NOT_ENOUGH_REPLICAS") {
		t.Errorf("warning fields %v, want the topic and error of the produce response", f)
	}
	w.OnProduceBatchWritten(kgo.BrokerMetadata{}, "logs-service", 0, kgo.ProduceBatchMetrics{})
	w.done()
	w.check(time.Now())

	// No error, no answer: a hung broker.
	w.published("logs-service")
	busy := time.Unix(0, w.busySince.Load())
	w.check(busy.Add(notAcceptingAfter - time.Second))
	if accepting() != 1 {
		t.Fatal("not accepting before notAcceptingAfter without errors")
	}
	w.check(busy.Add(notAcceptingAfter))
	if accepting() != 0 {
		t.Fatalf("accepting %v without any acknowledgement while records wait", notAcceptingAfter)
	}
}
