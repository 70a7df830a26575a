package aggregator

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"regexp"
	"strings"

	"github.com/sluicelog/sluice/parser"
)

// bracketed finds the [name]s in an Elasticsearch error reason, which name
// the field in mapping errors: "[1:55] failed to parse field [x] of type
// [long]", "object mapping for [x] tried to parse field [x] as object".
var bracketed = regexp.MustCompile(`\[([^\]\s]+)\]`)

// moveAside returns a copy of doc with the field named in reason moved to
// labels.moved_<field> as a string, tagged mapping_conflict. ok is false
// when the reason names no field of the document.
func moveAside(doc *parser.Doc, reason string) (*parser.Doc, bool) {
	out := doc.Clone()
	var field string
	var v any
	found := false
	for _, m := range bracketed.FindAllStringSubmatch(reason, -1) {
		if v, found = take(out, m[1]); found {
			field = m[1]
			break
		}
	}
	if !found {
		return nil, false
	}
	s, isString := v.(string)
	if !isString {
		b, _ := json.Marshal(v) // decoded from JSON, so it encodes
		s = string(b)
	}
	out.Set("labels.moved_"+strings.ReplaceAll(field, ".", "_"), s)
	addTag(out, "mapping_conflict")
	return out, true
}

// addTag adds tag to the document's tags, copying them: they may be an
// event's flags, which are shared.
func addTag(doc *parser.Doc, tag string) {
	var tags []string
	t, _ := doc.Get("tags")
	switch t := t.(type) {
	case string:
		tags = append(tags, t)
	case []string:
		tags = append(tags, t...)
	case []any: // rebuilt from JSON
		for _, e := range t {
			if s, ok := e.(string); ok {
				tags = append(tags, s)
			}
		}
	}
	doc.Set("tags", append(tags, tag))
}

// take removes field from doc, looking for it as a flat dotted key or as a
// path into nested objects (which it copies before changing).
func take(doc *parser.Doc, field string) (any, bool) {
	if v, ok := doc.Get(field); ok {
		doc.Delete(field)
		return v, true
	}
	for i := strings.IndexByte(field, '.'); i > 0; i = nextDot(field, i) {
		v, _ := doc.Get(field[:i])
		inner, ok := v.(map[string]any)
		if !ok {
			continue
		}
		inner = maps.Clone(inner)
		if v, ok := takeNested(inner, field[i+1:]); ok {
			doc.Set(field[:i], inner)
			return v, true
		}
	}
	return nil, false
}

// takeNested is take inside a nested object m.
func takeNested(m map[string]any, field string) (any, bool) {
	if v, ok := m[field]; ok {
		delete(m, field)
		return v, true
	}
	for i := strings.IndexByte(field, '.'); i > 0; i = nextDot(field, i) {
		inner, ok := m[field[:i]].(map[string]any)
		if !ok {
			continue
		}
		inner = maps.Clone(inner)
		if v, ok := takeNested(inner, field[i+1:]); ok {
			m[field[:i]] = inner
			return v, true
		}
	}
	return nil, false
}

func nextDot(s string, i int) int {
	j := strings.IndexByte(s[i+1:], '.')
	if j < 0 {
		return -1
	}
	return i + 1 + j
}

// docOfJSON rebuilds a document from its JSON (appendDocument's output),
// fields in their order, numbers exactly as written.
func docOfJSON(src []byte) (*parser.Doc, error) {
	dec := json.NewDecoder(bytes.NewReader(src))
	dec.UseNumber()
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nil, fmt.Errorf("document is not a JSON object: %v", err)
	}
	doc := parser.NewDoc(16)
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return nil, err
		}
		key, _ := t.(string) // object keys are strings
		var v any
		if err := dec.Decode(&v); err != nil {
			return nil, err
		}
		doc.Set(key, v)
	}
	return doc, nil
}
