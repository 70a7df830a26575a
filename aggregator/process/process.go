// Package process is the aggregator's middle stage: each Kafka record
// becomes the document Elasticsearch will store, and the index it goes to.
// Documents decodes the record (internal/event), parses its line by its
// document type (parser), enriches it (GeoIP), runs the type's pipeline,
// maps it to ECS, fits it to the index template and encodes it
// (deliver.AppendDocument) into a deliver.Item; it also gives a document
// Elasticsearch rejected for a mapping conflict its second chance.
package process

import (
	"context"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap"

	"github.com/sluicelog/sluice/aggregator/deliver"
	"github.com/sluicelog/sluice/aggregator/pipeline"
	"github.com/sluicelog/sluice/geoip"
	"github.com/sluicelog/sluice/internal/budget"
	"github.com/sluicelog/sluice/internal/event"
	"github.com/sluicelog/sluice/internal/tap"
	"github.com/sluicelog/sluice/internal/template"
	"github.com/sluicelog/sluice/parser"
)

// Config is what the document building reads of the aggregator's
// configuration.
type Config struct {
	Parsers ParsersConfig
	// Elasticsearch gives the index name template, accept_time,
	// data_stream and dedupe.
	Elasticsearch deliver.ElasticsearchConfig
	GeoIP         geoip.Config
	Pipelines     pipeline.Config
}

// SetDefaults fills unset values, as the aggregator's configuration does.
func (c *Config) SetDefaults() {
	c.Parsers.SetDefaults()
	c.Elasticsearch.SetDefaults()
	c.GeoIP.SetDefaults()
	c.Pipelines.SetDefaults()
}

// Documents turns records into the items to deliver, one at a time: the
// poll loop's, not safe for concurrent use (its decoder), except
// RetryConflicts.
type Documents struct {
	builder // parsers, index template, pipelines, GeoIP
	decoder event.Decoder
	metrics *metrics
	// suspect says which records may already be indexed (nil: none);
	// dedupe is elasticsearch.dedupe.
	suspect func(*kgo.Record, *event.Event) bool
	dedupe  bool
}

type metrics struct {
	parseFailures   *prometheus.CounterVec
	malformed       prometheus.Counter
	conflictRetries prometheus.Counter
}

// knownTypes are the document types the parsers read (the shipper's
// KnownTypes): their parse failures are counted from 0.
var knownTypes = []string{"service", "nginx", "container"}

// New prepares the document building of a validated cfg; its metrics go
// to reg. suspect says which records may have been indexed before, to be
// looked up before they are written (nil: none).
func New(cfg Config, suspect func(*kgo.Record, *event.Event) bool, reg prometheus.Registerer, log *zap.Logger) (*Documents, error) {
	b, err := newBuilder(cfg, reg, log)
	if err != nil {
		return nil, err
	}
	m := &metrics{
		parseFailures:   prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sluice_aggregator_parse_failures_total", Help: "Lines indexed raw because their parser could not read them, by document type."}, []string{"type"}),
		malformed:       prometheus.NewCounter(prometheus.CounterOpts{Name: "sluice_aggregator_malformed_records_total", Help: "Records that were not Sluice events; sent to the dead-letter topic."}),
		conflictRetries: prometheus.NewCounter(prometheus.CounterOpts{Name: "sluice_aggregator_mapping_conflict_retries_total", Help: "Documents sent again with a conflicting field moved aside."}),
	}
	reg.MustRegister(m.parseFailures, m.malformed, m.conflictRetries)
	for _, t := range knownTypes {
		m.parseFailures.WithLabelValues(t)
	}
	return &Documents{builder: b, metrics: m, suspect: suspect, dedupe: *cfg.Elasticsearch.Dedupe}, nil
}

// Index is the index name template.
func (d *Documents) Index() *template.Template { return d.index }

// Start starts the GeoIP reloader, until ctx ends.
func (d *Documents) Start(ctx context.Context) {
	if d.geo != nil {
		go d.geo.Run(ctx)
	}
}

// Item builds rec's document into the item to deliver. keep is false for a
// record whose document a pipeline dropped (not indexed; its offset is
// committed with its batch), and for one that cannot become a document,
// returned as dead.
func (d *Documents) Item(rec *kgo.Record) (it deliver.Item, keep bool, dead *deliver.DeadLetter) {
	ev, err := d.decoder.Decode(rec)
	if err != nil {
		d.metrics.malformed.Inc()
		return it, false, &deliver.DeadLetter{Record: rec, Status: 0, Reason: err.Error()}
	}
	doc := docPool.Get().(*parser.Doc)
	parsed, keep, _, index := d.build(&ev, doc)
	if !parsed {
		d.metrics.parseFailures.WithLabelValues(ev.Type).Inc()
	}
	if !keep {
		recycle(doc)
		return it, false, nil
	}
	src, err := deliver.AppendDocument(make([]byte, 0, len(ev.Line)*2+512), doc)
	if err != nil {
		recycle(doc)
		return it, false, &deliver.DeadLetter{Record: rec, Reason: "encoding document: " + err.Error()}
	}
	// The document is done with once encoded: a conflict retry rebuilds
	// it from its JSON, so in-flight work holds only the bytes.
	tap.Document(&ev, index, src)
	it = deliver.Item{Index: index, ID: ev.DocID(), Source: src, Record: rec,
		RecBytes: RecordSize(rec), Read: ev.ReadTime, Lookup: d.lookup(rec, &ev, doc, index)}
	recycle(doc)
	return it, true, nil
}

// RecordSize is what a record weighs against the flow's budget: the one
// record size of budget.Size.
func RecordSize(r *kgo.Record) int { return int(budget.Size(r)) }
