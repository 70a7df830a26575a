package aggregator

import (
	"strings"
	"sync"
	"time"

	"github.com/sluicelog/sluice/internal/event"
	"github.com/sluicelog/sluice/internal/template"
	"github.com/sluicelog/sluice/parser"
)

// parsers turns an event's raw line into a document, by document type.
// Not safe for concurrent use.
type parsers struct {
	nginx *parser.Nginx

	// The read time of the last event and its text: the lines of one read
	// burst share it.
	lastRead    time.Time
	lastCreated any
}

// created returns t as the document's event.created.
func (p *parsers) created(t time.Time) any {
	if p.lastCreated == nil || !t.Equal(p.lastRead) {
		p.lastRead, p.lastCreated = t, t.UTC().Format(time.RFC3339Nano)
	}
	return p.lastCreated
}

func newParsers(cfg ParsersConfig) (*parsers, error) {
	format := cfg.NginxFormat
	if format == "" {
		format = parser.DefaultNginxFormat
	}
	n, err := parser.CompileNginx(format)
	if err != nil {
		return nil, err
	}
	return &parsers{nginx: n}, nil
}

// fieldAliases maps the shipper's static and path fields to ECS names.
var fieldAliases = map[string]string{
	"service":     "service.name",
	"environment": "service.environment",
	"customer":    "organization.name",
}

// newDoc makes an empty document with room for an nginx document with GeoIP
// (about 32 fields).
func newDoc() parser.Doc { return make(parser.Doc, 40) }

// docPool recycles documents between batches: building a document's map is
// a good part of the garbage per record.
var docPool = sync.Pool{New: func() any { return newDoc() }}

// recycle clears doc and keeps it for reuse; nothing may use it afterwards.
func recycle(doc parser.Doc) {
	if doc != nil {
		clear(doc)
		docPool.Put(doc)
	}
}

// fill builds the Elasticsearch document for ev into the empty doc, and
// reports whether the line parsed. A line its parser cannot read is still
// indexed: raw, with error.message set.
func (p *parsers) fill(ev *event.Event, doc parser.Doc) (parsed bool) {
	var err error
	switch ev.Type {
	case "service":
		err = parser.ParseService(ev.Line, doc)
	case "nginx":
		err = p.nginx.Parse(ev.Line, doc)
	default:
		doc["message"] = string(ev.Line)
	}
	if err != nil {
		clear(doc)
		parser.Fallback(ev.Line, err, doc)
	}
	for k, v := range ev.Fields {
		key, ok := fieldAliases[k]
		if !ok {
			key = k
			if !strings.Contains(k, ".") { // dotted names are already ECS
				key = "labels." + k
			}
		}
		if _, set := doc[key]; !set {
			doc[key] = v
		}
	}
	if _, ok := doc["@timestamp"]; !ok {
		at := ev.LogTime // the container runtime's time, else the read time
		if at.IsZero() {
			at = ev.ReadTime
		}
		doc["@timestamp"] = at.UTC().Format(time.RFC3339Nano)
	}
	if ev.Stream != "" {
		doc["stream"] = ev.Stream
	}
	doc["event.dataset"] = ev.Type
	doc["event.created"] = p.created(ev.ReadTime)
	doc["host.name"] = ev.Node
	doc["log.file.path"] = ev.Path
	doc["log.offset"] = ev.Offset
	if len(ev.Flags) > 0 {
		doc["tags"] = ev.Flags
	}
	return err == nil
}

// indexLookup resolves template fields for index names: the event's own
// fields first, then the document's ECS fields.
func indexLookup(ev *event.Event, doc parser.Doc) func(string) (string, bool) {
	return func(name string) (string, bool) {
		if v, ok := ev.Field(name); ok && v != "" {
			return v, true
		}
		key := name
		if alias, ok := fieldAliases[name]; ok {
			key = alias
		}
		if v, ok := doc[key].(string); ok {
			return v, true
		}
		return "", false
	}
}

// docTime is the event's own time, for date-suffixed index names: the
// document's @timestamp, never the time of indexing, so that a re-delivered
// line lands in the same index.
func docTime(doc parser.Doc) time.Time {
	if s, ok := doc["@timestamp"].(string); ok {
		if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
			return t
		}
	}
	return time.Time{}
}

// indexName renders the index for a document.
func indexName(t *template.Template, ev *event.Event, doc parser.Doc) string {
	var at time.Time
	if t.HasDate() {
		at = docTime(doc)
	}
	return template.IndexName(t.Render(indexLookup(ev, doc), at, template.IndexValue))
}
