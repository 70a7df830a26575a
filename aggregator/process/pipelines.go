package process

import (
	"maps"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluicelog/sluice/aggregator/pipeline"
	"github.com/sluicelog/sluice/internal/event"
	"github.com/sluicelog/sluice/internal/template"
	"github.com/sluicelog/sluice/parser"
)

// pipelines applies the configured pipeline of each document type.
type pipelines struct {
	byType  map[string]*typePipeline
	dropped *prometheus.CounterVec
}

type typePipeline struct {
	p *pipeline.Pipeline
	// routed are the index template's fields the pipeline may rewrite.
	routed []routedField
}

// routedField is an index template field ({service}) and the document field
// it is read from (service.name).
type routedField struct {
	name string
	key  parser.Key
}

// newPipelines compiles cfg.Pipelines; index is the index name template.
func newPipelines(cfg pipeline.Config, index *template.Template, reg prometheus.Registerer) (*pipelines, error) {
	compiled, err := cfg.Compile("pipelines")
	if err != nil {
		return nil, err
	}
	ps := &pipelines{
		byType: make(map[string]*typePipeline, len(compiled)),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_aggregator_pipeline_dropped_total",
			Help: "Documents a pipeline's drop step removed (not indexed, their offsets committed), by document type and step name.",
		}, []string{"type", "rule"}),
	}
	reg.MustRegister(ps.dropped)
	for typ, p := range compiled {
		tp := &typePipeline{p: p}
		for _, rule := range p.Drops() {
			ps.dropped.WithLabelValues(typ, rule) // at 0 from the start, for rate()
		}
		for _, name := range index.Fields() {
			key := name
			if alias, ok := fieldAliases[name]; ok {
				key = alias
			}
			for _, w := range p.Writes() {
				if w == key {
					tp.routed = append(tp.routed, routedField{name: name, key: parser.NewKey(key)})
				}
			}
		}
		ps.byType[typ] = tp
	}
	return ps, nil
}

// apply runs ev's type pipeline over doc. keep is false when a drop step
// matched; droppedBy names it. An index template field the pipeline changed
// in the document (set service.name) takes the place of the event's own
// field (from the shipper's path or static fields), so that the document is
// routed by its new value.
func (ps *pipelines) apply(ev *event.Event, doc *parser.Doc) (keep bool, droppedBy string) {
	tp := ps.byType[ev.Type]
	if tp == nil {
		return true, ""
	}
	var before [4]string
	for i, r := range tp.routed[:min(len(tp.routed), len(before))] {
		v, _ := doc.GetKey(r.key)
		before[i], _ = v.(string)
	}
	keep, droppedBy = tp.p.Apply(doc)
	if !keep {
		ps.dropped.WithLabelValues(ev.Type, droppedBy).Inc()
		return false, droppedBy
	}
	for i, r := range tp.routed {
		v, _ := doc.GetKey(r.key)
		after, _ := v.(string)
		if i < len(before) && after == before[i] {
			continue
		}
		if _, ok := ev.Fields[r.name]; !ok {
			continue // the index name is read from the document already
		}
		fields := maps.Clone(ev.Fields)       // shared between events: never modified
		fields[r.name] = strings.Clone(after) // not a part of the record: the map may be kept (docFields)
		ev.Fields = fields
	}
	return true, ""
}
