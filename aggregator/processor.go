package aggregator

import (
	"context"
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap"

	"github.com/sluicelog/sluice/internal/telemetry"
)

// Processor is the aggregator's record processing without Kafka: decode,
// parse, enrich, route, deliver each document to its sink, and dead-letter
// what cannot be delivered, exactly as `sluice aggregate` does. `sluice run`
// hands it batches from its in-process queue.
type Processor struct {
	a  *Aggregator
	es bool // documents go to Elasticsearch, not to a Sink
}

// ProcessorOptions say where a Processor delivers.
type ProcessorOptions struct {
	// Sink receives the documents; nil means Elasticsearch, as configured.
	Sink *Sink
	// DeadLetters receives records that cannot be delivered; required,
	// since there is no dead-letter topic.
	DeadLetters *DeadLetterFile
}

// NewProcessor validates cfg (its kafka section is unused) and prepares a
// Processor; call Prepare before the first Process.
func NewProcessor(cfg Config, opts ProcessorOptions, reg prometheus.Registerer, log *zap.Logger) (*Processor, error) {
	if opts.DeadLetters == nil {
		return nil, errors.New("aggregator: a Processor needs a dead-letter file")
	}
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	a, err := newPipeline(cfg, reg, log)
	if err != nil {
		return nil, err
	}
	p := &Processor{a: a, es: opts.Sink == nil}
	if opts.Sink != nil {
		a.sink = opts.Sink
		a.sinkWorkers = 1 // documents are written in order
	}
	a.deadFile = opts.DeadLetters
	return p, nil
}

// toElasticsearch reports whether documents go to Elasticsearch.
func (p *Processor) toElasticsearch() bool { return p.es }

// Prepare starts the GeoIP reloader (until ctx ends) and, when documents go
// to Elasticsearch, the watch on its acceptance and installs the index
// template, retrying until it can.
func (p *Processor) Prepare(ctx context.Context) error {
	a := p.a
	if a.geo != nil {
		go a.geo.Run(ctx)
	}
	if p.toElasticsearch() {
		go a.watchDelivery(ctx, time.Second) // elasticsearch_accepting
	}
	if p.toElasticsearch() && *a.cfg.Elasticsearch.Template {
		return retry(ctx, a.log, "installing index template", func() error {
			_, err := installTemplate(ctx, a.es, a.cfg.Elasticsearch, a.index)
			return err
		})
	}
	return nil
}

// Process delivers every record of a batch to the sink or the dead-letter
// file; when it returns nil, every record is handled and may be
// acknowledged. It retries until then or until ctx ends.
func (p *Processor) Process(ctx context.Context, records []*kgo.Record) error {
	return p.a.process(ctx, records)
}

// AddChecks registers the readiness check of Elasticsearch, when documents
// go there.
func (p *Processor) AddChecks(srv *telemetry.Server) {
	if p.toElasticsearch() {
		srv.AddCheck("elasticsearch", p.a.esReady)
		srv.AddCheck("elasticsearch_bulk", p.a.bulkRefused)
	}
}

// Accepting is Aggregator.Accepting, for a progress watchdog of sluice run.
func (p *Processor) Accepting() Acceptance { return p.a.Accepting() }
