package process

import (
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/sluicelog/sluice/geoip"
	"github.com/sluicelog/sluice/internal/event"
	"github.com/sluicelog/sluice/internal/template"
	"github.com/sluicelog/sluice/parser"
	"github.com/sluicelog/sluice/useragent"
)

// builder turns events into documents and index names, the same way for the
// aggregator and for `sluice test`: the type's parser, GeoIP, the type's
// pipeline, the index template.
type builder struct {
	parsers *parsers
	index   *template.Template
	names   *indexNames // index names from index
	pipes   *pipelines
	geo     *geoip.Enricher     // nil without a database
	clients *geoip.Clients      // restores the client when geo is nil
	agents  *useragent.Enricher // nil: parsers.user_agent is false
	fit     *fitter
	// window routes documents whose time is out of range, for an index
	// with a date.
	window timeWindow
	// dataStream adds data_stream.* from the index name: elasticsearch.data_stream.
	dataStream bool
}

// newBuilder prepares a builder for a validated cfg; its pipeline and GeoIP
// metrics go to reg.
func newBuilder(cfg Config, reg prometheus.Registerer, log *zap.Logger) (builder, error) {
	ps, err := newParsers(cfg.Parsers)
	if err != nil {
		return builder{}, err
	}
	idx, err := template.Parse(cfg.Elasticsearch.Index)
	if err != nil {
		return builder{}, fmt.Errorf("elasticsearch.index: %w", err)
	}
	pipes, err := newPipelines(cfg.Pipelines, idx, reg)
	if err != nil {
		return builder{}, err
	}
	accept := cfg.Elasticsearch.AcceptTime
	b := builder{parsers: ps, index: idx, names: newIndexNames(idx), pipes: pipes, fit: new(fitter),
		window: timeWindow{past: accept.Past, future: accept.Future, now: time.Now}}
	b.dataStream = cfg.Elasticsearch.DataStream
	ps.watch = newFormatWatch(log)
	if cfg.GeoIP.Enabled() {
		if b.geo, err = geoip.Open(cfg.GeoIP, reg, log); err != nil {
			return builder{}, err
		}
	} else if b.clients, err = geoip.NewClients(cfg.GeoIP.TrustedProxies); err != nil {
		return builder{}, err
	}
	if cfg.Parsers.userAgent() {
		if b.agents, err = useragent.New(0, reg); err != nil {
			return builder{}, err
		}
	}
	return b, nil
}

// build fills the empty doc from ev, the type's parser first and, last,
// fitting it to the template, so that what it builds is what Elasticsearch stores. parsed reports whether the type's
// parser read the line (if not, doc holds it raw and flagged); keep is false
// when the pipeline step droppedBy dropped the document. index is the
// kept document's index, rendered once: with data streams before the
// fitting, as data_stream.* are set from it.
func (b *builder) build(ev *event.Event, doc *parser.Doc) (parsed, keep bool, droppedBy, index string) {
	parsed = b.parsers.fill(ev, doc)
	if b.geo != nil {
		b.geo.Enrich(doc)
	} else {
		b.clients.Restore(doc)
	}
	if b.agents != nil {
		b.agents.Enrich(doc)
	}
	keep, droppedBy = b.pipes.apply(ev, doc)
	if keep && b.index.HasDate() {
		b.window.check(ev, doc)
	}
	if !keep {
		return parsed, false, droppedBy, ""
	}
	if b.dataStream {
		index = b.names.name(ev, doc)
		setDataStream(doc, index)
	}
	b.fit.fit(doc)
	if index == "" {
		index = b.names.name(ev, doc)
	}
	return parsed, true, "", index
}
