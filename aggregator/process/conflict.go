package process

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"regexp"
	"strings"

	"github.com/sluicelog/sluice/aggregator/deliver"
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
	for _, m := range bracketed.FindAllStringSubmatch(reason, -1) {
		if moveFieldAside(out, m[1]) {
			addTag(out, "mapping_conflict")
			return out, true
		}
	}
	return nil, false
}

// moveFieldAside moves field, if doc has it, to labels.moved_<field> as a
// string.
func moveFieldAside(doc *parser.Doc, field string) bool {
	v, found := take(doc, field)
	if !found {
		return false
	}
	s, isString := v.(string)
	if !isString {
		b, _ := json.Marshal(v) // decoded from JSON, so it encodes
		s = string(b)
	}
	doc.Set("labels.moved_"+strings.ReplaceAll(field, ".", "_"), s)
	return true
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

// fitter moves aside, as a conflict retry would (moveAside), each value of
// a document whose shape Sluice's index template rules out: a scalar or
// list where the template has an object ({"error": "refused"}, error being
// {message, type}), or an object where it has a field of another type
// ({"message": {...}}). Elasticsearch would reject the whole document for
// it; moved before indexing, the document costs no rejected item, no retry
// and no alert, and `sluice test` shows what Elasticsearch will store.
// Values of the wrong scalar type ("status_code": "n/a" for a long) are
// left alone: index.mapping.ignore_malformed keeps the document and the
// value in _source. Fields the template does not name are not checked;
// Elasticsearch maps those dynamically, and a clash between two documents'
// dynamic fields is left to the retry.
//
// It remembers the keys whose scalar values fit, most of every document's:
// such a field then costs a hash and a comparison. Not safe for
// concurrent use.
type fitter struct {
	fits [fitMemo / 2][2]string
}

// fitMemo is the number of keys a fitter remembers, two per hash; a third
// key of a hash takes the place of the older.
const fitMemo = 1024

// maxMemoKey is the longest key a fitter remembers (and copies).
const maxMemoKey = 64

// fit fits doc to the template.
func (f *fitter) fit(doc *parser.Doc) {
	var bad []string
	fields := doc.Fields()
	for i := range fields {
		fl := &fields[i]
		switch fl.Value.(type) {
		case map[string]any, []any:
			bad = misfits(templateMapping, "", fl.Key, fl.Value, bad)
			continue
		}
		set := &f.fits[fl.KeyHash()&(fitMemo/2-1)]
		if set[0] == fl.Key || set[1] == fl.Key {
			continue
		}
		n := len(bad)
		if bad = misfits(templateMapping, "", fl.Key, fl.Value, bad); len(bad) == n && len(fl.Key) <= maxMemoKey {
			// The newest key first; two ways, so that two keys of one
			// hash do not take each other's place in every document.
			set[1] = set[0]
			set[0] = strings.Clone(fl.Key) // not a piece of the line, which it would keep
		}
	}
	moved := false
	for _, field := range bad {
		moved = moveFieldAside(doc, field) || moved
	}
	if moved {
		addTag(doc, "mapping_conflict")
	}
}

// mappingNode is a field of the template's explicit mapping: an object
// with props, or a field of type typ.
type mappingNode struct {
	typ   string
	props map[string]*mappingNode
}

// takesObjects reports whether the field takes a JSON object as its
// value.
func (n *mappingNode) takesObjects() bool {
	return n.props != nil || n.typ == "flattened" || n.typ == "geo_point"
}

// takesScalars reports whether the field takes a string, number, boolean
// or list of them: a flattened field takes only objects.
func (n *mappingNode) takesScalars() bool {
	return n.props == nil && n.typ != "flattened"
}

// templateMapping is the explicit mapping of Sluice's index template.
var templateMapping = func() *mappingNode {
	mappings := deliver.IndexTemplate("*")["template"].(map[string]any)["mappings"].(map[string]any)
	var node func(def map[string]any) *mappingNode
	node = func(def map[string]any) *mappingNode {
		n := &mappingNode{}
		if props, ok := def["properties"].(map[string]any); ok {
			n.props = make(map[string]*mappingNode, len(props))
			for name, sub := range props {
				n.props[name] = node(sub.(map[string]any))
			}
			return n
		}
		n.typ, _ = def["type"].(string)
		return n
	}
	return node(mappings)
}()

// pathTable finds the template's fields by dotted path: open addressing
// over a hash of a path's length and three of its bytes, which tells the
// template's few paths apart well enough and costs a few nanoseconds.
type pathTable struct {
	slots []pathSlot
	mask  int
}

type pathSlot struct {
	path string
	node *mappingNode
}

func pathHash(s string) int {
	return len(s)*131 + int(s[0])*31 + int(s[len(s)-1])*7 + int(s[len(s)/2])
}

func (t *pathTable) find(path string) *mappingNode {
	if path == "" {
		return nil
	}
	for i := pathHash(path) & t.mask; ; i = (i + 1) & t.mask {
		s := &t.slots[i]
		if s.node == nil || s.path == path {
			return s.node
		}
	}
}

// templatePaths holds every path of templateMapping.
var templatePaths = func() *pathTable {
	var all []pathSlot
	var walk func(prefix string, n *mappingNode)
	walk = func(prefix string, n *mappingNode) {
		for name, sub := range n.props {
			all = append(all, pathSlot{prefix + name, sub})
			walk(prefix+name+".", sub)
		}
	}
	walk("", templateMapping)
	size := 16
	for size < 4*len(all) {
		size *= 2
	}
	t := &pathTable{slots: make([]pathSlot, size), mask: size - 1}
	for _, s := range all {
		i := pathHash(s.path) & t.mask
		for t.slots[i].node != nil {
			i = (i + 1) & t.mask
		}
		t.slots[i] = s
	}
	return t
}()

// misfits appends to bad the paths under prefix (the path of object n, ""
// at the root) of the values of key, v that do not fit n's mapping.
func misfits(n *mappingNode, prefix, key string, v any, bad []string) []string {
	// At the root, where every document field starts, the paths are looked
	// up whole in templatePaths, which is faster than a map.
	atRoot := prefix == "" && n == templateMapping
	for end := 0; ; {
		stop := len(key)
		if i := strings.IndexByte(key[end:], '.'); i >= 0 {
			stop = end + i
		}
		var child *mappingNode
		if atRoot {
			child = templatePaths.find(key[:stop])
		} else {
			child = n.props[key[end:stop]]
		}
		if child == nil {
			return bad // mapped dynamically from here
		}
		n = child
		if stop == len(key) {
			break
		}
		end = stop + 1
		if n.props == nil {
			if n.takesObjects() {
				return bad // a key inside a flattened field
			}
			return append(bad, join(prefix, key))
		}
	}
	path := func() string { return join(prefix, key) }
	switch x := v.(type) {
	case map[string]any:
		if n.props == nil {
			if n.takesObjects() {
				return bad
			}
			return append(bad, path())
		}
		for k, e := range x {
			if _, ok := n.props[firstSegment(k)]; ok {
				bad = misfits(n, path(), k, e, bad)
			}
		}
	case []any:
		for _, e := range x {
			switch m := e.(type) {
			case nil:
			case map[string]any:
				if n.props == nil {
					if n.takesObjects() {
						continue
					}
					return append(bad, path())
				}
				// A misfit inside a list cannot be taken out of it: the
				// list goes aside whole.
				for k, ev := range m {
					if _, ok := n.props[firstSegment(k)]; ok && len(misfits(n, "", k, ev, nil)) > 0 {
						return append(bad, path())
					}
				}
			default:
				if !n.takesScalars() {
					return append(bad, path())
				}
			}
		}
	case nil:
	default:
		if !n.takesScalars() {
			return append(bad, path())
		}
	}
	return bad
}

func firstSegment(k string) string {
	seg, _, _ := strings.Cut(k, ".")
	return seg
}

func join(prefix, key string) string {
	if prefix == "" {
		return key
	}
	return prefix + "." + key
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

// RetryConflicts gives each document Elasticsearch rejected for a mapping
// conflict one more chance, with the conflicting field moved aside as a
// string (labels.moved_<field>) and the tag mapping_conflict. Outcomes are
// updated in place; what still fails goes to the dead-letter topic.
func (d *Documents) RetryConflicts(ctx context.Context, sink deliver.Sink, items []deliver.Item, outcomes []deliver.Outcome) error {
	var retry []deliver.Item
	var pos []int
	for k, o := range outcomes {
		if o.Delivered || o.Status != http.StatusBadRequest {
			continue
		}
		doc, err := docOfJSON(items[k].Source)
		if err != nil {
			continue // not from appendDocument; cannot happen
		}
		doc, ok := moveAside(doc, o.Reason)
		if !ok {
			continue
		}
		src, err := deliver.AppendDocument(nil, doc)
		if err != nil {
			continue
		}
		it := items[k]
		it.Source = src
		retry = append(retry, it)
		pos = append(pos, k)
	}
	if len(retry) == 0 {
		return nil
	}
	d.metrics.conflictRetries.Add(float64(len(retry)))
	res, err := sink.DeliverAll(ctx, retry)
	if err != nil {
		return err
	}
	for i, o := range res {
		if o.Delivered {
			outcomes[pos[i]] = o
			items[pos[i]] = retry[i]
		} else {
			outcomes[pos[i]].Reason += "; retried with the field moved aside: " + o.Reason
		}
	}
	return nil
}
