package pipeline

import "strings"

// field is a compiled field name: a flat dotted key, with nested objects
// as the fallback.
type field struct {
	name   string
	nested bool // the name has a dot, so it may live in a nested object
}

func newField(name string) field {
	return field{name: name, nested: strings.IndexByte(name, '.') > 0}
}

// get returns the field's value; nil values count as missing.
func (f field) get(m map[string]any) (any, bool) {
	if v, ok := m[f.name]; ok {
		return v, v != nil
	}
	if !f.nested {
		return nil, false
	}
	v, ok := getNested(m, f.name)
	return v, ok && v != nil
}

// getNested looks name up inside nested objects: "a.b.c" in {"a": {"b.c": v}}
// or {"a.b": {"c": v}} or {"a": {"b": {"c": v}}}.
func getNested(m map[string]any, name string) (any, bool) {
	if parent, leaf := nestedParent(m, name); parent != nil {
		return parent[leaf], true
	}
	return nil, false
}

// del removes the field, flat or nested.
func (f field) del(m map[string]any) {
	if _, ok := m[f.name]; ok {
		delete(m, f.name)
		return
	}
	if f.nested {
		if parent, leaf := nestedParent(m, f.name); parent != nil {
			delete(parent, leaf)
		}
	}
}

// set writes the field: where it already is when it is inside a nested
// object, else as a flat key.
func (f field) set(m map[string]any, v any) {
	if f.nested {
		if _, ok := m[f.name]; !ok {
			if parent, leaf := nestedParent(m, f.name); parent != nil {
				parent[leaf] = v
				return
			}
		}
	}
	m[f.name] = v
}

// nestedParent finds the nested object that holds name, and the key of name
// in it.
func nestedParent(m map[string]any, name string) (map[string]any, string) {
	for i := 0; i < len(name); i++ {
		if name[i] != '.' {
			continue
		}
		sub, ok := m[name[:i]].(map[string]any)
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
