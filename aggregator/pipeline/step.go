package pipeline

import (
	"maps"
	"strings"
	"time"

	"github.com/sluicelog/sluice/internal/template"
	"github.com/sluicelog/sluice/parser"
)

// action is a compiled step that changes a document.
type action interface {
	apply(doc *parser.Doc)
}

// keepFields removes every field its patterns do not select.
type keepFields struct{ patterns []pattern }

func (k *keepFields) apply(doc *parser.Doc) {
	deleteWhere(doc, func(key string, v any) (bool, any, bool) {
		if key == "@timestamp" {
			return false, nil, false
		}
		keep, trimmed, copied := keeps(key, v, k.patterns)
		return !keep, trimmed, copied
	})
}

// deleteWhere deletes the fields of doc for which drop is true, and
// replaces the value of those it gives a replacement (nested objects
// trimmed, as copies: see ownNestedParent).
func deleteWhere(doc *parser.Doc, drop func(key string, v any) (drop bool, replacement any, replace bool)) {
	var keys []string
	var replaced []parser.Field
	for _, f := range doc.Fields() {
		d, v, replace := drop(f.Key, f.Value)
		switch {
		case d:
			keys = append(keys, f.Key)
		case replace:
			replaced = append(replaced, parser.Field{Key: f.Key, Value: v})
		}
	}
	for _, f := range replaced {
		doc.Set(f.Key, f.Value)
	}
	for _, key := range keys {
		doc.Delete(key)
	}
}

// match reports whether a pattern covers key, and otherwise the patterns
// that reach into key, relative to it.
func match(key string, patterns []pattern) (covered bool, inner []pattern) {
	for i := range patterns {
		if patterns[i].covers(key) {
			return true, nil
		}
		if p, ok := patterns[i].within(key); ok {
			inner = append(inner, p)
		}
	}
	return false, inner
}

// keepIn removes from m, which is the caller's own, every key no pattern
// selects.
func keepIn(m map[string]any, patterns []pattern) {
	deleteWhereIn(m, func(key string, v any) (bool, any, bool) {
		keep, trimmed, copied := keeps(key, v, patterns)
		return !keep, trimmed, copied
	})
}

// deleteWhereIn is deleteWhere for m, a nested object that is the
// caller's own.
func deleteWhereIn(m map[string]any, drop func(key string, v any) (drop bool, replacement any, replace bool)) {
	for key, v := range m {
		d, r, replace := drop(key, v)
		switch {
		case d:
			delete(m, key)
		case replace:
			m[key] = r
		}
	}
}

// keeps reports whether key, holding v, stays: a pattern selects it, or it
// is a nested object that a pattern reaches into, trimmed by keepIn to
// what the patterns select, and not left empty. The trimmed object is a
// copy, returned with copied set.
func keeps(key string, v any, patterns []pattern) (keep bool, trimmed any, copied bool) {
	covered, inner := match(key, patterns)
	if covered {
		return true, v, false
	}
	sub, isObject := v.(map[string]any)
	if inner == nil || !isObject {
		return false, v, false
	}
	sub = maps.Clone(sub)
	keepIn(sub, inner)
	return len(sub) > 0, sub, true
}

// removeFields removes the fields its patterns select.
type removeFields struct {
	exact    []field   // plain names
	prefixes []pattern // "x.*"
}

func (r *removeFields) apply(doc *parser.Doc) {
	for _, f := range r.exact {
		f.del(doc)
	}
	if len(r.prefixes) == 0 {
		return
	}
	deleteWhere(doc, func(key string, v any) (bool, any, bool) { return removes(key, v, r.prefixes) })
}

// removeIn removes from m, which is the caller's own, every key a prefix
// pattern covers.
func removeIn(m map[string]any, patterns []pattern) {
	deleteWhereIn(m, func(key string, v any) (bool, any, bool) { return removes(key, v, patterns) })
}

// removes reports whether a pattern covers key, holding v; if not and v is
// a nested object that a pattern reaches into, it returns a copy of it
// with copied set, from which removeIn removed what the patterns cover.
func removes(key string, v any, patterns []pattern) (remove bool, trimmed any, copied bool) {
	covered, inner := match(key, patterns)
	if covered {
		return true, nil, false
	}
	if sub, ok := v.(map[string]any); ok && inner != nil {
		sub = maps.Clone(sub)
		removeIn(sub, inner)
		return false, sub, true
	}
	return false, v, false
}

type renameField struct{ from, to field }

// renameFields moves fields, in the order of their source names.
type renameFields []renameField

func (r renameFields) apply(doc *parser.Doc) {
	for _, rf := range r {
		v, ok := rf.from.get(doc)
		if !ok {
			continue
		}
		rf.from.del(doc)
		rf.to.set(doc, v)
	}
}

// value is a constant or a template rendered over the document.
type value struct {
	constant any
	tmpl     *template.Template // set for a string with {field} references
}

func (v *value) render(doc *parser.Doc) any {
	if v.tmpl == nil {
		return v.constant
	}
	var at time.Time
	if v.tmpl.HasDate() {
		at = docTime(doc)
	}
	return v.tmpl.Render(func(name string) (string, bool) {
		f, ok := newField(name).get(doc)
		if !ok {
			return "", false
		}
		return textOf(f)
	}, at, keepValue)
}

func keepValue(s string) string { return s }

// docTime is the document's @timestamp.
func docTime(doc *parser.Doc) time.Time {
	v, _ := doc.Get("@timestamp")
	if s, ok := v.(string); ok {
		if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
			return t
		}
	}
	return time.Time{}
}

type setField struct {
	f field
	v value
}

// setFields sets fields to values, in the order of their names.
type setFields []setField

func (s setFields) apply(doc *parser.Doc) {
	for i := range s {
		s[i].f.set(doc, s[i].v.render(doc))
	}
}

// newValue compiles a configured value: strings with { are templates, YAML
// integers become int64 as in parsed documents.
func newValue(v any) (value, error) {
	switch x := v.(type) {
	case string:
		if !strings.Contains(x, "{") {
			return value{constant: x}, nil
		}
		t, err := template.Parse(x)
		if err != nil {
			return value{}, err
		}
		return value{tmpl: t}, nil
	case nil:
		return value{}, errNullValue
	}
	return value{constant: normalise(v)}, nil
}

// normalise converts YAML-decoded values to the types of parsed documents.
func normalise(v any) any {
	switch x := v.(type) {
	case int:
		return int64(x)
	case uint64:
		if n, ok := numberOf(x); ok && n.isInt {
			return n.i
		}
		return float64(x)
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = normalise(e)
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = normalise(e)
		}
		return out
	}
	return v
}

type nullValueError struct{}

func (nullValueError) Error() string {
	return "the value is empty (null); give a value, or use remove_fields to remove a field"
}

var errNullValue error = nullValueError{}
