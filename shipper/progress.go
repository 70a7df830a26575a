package shipper

import (
	"errors"
	"fmt"
	"net"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap"
)

// The signals that show a stuck shipper within seconds, rather than when a
// file is rotated away unread: kafkaWatch says whether Kafka takes the
// records (franz-go retries inside, so a record's own failure may never
// come), and stallWatch fails readiness while lines wait and none is
// acknowledged. Both are evaluated on the shipper's signal tick (see
// flushLoop), independently of reading.

// Thresholds of kafkaWatch.
const (
	// notAcceptingAfterError: records wait, a request to a broker failed
	// since the last acknowledgement, and none came for this long.
	notAcceptingAfterError = time.Second
	// notAcceptingAfter: records wait and none was acknowledged for this
	// long, errors or not (a broker that answers nothing).
	notAcceptingAfter = 10 * time.Second
	// warnEvery spaces the warnings while Kafka does not accept.
	warnEvery = 30 * time.Second
)

// kafkaWatch follows whether Kafka accepts the shipper's records: it is a
// kgo hook (connection, write and read errors of every request, batches
// written) and kgo logger (for the produce errors franz-go retries inside,
// which no hook reports), and counts the records handed to Kafka and not
// acknowledged.
type kafkaWatch struct {
	log     *zap.Logger
	metrics *metrics

	outstanding atomic.Int64 // records published and not acknowledged
	busySince   atomic.Int64 // unix nanos when outstanding last left 0
	lastAck     atomic.Int64 // unix nanos of the last batch Kafka wrote
	lastErr     atomic.Pointer[requestError]
	lastTopic   atomic.Pointer[string]

	// Owned by check.
	accepting  bool
	downSince  time.Time
	lastWarned time.Time
}

// requestError is a failed request to a broker, which franz-go retries.
type requestError struct {
	at     time.Time
	op     string // connect, write, read or produce
	broker string
	topic  string // for produce errors
	err    error
}

func newKafkaWatch(log *zap.Logger, m *metrics) *kafkaWatch {
	w := &kafkaWatch{log: log, metrics: m, accepting: true}
	w.lastAck.Store(time.Now().UnixNano())
	m.kafkaAccepting.Set(1)
	return w
}

var (
	_ kgo.HookBrokerConnect       = (*kafkaWatch)(nil)
	_ kgo.HookBrokerWrite         = (*kafkaWatch)(nil)
	_ kgo.HookBrokerRead          = (*kafkaWatch)(nil)
	_ kgo.HookProduceBatchWritten = (*kafkaWatch)(nil)
	_ kgo.Logger                  = (*kafkaWatch)(nil)
)

// published counts a record handed to Kafka.
func (w *kafkaWatch) published(topic string) {
	if w.outstanding.Add(1) == 1 {
		w.busySince.Store(time.Now().UnixNano())
	}
	if p := w.lastTopic.Load(); p == nil || *p != topic {
		w.lastTopic.Store(&topic)
	}
}

// done counts a record Kafka acknowledged.
func (w *kafkaWatch) done() { w.outstanding.Add(-1) }

// wrote notes an acknowledgement now.
func (w *kafkaWatch) wrote() { w.lastAck.Store(time.Now().UnixNano()) }

func (w *kafkaWatch) failed(op string, meta kgo.BrokerMetadata, err error) {
	w.metrics.kafkaRequestErrors.WithLabelValues(op).Inc()
	w.lastErr.Store(&requestError{at: time.Now(), op: op, broker: net.JoinHostPort(meta.Host, fmt.Sprint(meta.Port)), err: err})
}

// Level is the kgo.Logger's level: the produce errors are logged at info.
func (w *kafkaWatch) Level() kgo.LogLevel { return kgo.LogLevelInfo }

// Log takes franz-go's log lines about produce requests whose partitions
// failed (a leader moving, too few in-sync replicas), which it retries and
// reports to no hook; other lines are dropped, as without a logger.
func (w *kafkaWatch) Log(_ kgo.LogLevel, msg string, keyvals ...any) {
	if msg != "batch in a produce request failed" && msg != "produce partition load error, bumping error count on first stored batch" {
		return
	}
	e := &requestError{at: time.Now(), op: "produce"}
	for i := 0; i+1 < len(keyvals); i += 2 {
		switch keyvals[i] {
		case "broker":
			e.broker = fmt.Sprint(keyvals[i+1])
		case "topic":
			e.topic = fmt.Sprint(keyvals[i+1])
		case "err":
			e.err, _ = keyvals[i+1].(error)
		}
	}
	if e.err == nil {
		e.err = errors.New(msg)
	}
	w.metrics.kafkaRequestErrors.WithLabelValues(e.op).Inc()
	w.lastErr.Store(e)
}

func (w *kafkaWatch) OnBrokerConnect(meta kgo.BrokerMetadata, _ time.Duration, _ net.Conn, err error) {
	if err != nil {
		w.failed("connect", meta, err)
	}
}

func (w *kafkaWatch) OnBrokerWrite(meta kgo.BrokerMetadata, _ int16, _ int, _, _ time.Duration, err error) {
	if err != nil {
		w.failed("write", meta, err)
	}
}

func (w *kafkaWatch) OnBrokerRead(meta kgo.BrokerMetadata, _ int16, _ int, _, _ time.Duration, err error) {
	if err != nil {
		w.failed("read", meta, err)
	}
}

func (w *kafkaWatch) OnProduceBatchWritten(kgo.BrokerMetadata, string, int32, kgo.ProduceBatchMetrics) {
	w.wrote()
}

// check sets sluice_shipper_kafka_accepting and warns, at most every
// warnEvery, while Kafka does not accept records: records wait, and none
// was acknowledged for notAcceptingAfter, or for notAcceptingAfterError
// with a request failed since. Called from one goroutine.
func (w *kafkaWatch) check(now time.Time) {
	waiting := w.outstanding.Load()
	progress := time.Unix(0, max(w.lastAck.Load(), w.busySince.Load()))
	quiet := now.Sub(progress)
	lastErr := w.lastErr.Load()
	failedSince := lastErr != nil && lastErr.at.After(progress)
	accepting := waiting <= 0 || quiet < notAcceptingAfter && !(failedSince && quiet >= notAcceptingAfterError)
	topic := ""
	if p := w.lastTopic.Load(); p != nil {
		topic = *p
	}
	if lastErr != nil && lastErr.topic != "" {
		topic = lastErr.topic
	}
	switch {
	case !accepting:
		if w.accepting {
			w.downSince = now
		}
		if w.accepting || now.Sub(w.lastWarned) >= warnEvery {
			w.lastWarned = now
			fields := []zap.Field{zap.String("topic", topic), zap.Int64("unacknowledged_records", waiting),
				zap.Duration("since_last_ack", quiet.Round(time.Millisecond)), zap.Duration("not_accepting_for", now.Sub(w.downSince).Round(time.Second))}
			if lastErr != nil {
				fields = append(fields, zap.String("broker", lastErr.broker), zap.String("request", lastErr.op), zap.NamedError("broker_error", lastErr.err))
			}
			w.log.Warn("kafka is not accepting records: lines wait in their files, and reading stops at max_in_flight_bytes", fields...)
		}
	case !w.accepting:
		w.log.Info("kafka is accepting records again", zap.String("topic", topic), zap.Duration("not_accepting_for", now.Sub(w.downSince).Round(time.Second)))
	}
	w.accepting = accepting
	if accepting {
		w.metrics.kafkaAccepting.Set(1)
	} else {
		w.metrics.kafkaAccepting.Set(0)
	}
}
