package runner

import (
	"context"
	"time"

	"github.com/elastic/go-elasticsearch/v8"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap"

	"github.com/sluicelog/sluice/aggregator"
	"github.com/sluicelog/sluice/aggregator/consume"
	"github.com/sluicelog/sluice/aggregator/deliver"
	"github.com/sluicelog/sluice/aggregator/process"
	"github.com/sluicelog/sluice/internal/backoff"
	"github.com/sluicelog/sluice/internal/telemetry"
)

// stages are the aggregator's stages without Kafka: decode, parse, enrich,
// route, deliver each document to the output, and dead-letter what cannot
// be delivered, exactly as `sluice aggregate` does. The runner hands them
// batches from its in-process queue.
type stages struct {
	cfg      aggregator.Config
	log      *zap.Logger
	es       *elasticsearch.Client
	bulk     *deliver.Bulk
	delivery *deliver.Metrics
	docs     *process.Documents
	loop     *consume.Loop
	// toES: documents go to Elasticsearch, not to an NDJSON output.
	toES    bool
	esReady telemetry.Check
}

// newStages validates cfg (its kafka section is unused) and prepares the
// stages: documents go to out, or to Elasticsearch when out is nil; records
// that cannot be delivered to dead, as there is no dead-letter topic. Call
// prepare before the first process.
func newStages(cfg aggregator.Config, out *NDJSON, dead *DeadLetterFile, reg prometheus.Registerer, log *zap.Logger) (*stages, error) {
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	es, err := deliver.NewESClient(cfg.Elasticsearch, log)
	if err != nil {
		return nil, err
	}
	// Lines the shipper read again after a restart (flagged resent) may be
	// indexed already: looked up before they are written.
	suspects := consume.NewSuspects(log.Named("consume"))
	docs, err := process.New(cfg.ProcessConfig(), suspects.Suspect, reg, log.Named("process"))
	if err != nil {
		return nil, err
	}
	every := telemetry.NewEvery(time.Minute)
	dlog := log.Named("deliver")
	delivery := deliver.NewMetrics(reg)
	bulk := deliver.NewBulk(es, cfg.Elasticsearch, delivery, dlog, every)
	var sink deliver.Sink = deliver.NewLookup(bulk, reg, dlog)
	workers := cfg.Elasticsearch.Workers
	if out != nil {
		sink, workers = out, 1 // documents are written in order
	}
	loop := consume.New(cfg.ConsumeConfig(), consume.Stages{
		Documents: docs, Sink: sink, Workers: workers, DeadLetters: dead, Retried: delivery.Retried,
	}, reg, log.Named("consume"), every)
	s := &stages{cfg: cfg, log: log, es: es, bulk: bulk, delivery: delivery, docs: docs, loop: loop, toES: out == nil}
	s.esReady = telemetry.Cached(time.Second, func(ctx context.Context) error { return deliver.Ping(ctx, es) })
	return s, nil
}

// prepare starts the GeoIP reloader (until ctx ends) and, when documents go
// to Elasticsearch, the watch on its acceptance and installs the index
// template, retrying until it can.
func (s *stages) prepare(ctx context.Context) error {
	s.docs.Start(ctx)
	if s.toES {
		go s.delivery.WatchDelivery(ctx, time.Second, s.esReady, s.loop.Progress().Advance) // elasticsearch_accepting
	}
	if s.toES && *s.cfg.Elasticsearch.Template {
		return backoff.Steady().Retry(ctx, s.log, "installing index template", func() error {
			_, err := deliver.InstallTemplateOn(ctx, s.es, s.cfg.Elasticsearch, s.docs.Index())
			return err
		})
	}
	return nil
}

// process delivers every record of a batch to the output or the
// dead-letter file; when it returns nil, every record is handled and may
// be acknowledged. It retries until then or until ctx ends.
func (s *stages) process(ctx context.Context, records []*kgo.Record) error {
	return s.loop.Process(ctx, records)
}

// addChecks registers the readiness check of Elasticsearch, when documents
// go there.
func (s *stages) addChecks(srv *telemetry.Server) {
	if s.toES {
		srv.AddCheck("elasticsearch", s.esReady)
		srv.AddCheck("elasticsearch_bulk", func(context.Context) error {
			_, refused := s.bulk.Health()
			return refused
		})
	}
}
