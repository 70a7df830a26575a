package shipper

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap"

	"github.com/sluicelog/sluice/internal/backoff"
	"github.com/sluicelog/sluice/internal/event"
	"github.com/sluicelog/sluice/internal/kafkaclient"
)

// producer is the Kafka Publisher: it hands records to Kafka and reports
// each acknowledgement back. The shipper's in-flight budget bounds what it
// holds, so a slow or unreachable Kafka stops the readers and the files stay
// the buffer.
type producer struct {
	cfg KafkaConfig
	// clients produce in parallel: a client builds and compresses its
	// requests to a broker in one goroutine, which one core cannot keep up
	// with. client is clients[0], also used for admin and health.
	clients []*kgo.Client
	client  *kgo.Client
	next    atomic.Uint64 // records published, for spreading over clients
	admin   *kadm.Client
	log     *zap.Logger
	metrics *metrics

	mu sync.Mutex
	// topics are the prepared topics and their record batch limit: the
	// smaller of kafka.batch_bytes and the topic's max.message.bytes.
	topics map[string]int32
	closed bool
	// alone is the queue of records Kafka refused as too large although
	// they fit the topic's known limit, produced one at a time by
	// aloneClient (see produceAlone); aloneRunning while a goroutine
	// drains it.
	alone        []aloneRecord
	aloneRunning bool
	aloneClient  *kgo.Client
	aloneOpts    []kgo.Opt
	aloneWarned  time.Time // when produceAlone last warned

	// maxMessageBytes reads a topic's max.message.bytes
	// (kafkaclient.MaxMessageBytes; tests replace it).
	maxMessageBytes func(context.Context, *kadm.Client, string) (int32, error)

	// watch follows whether Kafka takes the records (hooks, acks).
	watch *kafkaWatch
}

func compressionCodec(name string) (kgo.CompressionCodec, error) {
	switch name {
	case "zstd":
		// Level 1: log lines compress well at the fastest level, and the
		// encoder is most of the shipper's CPU at the default level.
		return kgo.ZstdCompression().WithLevel(1), nil
	case "lz4":
		return kgo.Lz4Compression(), nil
	case "snappy":
		return kgo.SnappyCompression(), nil
	case "gzip":
		return kgo.GzipCompression(), nil
	case "none":
		return kgo.NoCompression(), nil
	}
	return kgo.CompressionCodec{}, fmt.Errorf("%q is not a codec; use zstd, lz4, snappy, gzip or none", name)
}

// newProducer makes the Kafka producer. maxInFlight is the shipper's
// budget (max_in_flight_bytes): it bounds the records franz-go buffers, so
// franz-go's own cap on buffered records, which would block Produce without
// regard for shutdown, is set above what the budget allows.
func newProducer(cfg KafkaConfig, maxInFlight int64, log *zap.Logger, m *metrics) (*producer, error) {
	codec, err := compressionCodec(cfg.Compression)
	if err != nil {
		return nil, err
	}
	security, err := cfg.Security.Opts(log)
	if err != nil {
		return nil, err
	}
	partitioner := kgo.StickyKeyPartitioner(nil) // by key: the file id
	if cfg.Partitioning == PartitionSpread {
		partitioner = kgo.StickyPartitioner() // a batch at a time, keys ignored
	}
	p := &producer{cfg: cfg, log: log, metrics: m, topics: map[string]int32{}, watch: newKafkaWatch(log, m),
		maxMessageBytes: kafkaclient.MaxMessageBytes}
	p.aloneOpts = append(security,
		kgo.SeedBrokers(cfg.Brokers...),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProducerBatchCompression(codec),
		kgo.ProducerLinger(0),
		kgo.ProducerBatchMaxBytesFn(p.batchLimit),
		kgo.RecordDeliveryTimeout(0),
		kgo.RetryBackoffFn(retryBackoff),
		kgo.WithHooks(p.watch),
		kgo.WithLogger(p.watch),
	)
	for range cfg.Producers {
		client, err := kgo.NewClient(append(security,
			kgo.WithHooks(p.watch),
			kgo.WithLogger(p.watch),
			kgo.SeedBrokers(cfg.Brokers...),
			kgo.RecordPartitioner(partitioner),
			kgo.RequiredAcks(kgo.AllISRAcks()), // with idempotence, the franz-go default
			kgo.ProducerBatchCompression(codec),
			kgo.ProducerLinger(cfg.Linger),
			kgo.ProducerBatchMaxBytesFn(p.batchLimit),
			kgo.RecordDeliveryTimeout(0), // unlimited retries (the default): the budget bounds memory
			kgo.MaxBufferedRecords(int(maxInFlight/recordOverhead)+1024),
			kgo.RetryBackoffFn(retryBackoff),
		)...)
		if err != nil {
			for _, c := range p.clients {
				c.Close()
			}
			return nil, fmt.Errorf("kafka client: %w", err)
		}
		p.clients = append(p.clients, client)
	}
	p.client = p.clients[0]
	p.admin = kadm.NewClient(p.client)
	return p, nil
}

// spreadRun is how many consecutive records go to one client under spread
// partitioning: about one batch, so that batches stay large.
const spreadRun = 1024

// clientFor picks the client that produces rec: under file partitioning
// always the same for a file (its key), so that its lines stay in order;
// else the next client every spreadRun records.
func (p *producer) clientFor(rec *kgo.Record) *kgo.Client {
	n := uint64(len(p.clients))
	if n == 1 {
		return p.client
	}
	if p.cfg.Partitioning == PartitionFile {
		h := fnv.New64a()
		h.Write(rec.Key)
		return p.clients[h.Sum64()%n]
	}
	return p.clients[(p.next.Add(1)/spreadRun)%n]
}

// produceRetry is the pause before a record, or a topic's creation, is
// tried again.
var produceRetry = backoff.Policy{Initial: 100 * time.Millisecond, Max: 5 * time.Second}

// retryBackoff is produceRetry for franz-go's RetryBackoffFn.
func retryBackoff(tries int) time.Duration { return produceRetry.Delay(tries) }

// check returns an error when Kafka refuses this client's TLS or SASL
// settings, which no retry can cure; an unreachable Kafka is only logged.
func (p *producer) check(ctx context.Context) error {
	return p.cfg.Security.Check(ctx, p.client, p.log)
}

// ping reports whether Kafka answers, for /readyz.
func (p *producer) ping(ctx context.Context) error { return p.client.Ping(ctx) }

// Prepare creates topic if it does not exist, retrying until Kafka answers
// or ctx is done, and learns the largest record batch it accepts.
func (p *producer) Prepare(ctx context.Context, topic string) error {
	p.mu.Lock()
	_, known := p.topics[topic]
	p.mu.Unlock()
	if known {
		return nil
	}
	t := kafkaclient.Topic{Name: topic, Partitions: p.cfg.Partitions, ReplicationFactor: p.cfg.ReplicationFactor,
		// Allow a whole cut line plus headers in one record.
		MaxMessageBytes: p.cfg.BatchBytes + 64<<10}
	for tries := 0; ; tries++ {
		got, err := kafkaclient.EnsureTopic(ctx, p.admin, t, p.maxMessageBytes)
		if err == nil {
			if got.Created {
				p.log.Info("created topic", zap.String("topic", topic), zap.Int32("partitions", p.cfg.Partitions))
			}
			limit := p.topicLimit(topic, got)
			p.mu.Lock()
			p.topics[topic] = limit
			p.mu.Unlock()
			return nil
		}
		p.log.Warn("cannot create topic yet", zap.String("topic", topic), zap.Error(err))
		if produceRetry.Wait(ctx, tries) != nil {
			return ctx.Err()
		}
	}
}

// batchLimit is the largest record batch franz-go builds for topic.
func (p *producer) batchLimit(topic string) int32 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.batchLimit0(topic)
}

// batchLimit0 is batchLimit with p.mu held.
func (p *producer) batchLimit0(topic string) int32 {
	if limit, ok := p.topics[topic]; ok {
		return limit
	}
	return p.cfg.BatchBytes
}

// minBatchLimit is the smallest batch limit franz-go accepts.
const minBatchLimit = 512

// topicLimit is the largest record batch for the topic: a topic made
// before the shipper (by an operator, with Kafka's default of 1 MiB) may
// accept less than kafka.batch_bytes. Batches are then kept under its
// max.message.bytes, and a line whose record alone is over it is cut to
// fit (see cutToFit). Without permission to read the topic's
// configuration, kafka.batch_bytes is used.
func (p *producer) topicLimit(topic string, got kafkaclient.PreparedTopic) int32 {
	v, err := got.MaxMessageBytes, got.LimitErr
	if err != nil {
		p.log.Warn("cannot read the topic's max.message.bytes; batches are kept under kafka.batch_bytes",
			zap.String("topic", topic), zap.Error(err))
		return p.cfg.BatchBytes
	}
	if v >= p.cfg.BatchBytes {
		return p.cfg.BatchBytes
	}
	limit := max(v, minBatchLimit)
	p.log.Warn("the topic accepts smaller record batches than kafka.batch_bytes: batches are kept under its max.message.bytes, "+
		"and lines whose record is over it are cut to fit and flagged truncated; raise the topic's max.message.bytes to kafka.batch_bytes to ship lines up to max_line_bytes whole",
		zap.String("topic", topic), zap.Int32("max.message.bytes", limit), zap.Int32("kafka.batch_bytes", p.cfg.BatchBytes))
	return limit
}

// Publish sends rec and calls acked once Kafka acknowledged it; it does not
// wait. A failed record is produced again after a pause until it succeeds,
// or until the producer closes, in which case acked is never called and the
// registry keeps the line unread.
func (p *producer) Publish(_ context.Context, rec *kgo.Record, acked func()) error {
	p.watch.published(rec.Topic)
	p.produce(p.clientFor(rec), rec, acked, 0)
	return nil
}

// failed handles a record Kafka did not accept: one too large for its
// topic's known limit is cut to fit and produced again at once; one
// Kafka refused as too large although it fits that limit (the topic's
// max.message.bytes could not be read, or was lowered since) is produced
// alone, and cut shorter until Kafka takes it; any other is produced
// again after a backoff.
func (p *producer) failed(client *kgo.Client, r *kgo.Record, acked func(), err error, tries int) {
	if errors.Is(err, kerr.MessageTooLarge) {
		if cut, ok := p.cutToFit(r); ok {
			p.produce(client, cut, acked, tries)
			return
		}
		if !p.isClosed() {
			p.produceAlone(r, acked)
			return
		}
	}
	p.retry(client, r, acked, err, tries)
}

// produce produces r, the tries-th time; a failure goes to failed.
func (p *producer) produce(client *kgo.Client, r *kgo.Record, acked func(), tries int) {
	client.Produce(context.Background(), r, func(r *kgo.Record, err error) {
		if err == nil {
			p.watch.done()
			acked()
			return
		}
		p.failed(client, r, acked, err, tries+1)
	})
}

// aloneRecord is a record waiting to be produced alone.
type aloneRecord struct {
	rec   *kgo.Record
	acked func()
}

// produceAlone queues r, which Kafka refused as too large although it fits
// the topic's known limit, to be produced in a batch of its own: the
// refusal may have been for the batch it was in, or for r itself. One
// goroutine produces the queue one record at a time, so that Kafka's
// answer is about that record alone.
func (p *producer) produceAlone(r *kgo.Record, acked func()) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if now := time.Now(); now.Sub(p.aloneWarned) >= time.Minute {
		p.aloneWarned = now
		p.log.Warn("kafka refused records as too large although they fit the topic's max.message.bytes as known to the shipper "+
			"(it could not be read, or was lowered since): they are produced one at a time, and a line whose record alone is refused is cut shorter until it is taken; "+
			"restart the shipper to learn the topic's limit, or raise it to kafka.batch_bytes",
			zap.String("topic", r.Topic), zap.Int32("kafka.batch_bytes", p.cfg.BatchBytes), zap.Int32("known_limit", p.batchLimit0(r.Topic)))
	}
	again := &kgo.Record{Topic: r.Topic, Key: r.Key, Value: r.Value, Headers: r.Headers, Timestamp: r.Timestamp}
	p.alone = append(p.alone, aloneRecord{again, acked})
	if !p.aloneRunning {
		p.aloneRunning = true
		go p.drainAlone()
	}
}

func (p *producer) drainAlone() {
	for {
		p.mu.Lock()
		if len(p.alone) == 0 || p.closed {
			p.alone, p.aloneRunning = nil, false // on close: never acknowledged, the registry keeps the lines
			p.mu.Unlock()
			return
		}
		next := p.alone[0]
		p.alone = p.alone[1:]
		p.mu.Unlock()
		p.sendAlone(next.rec, next.acked)
	}
}

// sendAlone produces r alone until Kafka takes it: each MessageTooLarge
// answer cuts it shorter (to the topic's known limit, else in half),
// flagged truncated; other errors are retried after a backoff, until the
// producer closes.
func (p *producer) sendAlone(r *kgo.Record, acked func()) {
	for tries := 0; ; tries++ {
		client, err := p.loneClient()
		if err == nil {
			err = client.ProduceSync(context.Background(), r).FirstErr()
		}
		switch {
		case err == nil:
			p.watch.done()
			p.watch.wrote()
			acked()
			return
		case p.isClosed() || errors.Is(err, kgo.ErrClientClosed):
			return
		case errors.Is(err, kerr.MessageTooLarge) && len(r.Value) > 0:
			r = p.cutShorter(r)
			continue
		}
		p.metrics.produceErrors.Inc()
		p.log.Warn("kafka did not accept a record produced alone; producing it again", zap.String("topic", r.Topic), zap.Error(err))
		time.Sleep(produceRetry.Delay(tries))
	}
}

// loneClient is the client that produces records alone, made when first
// needed.
func (p *producer) loneClient() (*kgo.Client, error) {
	p.mu.Lock()
	c, closed := p.aloneClient, p.closed
	p.mu.Unlock()
	if closed {
		return nil, kgo.ErrClientClosed
	}
	if c != nil {
		return c, nil
	}
	// Made outside p.mu, which the batch limit it reads takes; only the
	// drainAlone goroutine makes it.
	c, err := kgo.NewClient(p.aloneOpts...)
	if err != nil {
		return nil, fmt.Errorf("kafka client: %w", err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		c.Close()
		return nil, kgo.ErrClientClosed
	}
	p.aloneClient = c
	return c, nil
}

func (p *producer) isClosed() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.closed
}

// cutShorter returns r, which Kafka refused as too large in a batch of its
// own, cut to the topic's known limit, or in half when by that limit it
// fits (the limit could not be read, or was lowered since), flagged
// truncated.
func (p *producer) cutShorter(r *kgo.Record) *kgo.Record {
	limit := int(p.batchLimit(r.Topic))
	cut, had, halved := event.CutShorter(r, limit)
	why := fmt.Sprint(limit)
	if halved {
		why = "unknown to the shipper or lowered since: the topic refused the record alone"
	}
	p.cutLogged(r, cut, had, why)
	return cut
}

func (p *producer) cutToFit(r *kgo.Record) (*kgo.Record, bool) {
	limit := int(p.batchLimit(r.Topic))
	cut, wasCut, ok := event.CutToFit(r, limit)
	if !ok {
		return nil, false
	}
	p.cutLogged(r, cut, wasCut, fmt.Sprint(limit))
	return cut, true
}

// cutLogged counts and logs r cut to cut; had is whether r was flagged
// truncated already (and counted).
func (p *producer) cutLogged(r, cut *kgo.Record, had bool, limit string) {
	var typ, path, offset string
	for _, h := range r.Headers {
		switch h.Key {
		case event.HeaderType:
			typ = string(h.Value)
		case event.HeaderPath:
			path = string(h.Value)
		case event.HeaderOffset:
			offset = string(h.Value)
		}
	}
	if !had { // a line cut at max_line_bytes, or cut already, is counted already
		p.metrics.linesCut.WithLabelValues(typ).Inc()
	}
	p.log.Warn("line too large for the topic's max.message.bytes; cut to fit and flagged truncated",
		zap.String("topic", r.Topic), zap.String("max.message.bytes", limit), zap.String("path", path), zap.String("offset", offset),
		zap.Int("bytes", len(r.Value)), zap.Int("cut_to", len(cut.Value)))
}

// retry produces a record Kafka did not accept again, after a backoff,
// until it is acknowledged or the producer closes.
func (p *producer) retry(client *kgo.Client, r *kgo.Record, acked func(), err error, tries int) {
	p.mu.Lock()
	closed := p.closed
	p.mu.Unlock()
	if closed || errors.Is(err, kgo.ErrClientClosed) {
		return
	}
	p.metrics.produceErrors.Inc()
	p.log.Warn("kafka did not accept a record; producing it again", zap.String("topic", r.Topic), zap.Error(err))
	time.AfterFunc(produceRetry.Delay(tries), func() {
		again := &kgo.Record{Topic: r.Topic, Key: r.Key, Value: r.Value, Headers: r.Headers, Timestamp: r.Timestamp}
		p.produce(client, again, acked, tries)
	})
}

// Close waits up to ctx's deadline for in-flight records, then closes.
func (p *producer) Close(ctx context.Context) error {
	errs := make([]error, len(p.clients))
	var wg sync.WaitGroup
	for i, c := range p.clients {
		wg.Go(func() { errs[i] = c.Flush(ctx) })
	}
	wg.Wait()
	p.mu.Lock()
	p.closed = true
	alone := p.aloneClient
	p.mu.Unlock()
	for _, c := range p.clients {
		c.Close()
	}
	if alone != nil {
		alone.Close()
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("flushing records to kafka: %w", err)
	}
	return nil
}
