package process

import (
	"fmt"
	"path"
	"reflect"
	"slices"
	"strings"
	"sync"
	"time"
	"unsafe"

	"github.com/sluicelog/sluice/aggregator/deliver"
	"github.com/sluicelog/sluice/internal/event"
	"github.com/sluicelog/sluice/internal/template"
	"github.com/sluicelog/sluice/parser"
)

// parsers turns an event's raw line into a document, by document type.
// Not safe for concurrent use.
type parsers struct {
	nginx   *parser.Nginx
	format  string // parsers.nginx_format as configured
	service parser.Service
	// byPath are parsers.nginx_formats; lastFile is the last file looked
	// up, and lastNginx and lastFormat its parser and format.
	byPath               []pathFormat
	lastFile, lastFormat string
	lastNginx            *parser.Nginx
	// watch warns of files whose lines do not match the nginx format (nil:
	// not watched).
	watch *formatWatch

	// The read time of the last event and its text: the lines of one read
	// burst share it.
	lastRead    time.Time
	lastCreated any

	// The document values of the last event's type, node and path: the
	// lines of a file share them (the decoder shares the strings).
	typ, node, path boxed
	// fields holds the document fields of each event fields map seen (the
	// decoder shares one map between the lines of a file), by the map's
	// address; last is the last one used.
	fields map[uintptr]*docFields
	last   *docFields
	// hinted are the nginx formats of pods' hints (container.go).
	hinted map[string]*parser.Nginx
}

// maxDocFields bounds parsers.fields: past it, it starts over.
const maxDocFields = 4096

// docFields are an event fields map as document keys (ECS names) and
// values. Holding the map keeps its address from being reused for another
// while it is cached.
type docFields struct {
	of   map[string]string
	list []docField
}

// boxed is a string and the same string as a document value.
type boxed struct {
	s string
	v any
}

// value returns s as a document value, reusing b's if it is the same.
func (b *boxed) value(s string) any {
	if b.v == nil || b.s != s {
		b.s, b.v = s, s
	}
	return b.v
}

// docField is a document key and value.
type docField struct {
	key parser.Key
	v   any
}

// docFields returns an event's fields as document keys and values. Events'
// fields maps are never modified, so a map's fields are computed once.
func (p *parsers) docFields(fields map[string]string) []docField {
	addr := reflect.ValueOf(fields).Pointer()
	if p.last != nil && reflect.ValueOf(p.last.of).Pointer() == addr {
		return p.last.list
	}
	f, ok := p.fields[addr]
	if !ok {
		f = &docFields{of: fields, list: make([]docField, 0, len(fields))}
		for k, v := range fields {
			if steering(k) {
				continue
			}
			key, ok := fieldAliases[k]
			if !ok {
				key = k
				if !strings.Contains(k, ".") { // dotted names are already ECS
					key = "labels." + k
				}
			}
			f.list = append(f.list, docField{parser.NewKey(key), v})
		}
		if p.fields == nil || len(p.fields) >= maxDocFields {
			p.fields = make(map[uintptr]*docFields)
		}
		p.fields[addr] = f
	}
	p.last = f
	return f.list
}

// created returns t as the document's event.created.
func (p *parsers) created(t time.Time) any {
	if p.lastCreated == nil || !t.Equal(p.lastRead) {
		p.lastRead, p.lastCreated = t, t.UTC().Format(time.RFC3339Nano)
	}
	return p.lastCreated
}

func newParsers(cfg ParsersConfig) (*parsers, error) {
	n, err := CompileNginx(cfg.NginxFormat)
	if err != nil {
		return nil, err
	}
	rules := make([]parser.RouteRule, len(cfg.Routes))
	for i, r := range cfg.Routes {
		rules[i] = r.Rule()
	}
	if n.Routes, err = parser.NewRoutes(rules); err != nil {
		return nil, err
	}
	var byPath []pathFormat
	for _, f := range cfg.NginxFormats {
		pn, err := CompileNginx(f.Format)
		if err != nil {
			return nil, fmt.Errorf("parsers.nginx_formats %s: %w", f.Path, err)
		}
		pn.Routes = n.Routes
		byPath = append(byPath, pathFormat{glob: f.Path, format: f.Format, nginx: pn})
	}
	decode := cfg.DecodeJSONFields
	if decode == nil {
		decode = parser.DefaultDecodeJSON
	}
	return &parsers{nginx: n, format: cfg.NginxFormat, byPath: byPath,
		service: parser.Service{DecodeJSON: decode, MaxFields: cfg.MaxFields}}, nil
}

// CompileNginx compiles a parsers.nginx_format value: a log_format string
// or a name ("" is the default).
func CompileNginx(format string) (*parser.Nginx, error) {
	if format == "" {
		format = parser.DefaultNginxFormat
	} else if named, ok := parser.NginxFormat(format); ok {
		format = named
	}
	return parser.CompileNginx(format)
}

// pathFormat is an entry of parsers.nginx_formats.
type pathFormat struct {
	glob, format string
	nginx        *parser.Nginx
}

// nginxFor returns the nginx parser of a file, and its format as
// configured.
func (p *parsers) nginxFor(file string) (*parser.Nginx, string) {
	if len(p.byPath) == 0 {
		return p.nginx, p.format
	}
	if p.lastNginx != nil && file == p.lastFile {
		return p.lastNginx, p.lastFormat
	}
	n, format := p.nginx, p.format
	for _, f := range p.byPath {
		if ok, _ := path.Match(f.glob, file); ok {
			n, format = f.nginx, f.format
			break
		}
	}
	p.lastFile, p.lastNginx, p.lastFormat = strings.Clone(file), n, format
	return n, format
}

// fieldAliases maps the shipper's static and path fields to ECS names.
var fieldAliases = map[string]string{
	"service":     "service.name",
	"environment": "service.environment",
	"customer":    "organization.name",
}

// newDoc makes an empty document with room for an nginx document with GeoIP
// (about 32 fields).
func newDoc() *parser.Doc { return parser.NewDoc(40) }

// docPool recycles documents between batches: building a document is a
// good part of the garbage per record.
var docPool = sync.Pool{New: func() any { return newDoc() }}

// recycle clears doc and keeps it for reuse; nothing may use it afterwards.
func recycle(doc *parser.Doc) {
	if doc != nil {
		doc.Reset()
		docPool.Put(doc)
	}
}

// Keys of the fields fill sets.
var (
	keyTimestamp    = parser.NewKey("@timestamp")
	keyEventDataset = parser.NewKey("event.dataset")
	keyEventCreated = parser.NewKey("event.created")
	keyHostName     = parser.NewKey("host.name")
	keyLogFilePath  = parser.NewKey("log.file.path")
	keyLogOffset    = parser.NewKey("log.offset")
)

// fill builds the Elasticsearch document for ev into the empty doc, and
// reports whether the line parsed. A line its parser cannot read is still
// indexed: raw, with error.message set.
func (p *parsers) fill(ev *event.Event, doc *parser.Doc) (parsed bool) {
	var err error
	switch ev.Type {
	case "service":
		err = p.service.Parse(ev.Line, doc)
	case "nginx":
		// In place: the document's values may be parts of the record's
		// value, which nothing changes, and the document is done with
		// before the record is.
		n, format := p.nginxFor(ev.Path)
		n, format = p.nginxHinted(ev, n, format)
		err = n.ParseString(unsafe.String(unsafe.SliceData(ev.Line), len(ev.Line)), doc)
		p.watch.seen(ev.Node, ev.Path, format, ev.Line, err)
	case "container":
		p.containerLine(ev.Line, doc)
	default:
		doc.Set("message", string(ev.Line))
	}
	if err != nil {
		doc.Reset()
		parser.Fallback(ev.Line, err, doc)
	}
	// The shipper's fields say who sent the line: they win over what the
	// line says (see overrule).
	var fields []docField
	if len(ev.Fields) > 0 {
		fields = p.docFields(ev.Fields)
		for _, f := range fields {
			overrule(doc, f.key, f.v)
		}
	}
	if !doc.HasKey(keyTimestamp) {
		at := ev.LogTime // the container runtime's time, else the read time
		if at.IsZero() {
			at = ev.ReadTime
		}
		doc.SetKey(keyTimestamp, at.UTC().Format(time.RFC3339Nano))
	}
	if ev.Stream != "" {
		doc.Set("stream", ev.Stream)
	}
	overrule(doc, keyEventDataset, p.typ.value(deliver.Dataset(ev.Type)))
	doc.SetKey(keyEventCreated, p.created(ev.ReadTime))
	overrule(doc, keyHostName, p.node.value(ev.Node))
	overrule(doc, keyLogFilePath, p.path.value(ev.Path))
	offset := doc.IntValue(ev.Offset)
	doc.SetKey(keyLogOffset, offset)
	overruleNested(doc, fields, [...]docField{{keyEventDataset, p.typ.v}, {keyHostName, p.node.v},
		{keyLogFilePath, p.path.v}, {keyLogOffset, offset}})
	if tags := lineTags(ev.Flags); len(tags) > 0 {
		doc.Set("tags", tags)
	}
	setECS(doc, ev.Type, err == nil)
	return err == nil
}

// lineTags are the flags that say something about the line, as document
// tags: resent says only how it travelled, and a re-delivered line's
// document must be the same as the first one's.
func lineTags(flags []string) []string {
	if !slices.Contains(flags, event.FlagResent) {
		return flags
	}
	return slices.DeleteFunc(slices.Clone(flags), func(f string) bool { return f == event.FlagResent })
}

// indexLookup resolves template fields for index names: the event's own
// fields first, then the document's ECS fields.
func indexLookup(ev *event.Event, doc *parser.Doc) func(string) (string, bool) {
	return func(name string) (string, bool) {
		if v, ok := ev.Field(name); ok && v != "" {
			return v, true
		}
		key := name
		if alias, ok := fieldAliases[name]; ok {
			key = alias
		}
		v, _ := doc.Get(key)
		if s, ok := v.(string); ok {
			return s, true
		}
		return "", false
	}
}

// docTime is the event's own time, for date-suffixed index names: the
// document's @timestamp, never the time of indexing, so that a re-delivered
// line lands in the same index.
func docTime(doc *parser.Doc) time.Time {
	v, _ := doc.Get("@timestamp")
	if s, ok := v.(string); ok {
		if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
			return t
		}
	}
	return time.Time{}
}

// indexName renders the index for a document. A document tagged
// timestamp_out_of_range (see timeWindow) goes to the index whose date is
// template.OutOfRange.
func indexName(t *template.Template, ev *event.Event, doc *parser.Doc) string {
	var at time.Time
	if t.HasDate() && !hasTag(doc, tagTimeOutOfRange) {
		at = docTime(doc)
	}
	return template.IndexName(t.Render(indexLookup(ev, doc), at, template.IndexValue))
}

// CheckParsers reports what is wrong with cfg's nginx formats and routes.
func CheckParsers(cfg ParsersConfig) error {
	_, err := newParsers(cfg)
	return err
}
