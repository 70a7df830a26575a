package shipper

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest"
	"go.uber.org/zap/zaptest/observer"

	"github.com/sluicelog/sluice/internal/event"
	"github.com/sluicelog/sluice/internal/telemetry"
)

// TestTopicLimitLoweredAfterStart lowers the topic's max.message.bytes to
// 4 KiB after the shipper learned it (as an operator may, and as a shipper
// without permission to read it never knows it): a 20 KiB line, which fits
// what the shipper knows, is refused by Kafka; it arrives cut under the new
// limit and flagged truncated, and the lines after it arrive too (their
// batches, over the new limit as well, are produced a record at a time),
// rather than the line being produced again for ever.
func TestTopicLimitLoweredAfterStart(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.Kafka.Compression = "none" })
	h.start()
	writeLines(t, h.path("app.log"), "a", 0, 100)
	h.records(100, 30*time.Second)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	limit := "4096"
	resp, err := kadm.NewClient(h.stack.Client(t)).AlterTopicConfigs(ctx,
		[]kadm.AlterConfig{{Op: kadm.SetConfig, Name: "max.message.bytes", Value: &limit}}, h.topic)
	if err == nil {
		var r kadm.AlterConfigsResponse
		if r, err = resp.On(h.topic, nil); err == nil {
			err = r.Err
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	writeLongLine(t, h.path("app.log"), 20000)
	writeLines(t, h.path("app.log"), "b", 0, 100)

	recs := h.records(201, 30*time.Second)
	h.assertIDs(recs, "a", 100)
	h.assertIDs(recs, "b", 100)
	ev := lineWithID(t, recs, "long")
	if !ev.HasFlag(event.FlagTruncated) || len(ev.Line) >= 4096 || len(ev.Line) < 1024 {
		t.Fatalf("the 20 KiB line arrived with %d bytes, flags %v; want cut under the topic's 4 KiB, flagged truncated", len(ev.Line), ev.Flags)
	}
	if got := testutil.ToFloat64(h.sh.metrics.linesCut.WithLabelValues("service")); got != 1 {
		t.Errorf("sluice_shipper_lines_truncated_total = %v, want 1", got)
	}
	t.Logf("the 20 KiB line arrived with %d bytes", len(ev.Line))
}

// TestTopicLimitUnreadable ships into a topic made beforehand with an
// 8 KiB max.message.bytes by a shipper that cannot read it (as without
// DescribeConfigs permission): batches of small lines, which Kafka refuses
// as a whole, are produced again a record at a time, and a 20 KiB line is
// cut shorter until Kafka takes it, flagged truncated; every line arrives.
func TestTopicLimitUnreadable(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.Kafka.Compression = "none" })
	h.createTopic(8192)
	writeLines(t, h.path("app.log"), "a", 0, 300)
	writeLongLine(t, h.path("app.log"), 20000)
	writeLines(t, h.path("app.log"), "b", 0, 300)
	core, logs := observer.New(zapcore.WarnLevel)
	var err error
	h.sh, err = New(h.cfg, prometheus.NewRegistry(), zap.New(zapcore.NewTee(zaptest.NewLogger(t).Core(), core)))
	if err != nil {
		t.Fatal(err)
	}
	h.sh.producer.maxMessageBytes = func(context.Context, *kadm.Client, string) (int32, error) {
		return 0, errors.New("TOPIC_AUTHORIZATION_FAILED")
	}
	runShipper(t, h.sh)
	recs := h.records(601, 30*time.Second)
	h.assertIDs(recs, "a", 300)
	h.assertIDs(recs, "b", 300)
	ev := lineWithID(t, recs, "long")
	if !ev.HasFlag(event.FlagTruncated) || len(ev.Line) >= 8192 || len(ev.Line) < 2048 {
		t.Fatalf("the 20 KiB line arrived with %d bytes, flags %v; want cut under the topic's 8 KiB, flagged truncated", len(ev.Line), ev.Flags)
	}
	if logs.FilterMessageSnippet("cut to fit").FilterField(zap.String("topic", h.topic)).Len() == 0 {
		t.Error("no warning naming the topic that a line was cut")
	}
	t.Logf("the 20 KiB line arrived with %d bytes", len(ev.Line))
}

// createTopic makes the test's topic beforehand, as an operator would,
// with a max.message.bytes of limit.
func (h *harness) createTopic(limit int) {
	h.t.Helper()
	v := fmt.Sprint(limit)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := kadm.NewClient(h.stack.Client(h.t)).CreateTopic(ctx, 1, 1, map[string]*string{"max.message.bytes": &v}, h.topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		h.t.Fatal(err)
	}
}

// writeLongLine appends the line id=long, of about n bytes, to path.
func writeLongLine(t *testing.T, path string, n int) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString("line id=long " + strings.Repeat("x", n) + "\n"); err != nil {
		t.Fatal(err)
	}
}

// lineWithID decodes the record of the line with id among recs.
func lineWithID(t *testing.T, recs []*kgo.Record, id string) event.Event {
	t.Helper()
	for _, r := range recs {
		if idOf(string(r.Value)) == id {
			ev, err := event.Decode(r)
			if err != nil {
				t.Fatal(err)
			}
			return ev
		}
	}
	t.Fatalf("line id=%s did not arrive", id)
	return event.Event{}
}

// runShipper runs sh until the test ends.
func runShipper(t *testing.T, sh *Shipper) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- sh.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
}

// heldPublisher keeps the acknowledgements of what it is given (of topic
// only, if set) until released; from then on it acknowledges at once.
type heldPublisher struct {
	collectingPublisher
	mu       sync.Mutex
	held     []func()
	released bool
	topic    string
}

func (p *heldPublisher) Publish(ctx context.Context, rec *kgo.Record, acked func()) error {
	p.mu.Lock()
	if !p.released && (p.topic == "" || rec.Topic == p.topic) {
		p.held = append(p.held, acked)
		acked = func() {}
	}
	p.mu.Unlock()
	return p.collectingPublisher.Publish(ctx, rec, acked)
}

func (p *heldPublisher) release() {
	p.mu.Lock()
	held := p.held
	p.held, p.released = nil, true
	p.mu.Unlock()
	for _, ack := range held {
		ack()
	}
}

// TestTruncationLossCountedWhenBehind copytruncates a file while the
// shipper is held far behind (its publisher acknowledges nothing, so
// reading stops at max_in_flight_bytes): the lag gauge shows the unread
// megabytes while it is held, and once it goes on, the bytes truncated away
// unread are counted in truncated_lost_bytes_total.
func TestTruncationLossCountedWhenBehind(t *testing.T) {
	l := newLifecycle(t, func(c *Config) {
		c.MaxLineBytes = 16 << 10
		c.MaxInFlightBytes = 64 << 10
	})
	pub := &heldPublisher{}
	pub.release() // the first lines go through
	sh, err := New(l.cfg, prometheus.NewRegistry(), zaptest.NewLogger(t), WithPublisher(pub))
	if err != nil {
		t.Fatal(err)
	}
	runShipper(t, sh)
	writeLines(t, l.path("app.log"), "t", 0, 100)
	pub.waitFor(t, 100, 10*time.Second)
	time.Sleep(300 * time.Millisecond) // idle at the end of the file
	pub.mu.Lock()
	pub.released = false
	pub.mu.Unlock()

	writeLines(t, l.path("app.log"), "t", 100, 60000) // ~5 MB
	fi, err := os.Stat(l.path("app.log"))
	if err != nil {
		t.Fatal(err)
	}
	size := fi.Size()
	waitUntil(t, "the lag gauge to show the unread bytes", func() bool {
		return testutil.ToFloat64(sh.metrics.lagBytes) > float64(size)-float64(512<<10)
	})
	copyFile(t, l.path("app.log"), l.path("app.log.1"))
	if err := os.Truncate(l.path("app.log"), 0); err != nil {
		t.Fatal(err)
	}
	pub.release()
	waitUntil(t, "the truncation to be seen", func() bool { return testutil.ToFloat64(sh.metrics.truncations) == 1 })
	lost := testutil.ToFloat64(sh.metrics.truncatedBytesLost)
	shipped := int64(0)
	for _, ev := range pub.shipped() {
		shipped += int64(len(ev.Line)) + 1
	}
	t.Logf("file %d bytes, %d shipped; truncated_lost_bytes_total %.0f", size, shipped, lost)
	if want := float64(size - shipped); lost < want-1 || lost > want+1 {
		t.Errorf("truncated_lost_bytes_total = %.0f, want the %.0f bytes never read", lost, want)
	}
}

// TestKafkaOutageSignals cuts the shipper off Kafka while lines keep being
// written: within seconds the lag gauge grows, sluice_shipper_kafka_accepting
// goes to 0, a warning names the cause and /readyz fails after stall_after;
// once Kafka is back, the signals clear and every line arrives exactly once.
func TestKafkaOutageSignals(t *testing.T) {
	h := newHarness(t, func(c *Config) {
		c.HTTP.StallAfter = 3 * time.Second
		c.MaxInFlightBytes = 256 << 10
		c.MaxLineBytes = 64 << 10
	})
	proxy, addr := h.stack.KafkaProxy(t)
	h.cfg.Kafka.Brokers = []string{addr}
	core, logs := observer.New(zapcore.InfoLevel)
	log := zap.New(zapcore.NewTee(zaptest.NewLogger(t).Core(), core))
	sh, err := New(h.cfg, prometheus.NewRegistry(), log)
	if err != nil {
		t.Fatal(err)
	}
	h.sh = sh
	srv := telemetry.NewServer("127.0.0.1:0", prometheus.NewRegistry(), log)
	sh.AddChecks(srv)
	ready := func() (int, string) {
		rec := httptest.NewRecorder()
		srv.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
		return rec.Code, rec.Body.String()
	}
	runShipper(t, sh)
	writeLines(t, h.path("app.log"), "k", 0, 1000)
	h.records(1000, 30*time.Second)
	if code, body := ready(); code != http.StatusOK {
		t.Fatalf("/readyz = %d before the outage: %s", code, body)
	}

	before, err := os.Stat(h.path("app.log"))
	if err != nil {
		t.Fatal(err)
	}
	proxy.Cut()
	cut := time.Now()
	const total = 20000
	writing := make(chan struct{})
	go func() {
		defer close(writing)
		for i := 1000; i < total; i += 500 {
			writeLines(t, h.path("app.log"), "k", i, i+500)
			time.Sleep(100 * time.Millisecond)
		}
	}()
	var lagSeen, acceptingSeen, warnedSeen, notReadySeen time.Duration
	var lagFirst float64 = -1
	for time.Since(cut) < 15*time.Second && (lagSeen == 0 || acceptingSeen == 0 || warnedSeen == 0 || notReadySeen == 0) {
		since := time.Since(cut)
		lag := testutil.ToFloat64(sh.metrics.lagBytes)
		if lagFirst < 0 && lag > 0 {
			lagFirst = lag
		} else if lagSeen == 0 && lagFirst > 0 && lag > lagFirst+(100<<10) {
			lagSeen = since
		}
		if acceptingSeen == 0 && testutil.ToFloat64(sh.metrics.kafkaAccepting) == 0 {
			acceptingSeen = since
		}
		if warnedSeen == 0 && logs.FilterMessageSnippet("kafka is not accepting records").Len() > 0 {
			warnedSeen = since
		}
		// The progress check alone: the kafka check (a ping) fails at once.
		if notReadySeen == 0 && sh.stall.Check(context.Background()) != nil {
			notReadySeen = since
		}
		time.Sleep(100 * time.Millisecond)
	}
	<-writing
	// The gauge follows the file, not the reader, which stopped at
	// max_in_flight_bytes.
	after, err := os.Stat(h.path("app.log"))
	if err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the lag gauge to show the bytes written during the outage", func() bool {
		return testutil.ToFloat64(sh.metrics.lagBytes) >= float64(after.Size()-before.Size())
	})
	if code, body := ready(); code != http.StatusServiceUnavailable || !strings.Contains(body, "shipper_progress: no progress for") {
		t.Errorf("/readyz during the outage = %d %q, want 503 naming shipper_progress", code, body)
	}
	t.Logf("after the cut: lag growing %v, kafka_accepting 0 %v, warned %v, /readyz failing %v; request errors %v",
		lagSeen, acceptingSeen, warnedSeen, notReadySeen, testutil.ToFloat64(sh.metrics.kafkaRequestErrors.WithLabelValues("connect")))
	if lagSeen == 0 {
		t.Error("the lag gauge did not grow while lines were written")
	}
	if acceptingSeen == 0 || acceptingSeen > 5*time.Second {
		t.Errorf("sluice_shipper_kafka_accepting went to 0 after %v, want within 5s", acceptingSeen)
	}
	if warnedSeen == 0 {
		t.Error("no warning that Kafka is not accepting")
	} else if w := logs.FilterMessageSnippet("kafka is not accepting records").All()[0]; w.ContextMap()["topic"] != h.topic || w.ContextMap()["broker_error"] == nil {
		t.Errorf("the warning does not name the topic and the broker error: %v", w.ContextMap())
	}
	if notReadySeen == 0 || notReadySeen > h.cfg.HTTP.StallAfter+3*time.Second {
		t.Errorf("/readyz failed after %v, want soon after stall_after %v", notReadySeen, h.cfg.HTTP.StallAfter)
	}

	proxy.Restore()
	recs := h.records(total, 2*time.Minute)
	if dups := h.assertIDs(recs, "k", total); dups != 0 || len(recs) != total {
		t.Errorf("%d records with %d duplicates, want %d exactly once", len(recs), dups, total)
	}
	waitUntil(t, "kafka_accepting 1 and /readyz passing", func() bool {
		code, _ := ready()
		return testutil.ToFloat64(sh.metrics.kafkaAccepting) == 1 && code == http.StatusOK
	})
	if logs.FilterMessageSnippet("kafka is accepting records again").Len() == 0 {
		t.Error("no notice that Kafka accepts again")
	}
}
