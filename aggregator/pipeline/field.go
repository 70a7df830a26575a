package pipeline

import (
	"maps"
	"strings"

	"github.com/sluicelog/sluice/parser"
)

// field is a compiled field name: a flat dotted key, with nested objects
// as the fallback.
type field struct {
	name   string
	key    parser.Key // name's
	nested bool       // the name has a dot, so it may live in a nested object
}

func newField(name string) field {
	return field{name: name, key: parser.NewKey(name), nested: strings.IndexByte(name, '.') > 0}
}

// get returns the field's value; nil values count as missing. A dotted
// name is also looked up inside nested objects: "a.b.c" in
// {"a": {"b.c": v}} or {"a.b": {"c": v}} or {"a": {"b": {"c": v}}}.
func (f field) get(doc *parser.Doc) (any, bool) {
	if v, ok := doc.GetKey(f.key); ok {
		return v, v != nil
	}
	if !f.nested {
		return nil, false
	}
	if parent, leaf := docNestedParent(doc, f.name); parent != nil {
		v := parent[leaf]
		return v, v != nil
	}
	return nil, false
}

// del removes the field, flat or nested.
func (f field) del(doc *parser.Doc) {
	if doc.DeleteKey(f.key) || !f.nested {
		return
	}
	if parent, leaf := ownNestedParent(doc, f.name); parent != nil {
		delete(parent, leaf)
	}
}

// set writes the field: where it already is when it is inside a nested
// object, else as a flat key.
func (f field) set(doc *parser.Doc, v any) {
	if f.nested && !doc.HasKey(f.key) {
		if parent, leaf := ownNestedParent(doc, f.name); parent != nil {
			parent[leaf] = v
			return
		}
	}
	doc.SetKey(f.key, v)
}

// Nested objects are never changed in place: a document's values may be
// shared with other documents (GeoIP locations come from the GeoIP cache,
// constant values of add_fields from the configuration). A step that
// changes one copies it, and the objects it is nested in, into the
// document first.

// ownNestedParent is docNestedParent for a change: the objects on the way
// to name are copies that the document holds instead of the originals.
func ownNestedParent(doc *parser.Doc, name string) (map[string]any, string) {
	return ownParentOf(doc.Get, doc.Set, name)
}

// ownParentOf is parentOf for a change: each object on the way is copied
// and the copy put in its place with put.
func ownParentOf(get func(string) (any, bool), put func(string, any), name string) (map[string]any, string) {
	for i := 0; i < len(name); i++ {
		if name[i] != '.' {
			continue
		}
		v, _ := get(name[:i])
		sub, ok := v.(map[string]any)
		if !ok {
			continue
		}
		rest := name[i+1:]
		_, here := sub[rest]
		if !here {
			if p, _ := nestedParent(sub, rest); p == nil {
				continue
			}
		}
		sub = maps.Clone(sub)
		put(name[:i], sub)
		if here {
			return sub, rest
		}
		return ownParentOf(func(key string) (any, bool) {
			v, ok := sub[key]
			return v, ok
		}, func(key string, v any) { sub[key] = v }, rest)
	}
	return nil, ""
}

// docNestedParent finds the object nested in doc that holds name, and the
// key of name in it.
func docNestedParent(doc *parser.Doc, name string) (map[string]any, string) {
	return parentOf(doc.Get, name)
}

// nestedParent finds the nested object that holds name, and the key of name
// in it.
func nestedParent(m map[string]any, name string) (map[string]any, string) {
	return parentOf(func(key string) (any, bool) {
		v, ok := m[key]
		return v, ok
	}, name)
}

// parentOf finds, under the fields that get looks up, the nested object
// that holds name, and the key of name in it.
func parentOf(get func(string) (any, bool), name string) (map[string]any, string) {
	for i := 0; i < len(name); i++ {
		if name[i] != '.' {
			continue
		}
		v, _ := get(name[:i])
		sub, ok := v.(map[string]any)
		if !ok {
			continue
		}
		rest := name[i+1:]
		if _, ok := sub[rest]; ok {
			return sub, rest
		}
		if p, leaf := nestedParent(sub, rest); p != nil {
			return p, leaf
		}
	}
	return nil, ""
}

// pattern is a field name, or a prefix written "http.*".
type pattern struct {
	name   string // without ".*"
	dotted string // name + "."
	prefix bool
}

func newPattern(s string) pattern {
	if p, ok := strings.CutSuffix(s, ".*"); ok {
		return pattern{name: p, dotted: p + ".", prefix: true}
	}
	return pattern{name: s, dotted: s + "."}
}

// covers reports whether the pattern selects key as a whole.
func (p *pattern) covers(key string) bool {
	return key == p.name || p.prefix && strings.HasPrefix(key, p.dotted)
}

// within returns the pattern relative to the nested object under key, when
// the pattern reaches inside it ("a.b" within "a" is "b").
func (p *pattern) within(key string) (pattern, bool) {
	if len(p.name) <= len(key) || p.name[len(key)] != '.' || !strings.HasPrefix(p.name, key) {
		return pattern{}, false
	}
	rest := p.name[len(key)+1:]
	return pattern{name: rest, dotted: rest + ".", prefix: p.prefix}, true
}
