package aggregator

import (
	"encoding/binary"

	"github.com/sluicelog/sluice/internal/event"
	"github.com/sluicelog/sluice/internal/template"
	"github.com/sluicelog/sluice/parser"
)

// maxIndexNames bounds an indexNames cache: past it, the cache starts over.
const maxIndexNames = 1024

// indexNames renders index names as indexName does, remembering them. The
// name of an event whose template fields all come from the event itself
// (type, node, path, static and path fields) depends on those values only,
// which repeat for every line of a file, so it is rendered once per set of
// values. Names read from the document or with a date are rendered each
// time. Not safe for concurrent use.
type indexNames struct {
	t      *template.Template
	fields []string // the template's fields, in order
	cache  map[string]string
	key    []byte // scratch for the cache key
}

func newIndexNames(t *template.Template) *indexNames {
	n := &indexNames{t: t}
	if !t.HasDate() {
		n.fields = t.Fields()
		n.cache = make(map[string]string)
	}
	return n
}

// name returns the index of doc, built from ev.
func (n *indexNames) name(ev *event.Event, doc *parser.Doc) string {
	if n.cache == nil {
		return indexName(n.t, ev, doc)
	}
	// The key is the values of the template's fields, each preceded by its
	// length, so that different values never make the same key.
	key := n.key[:0]
	for _, f := range n.fields {
		v, ok := ev.Field(f)
		if !ok || v == "" { // read from the document: not cached
			return indexName(n.t, ev, doc)
		}
		key = binary.AppendUvarint(key, uint64(len(v)))
		key = append(key, v...)
	}
	n.key = key
	if name, ok := n.cache[string(key)]; ok {
		return name
	}
	name := indexName(n.t, ev, doc)
	if len(n.cache) >= maxIndexNames {
		clear(n.cache)
	}
	n.cache[string(key)] = name
	return name
}
