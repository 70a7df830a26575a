package aggregator

import (
	"context"
	"fmt"
	"time"

	"github.com/elastic/go-elasticsearch/v8"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap"

	"github.com/sluicelog/sluice/aggregator/consume"
	"github.com/sluicelog/sluice/aggregator/deliver"
	"github.com/sluicelog/sluice/aggregator/process"
	"github.com/sluicelog/sluice/internal/backoff"
	"github.com/sluicelog/sluice/internal/telemetry"
)

// Headers added to dead-lettered records.
const (
	HeaderDLQStatus = deliver.HeaderDLQStatus
	HeaderDLQReason = deliver.HeaderDLQReason
	HeaderDLQTopic  = deliver.HeaderDLQTopic
	HeaderDLQIndex  = deliver.HeaderDLQIndex
)

// Aggregator consumes Sluice events from Kafka into Elasticsearch: the
// three stages, wired.
type Aggregator struct {
	cfg      Config
	log      *zap.Logger
	client   *kgo.Client
	es       *elasticsearch.Client
	docs     *process.Documents
	bulk     *deliver.Bulk
	delivery *deliver.Metrics
	dead     *deliver.Topic
	loop     *consume.Loop
	suspects *consume.Suspects
	// esReady is deliver.Ping, asked at most once a second: for /readyz
	// and the elasticsearch_accepting gauge.
	esReady telemetry.Check
}

// New validates cfg and prepares an aggregator; Run starts it.
func New(cfg Config, reg prometheus.Registerer, log *zap.Logger) (*Aggregator, error) {
	cfg.SetDefaults()
	return newAggregator(cfg, reg, log, true)
}

// newAggregator builds an aggregator whose Kafka client consumes as a
// group member (for Run) or as consume says (a plain reader, for Replay).
func newAggregator(cfg Config, reg prometheus.Registerer, log *zap.Logger, group bool, consume ...kgo.Opt) (*Aggregator, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	log = log.Named("aggregator")
	security, err := cfg.Kafka.Security.Opts(log)
	if err != nil {
		return nil, err
	}
	dead := deliver.NewTopic(cfg.Kafka.DeadLetterTopic, log.Named("deliver"))
	a, err := newStages(cfg, reg, log, dead)
	if err != nil {
		return nil, err
	}
	a.dead = dead
	if group {
		consume = append(a.loop.GroupOpts(a.suspects), consume...)
	}
	// A fetch is compressed: several times its size in records, held
	// until polled; at most two fetches are buffered.
	fetch := int32(cfg.Memory().FetchBytes)
	client, err := kgo.NewClient(append(append(security,
		kgo.SeedBrokers(cfg.Kafka.Brokers...),
		kgo.FetchMaxBytes(fetch), kgo.FetchMaxPartitionBytes(fetch), kgo.MaxConcurrentFetches(2),
		a.dead.ClientOpt(),
	), consume...)...)
	if err != nil {
		return nil, fmt.Errorf("kafka client: %w", err)
	}
	a.client = client
	a.dead.Attach(client)
	return a, nil
}

// newStages builds the stages that turn records into delivered
// documents: parsers, index template, Elasticsearch client and GeoIP,
// without a Kafka client; what cannot be delivered goes to dead. cfg is
// validated.
func newStages(cfg Config, reg prometheus.Registerer, log *zap.Logger, dead deliver.DeadLetters) (*Aggregator, error) {
	es, err := deliver.NewESClient(cfg.Elasticsearch, log)
	if err != nil {
		return nil, fmt.Errorf("elasticsearch client: %w", err)
	}
	suspects := consume.NewSuspects(log.Named("consume"))
	docs, err := process.New(cfg.ProcessConfig(), suspects.Suspect, reg, log.Named("process"))
	if err != nil {
		return nil, err
	}
	every := telemetry.NewEvery(time.Minute)
	dlog := log.Named("deliver")
	delivery := deliver.NewMetrics(reg)
	bulk := deliver.NewBulk(es, cfg.Elasticsearch, delivery, dlog, every)
	loop := consume.New(cfg.ConsumeConfig(), consume.Stages{
		Documents: docs, Sink: deliver.NewLookup(bulk, reg, dlog), Workers: cfg.Elasticsearch.Workers,
		DeadLetters: dead, Retried: delivery.Retried,
	}, reg, log.Named("consume"), every)
	a := &Aggregator{cfg: cfg, log: log, es: es, docs: docs, bulk: bulk, delivery: delivery, loop: loop, suspects: suspects}
	a.esReady = telemetry.Cached(time.Second, func(ctx context.Context) error { return deliver.Ping(ctx, es) })
	return a, nil
}

// AddChecks registers the aggregator's readiness checks.
func (a *Aggregator) AddChecks(srv *telemetry.Server) {
	srv.AddCheck("kafka", telemetry.Cached(time.Second, func(ctx context.Context) error { return a.client.Ping(ctx) }))
	srv.AddCheck("elasticsearch", a.esReady)
	srv.AddCheck("progress", a.loop.Progress().Check)
	srv.AddCheck("elasticsearch_bulk", a.bulkRefused)
}

// bulkRefused fails while Elasticsearch refuses bulk requests outright
// (400, 401, 403): the cluster may be green and nothing indexed.
func (a *Aggregator) bulkRefused(context.Context) error {
	_, refused := a.bulk.Health()
	return refused
}

// Acceptance is what the aggregator knows of Elasticsearch taking its
// documents, for a progress watchdog.
type Acceptance struct {
	// LastDelivered is when Elasticsearch last accepted a document (zero:
	// never since the start).
	LastDelivered time.Time
	// Waiting is the documents waiting to be sent again after a passing
	// failure (429, 5xx, a cluster block, a failed request), and
	// FailingIndices the indices they are for.
	Waiting        int
	FailingIndices []string
	// Refused is Elasticsearch's refusal of the last bulk request (400,
	// 401, 403), nil when it took it.
	Refused error
}

// Accepting reports whether Elasticsearch takes the documents: a watchdog
// may call it at any time; with Waiting > 0 and LastDelivered old,
// Elasticsearch is not accepting.
func (a *Aggregator) Accepting() Acceptance {
	var acc Acceptance
	acc.LastDelivered, acc.Refused = a.bulk.Health()
	acc.Waiting, acc.FailingIndices = a.loop.Waiting()
	return acc
}

// Run consumes until ctx is done. When ctx ends (SIGTERM, SIGHUP), polling
// stops and what is in flight is delivered and committed, for up to
// shutdown_timeout; what is not by then is abandoned uncommitted, logged,
// and consumed again by whoever owns the partition next.
func (a *Aggregator) Run(ctx context.Context) error {
	defer func() {
		// A rebalance blocked by the last poll would hold up leaving the
		// group: what is in flight is committed or abandoned by now.
		a.client.AllowRebalance()
		a.client.Close()
		a.log.Info("aggregator stopped")
	}()
	a.log.Info("aggregator starting", zap.Strings("topics", a.cfg.Kafka.Topics), zap.String("group", a.cfg.Kafka.Group),
		zap.Strings("elasticsearch", deliver.RedactURLs(a.cfg.Elasticsearch.Addresses)), zap.String("index", a.cfg.Elasticsearch.Index),
		zap.Bool("kafka_tls", a.cfg.Kafka.Security.TLS.Enabled), zap.String("kafka_sasl", a.cfg.Kafka.Security.SASL.Mechanism))
	// Before prepare, which waits while Elasticsearch is down; until Run
	// returns, which closes the client.
	observing, stopObserving := context.WithCancel(ctx)
	defer stopObserving()
	go a.observe(observing)
	if err := a.prepare(ctx); err != nil {
		return err
	}
	return a.loop.Consume(ctx, a.client)
}

// observe runs, until ctx ends, what tells from outside whether the
// aggregator is stuck: the lag timer and the watch on Elasticsearch's
// acceptance.
func (a *Aggregator) observe(ctx context.Context) {
	go a.loop.WatchLag(ctx, a.client)
	a.delivery.WatchDelivery(ctx, time.Second, a.esReady, a.loop.Progress().Advance)
}

// prepare fails on TLS or authentication settings Kafka or Elasticsearch
// refuse, starts the GeoIP reloader, installs the index template and
// creates the dead-letter topic.
func (a *Aggregator) prepare(ctx context.Context) error {
	if err := a.cfg.Kafka.Security.Check(ctx, a.client, a.log); err != nil {
		return err
	}
	if err := deliver.CheckES(ctx, a.es, a.log); err != nil {
		return err
	}
	a.docs.Start(ctx)
	if err := a.installTemplate(ctx); err != nil {
		return err
	}
	return backoff.Steady().Retry(ctx, a.log, "creating dead-letter topic", func() error { return a.dead.Prepare(ctx) })
}

// installTemplate installs the index template, unless
// elasticsearch.template is false, retrying until it can.
func (a *Aggregator) installTemplate(ctx context.Context) error {
	if !*a.cfg.Elasticsearch.Template {
		return nil
	}
	return backoff.Steady().Retry(ctx, a.log, "installing index template", func() error {
		_, err := deliver.InstallTemplateOn(ctx, a.es, a.cfg.Elasticsearch, a.docs.Index())
		return err
	})
}
