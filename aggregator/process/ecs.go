package process

import (
	"strings"

	"github.com/sluicelog/sluice/parser"
)

// ECSVersion is the version of the Elastic Common Schema the documents
// follow, in ecs.version.
const ECSVersion = "8.11.0"

// Keys and values of the ECS event fields.
var (
	keyEventKind     = parser.NewKey("event.kind")
	keyEventCategory = parser.NewKey("event.category")
	keyEventType     = parser.NewKey("event.type")
	keyEventOutcome  = parser.NewKey("event.outcome")
	keyECSVersion    = parser.NewKey("ecs.version")
	keyStatusCode    = parser.NewKey("http.response.status_code")

	// As interfaces once, so that setting them allocates nothing.
	valueWeb     any = []string{"web"}
	valueAccess  any = []string{"access"}
	valueSuccess any = "success"
	valueFailure any = "failure"
)

// setECS adds the ECS categorisation fields Elastic's own integrations set
// (event.kind, event.category, event.type, event.outcome) and ecs.version,
// to a document of type typ. Values the line has itself are kept: an app
// knows its own events better.
func setECS(doc *parser.Doc, typ string, parsed bool) {
	d := defaults{doc: doc, objects: hasObject(doc)}
	d.set(keyECSVersion, ECSVersion)
	d.set(keyEventKind, "event")
	if typ != "nginx" || !parsed {
		// A line the parser could not read (error.type parse) says
		// nothing certain about what happened.
		return
	}
	d.set(keyEventCategory, valueWeb)
	d.set(keyEventType, valueAccess)
	if v, ok := doc.GetKey(keyStatusCode); ok {
		if code, ok := statusCode(v); ok {
			// As Filebeat's nginx module: a status below 400 is a success.
			outcome := valueSuccess
			if code >= 400 {
				outcome = valueFailure
			}
			d.set(keyEventOutcome, outcome)
		}
	}
}

// defaults sets fields a document lacks.
type defaults struct {
	doc     *parser.Doc
	objects bool // whether doc has objects, which may hold a field too
}

// set sets k to v unless the document has it, under its dotted name or
// inside an object ({"event": {"kind": ...}}).
func (d defaults) set(k parser.Key, v any) {
	if d.doc.HasKey(k) || (d.objects && inObject(d.doc, k.String())) {
		return
	}
	d.doc.SetKey(k, v)
}

// hasObject reports whether a field of doc is an object.
func hasObject(doc *parser.Doc) bool {
	for _, f := range doc.Fields() {
		if _, ok := f.Value.(map[string]any); ok {
			return true
		}
	}
	return false
}

// inObject reports whether doc has the dotted name inside one of its
// objects, whichever way the name is split between keys.
func inObject(doc *parser.Doc, name string) bool {
	for _, f := range doc.Fields() {
		m, ok := f.Value.(map[string]any)
		if ok && len(name) > len(f.Key) && name[len(f.Key)] == '.' && strings.HasPrefix(name, f.Key) && mapHas(m, name[len(f.Key)+1:]) {
			return true
		}
	}
	return false
}

func mapHas(m map[string]any, name string) bool {
	if _, ok := m[name]; ok {
		return true
	}
	for i := range len(name) {
		if name[i] != '.' {
			continue
		}
		if sub, ok := m[name[:i]].(map[string]any); ok && mapHas(sub, name[i+1:]) {
			return true
		}
	}
	return false
}

// statusCode reads an HTTP status code document value.
func statusCode(v any) (int64, bool) {
	switch n := v.(type) {
	case int64:
		return n, true
	case int:
		return int64(n), true
	case float64:
		return int64(n), true
	}
	return 0, false
}
