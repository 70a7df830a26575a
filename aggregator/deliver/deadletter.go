package deliver

import (
	"context"
	"errors"
	"strconv"
	"sync/atomic"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap"

	"github.com/sluicelog/sluice/internal/backoff"
	"github.com/sluicelog/sluice/internal/event"
	"github.com/sluicelog/sluice/internal/kafkaclient"
)

// Headers added to dead-lettered records.
const (
	HeaderDLQStatus = "sluice.dlq.status"
	HeaderDLQReason = "sluice.dlq.reason"
	HeaderDLQTopic  = "sluice.dlq.topic"
	HeaderDLQIndex  = "sluice.dlq.index"
)

// DeadLetter is a record that cannot be delivered, and why: Elasticsearch's
// status and reason (status 0: the record is not a Sluice event, or its
// document could not be encoded), and the index it was for.
type DeadLetter struct {
	Record *kgo.Record
	Status int
	Reason string
	Index  string
}

// DeadLetters keeps the records that cannot be delivered: the dead-letter
// topic (Topic), or the dead-letter file of `sluice run`. Write returns
// once every one is kept, retrying what fails, or when ctx ends.
type DeadLetters interface {
	Write(ctx context.Context, dead []DeadLetter) error
}

// Topic writes dead letters to the dead-letter topic, with their original
// headers and the reason, and waits for Kafka's acknowledgement.
type Topic struct {
	name   string
	client *kgo.Client
	log    *zap.Logger
	// limit is the largest record batch the dead-letter topic takes:
	// deadLetterMaxBytes, or its max.message.bytes if made smaller
	// beforehand.
	limit atomic.Int32
}

// NewTopic returns the writer of dead letters to the topic name; the Kafka
// client that produces them must be made with ClientOpt and given with
// Attach.
func NewTopic(name string, log *zap.Logger) *Topic {
	t := &Topic{name: name, log: log}
	t.limit.Store(deadLetterMaxBytes)
	return t
}

// ClientOpt keeps the client's record batches within the dead-letter
// topic's limit: the aggregator produces dead letters only; the limit is
// learnt in Prepare, before the first.
func (t *Topic) ClientOpt() kgo.Opt {
	return kgo.ProducerBatchMaxBytesFn(func(string) int32 { return t.limit.Load() })
}

// Attach gives the client dead letters are produced with.
func (t *Topic) Attach(cl *kgo.Client) { t.client = cl }

// Write produces the dead letters one at a time: dead letters are few, and
// a record alone is what a topic's limit can refuse (a batch of several
// could be refused for their sum when the limit could not be read).
func (t *Topic) Write(ctx context.Context, dead []DeadLetter) error {
	recs := make([]*kgo.Record, len(dead))
	for i, d := range dead {
		h := append([]kgo.RecordHeader(nil), d.Record.Headers...)
		h = append(h,
			kgo.RecordHeader{Key: HeaderDLQStatus, Value: []byte(strconv.Itoa(d.Status))},
			kgo.RecordHeader{Key: HeaderDLQReason, Value: []byte(d.Reason)},
			kgo.RecordHeader{Key: HeaderDLQTopic, Value: []byte(d.Record.Topic)},
			kgo.RecordHeader{Key: HeaderDLQIndex, Value: []byte(d.Index)},
		)
		recs[i] = &kgo.Record{Topic: t.name, Key: d.Record.Key, Value: d.Record.Value, Headers: h}
	}
	for _, rec := range recs {
		err := backoff.Steady().Retry(ctx, t.log, "writing to the dead-letter topic", func() error {
			err := t.client.ProduceSync(ctx, rec).FirstErr()
			for errors.Is(err, kerr.MessageTooLarge) && len(rec.Value) > 0 {
				rec = t.cutToFit(rec) // shorter each time
				err = t.client.ProduceSync(ctx, rec).FirstErr()
			}
			return err
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// deadLetterMaxBytes is the largest record batch the aggregator produces,
// and the max.message.bytes of the dead-letter topic it creates: a record
// of the largest line a shipper sends, with its headers and the dead-letter
// ones, fits.
const deadLetterMaxBytes = 16 << 20

// cutToFit returns r, which Kafka refused as too large, with its value cut
// to fit the dead-letter topic's limit, or in half if by that limit it
// fits (the limit could not be read), flagged truncated.
func (t *Topic) cutToFit(r *kgo.Record) *kgo.Record {
	cut, _, _ := event.CutShorter(r, int(t.limit.Load()))
	t.log.Warn("dead letter too large for the dead-letter topic's max.message.bytes; cut to fit and flagged truncated",
		zap.String("topic", r.Topic), zap.Int("bytes", len(r.Value)), zap.Int("cut_to", len(cut.Value)))
	return cut
}

// Prepare creates the dead-letter topic, or learns the limit of one made
// beforehand.
func (t *Topic) Prepare(ctx context.Context) error {
	got, err := kafkaclient.EnsureTopic(ctx, kadm.NewClient(t.client),
		kafkaclient.Topic{Name: t.name, Partitions: 1, ReplicationFactor: -1, MaxMessageBytes: deadLetterMaxBytes}, nil)
	if err == nil {
		t.learnLimit(got)
	}
	return err
}

// learnLimit takes the max.message.bytes of a dead-letter topic made
// beforehand: batches are kept under it, and a dead letter alone over it
// is cut to fit (cutToFit).
func (t *Topic) learnLimit(got kafkaclient.PreparedTopic) {
	v, err := got.MaxMessageBytes, got.LimitErr
	if err != nil {
		t.log.Warn("cannot read the dead-letter topic's max.message.bytes", zap.String("topic", t.name), zap.Error(err))
		return
	}
	if v < deadLetterMaxBytes {
		t.limit.Store(max(v, 512))
		t.log.Warn("the dead-letter topic accepts records of at most max.message.bytes: larger dead letters are cut to fit and flagged truncated",
			zap.String("topic", t.name), zap.Int32("max.message.bytes", v))
	}
}
