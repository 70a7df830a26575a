package process

import (
	"encoding/binary"
	"slices"
	"time"

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
	asked  int    // names asked for: one per document (tests)
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
	n.asked++
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

// tagTimeOutOfRange tags a document whose own time was outside the
// accepted window, and routes it to the out-of-range index.
const tagTimeOutOfRange = "timestamp_out_of_range"

// keyOriginalTimestamp keeps such a document's own @timestamp.
var keyOriginalTimestamp = parser.NewKey("event.original_timestamp")

// timeWindow is elasticsearch.accept_time: the @timestamps, around each
// line's read time, that pick a dated index. It bounds the indices bad
// times create to the window's days plus one out-of-range index per name,
// where 600 lines dated 1970 to 2134 once created 470 indices and then hit
// the cluster's shard limit.
type timeWindow struct {
	past, future time.Duration
	// now stands in for a read time a record lacks; time.Now but in tests.
	now func() time.Time
}

// check tags a document whose @timestamp is outside the window, or not a
// time, timestamp_out_of_range, keeps that value in
// event.original_timestamp and sets @timestamp to the read time. The
// window is measured from the read time, which travels with the record, so
// the same record always routes the same way; a line re-read by the
// shipper later gets a new read time, and the duplicate check covers the
// out-of-range index too (it matches the name's wildcard).
func (w timeWindow) check(ev *event.Event, doc *parser.Doc) {
	ref := ev.ReadTime
	if ref.IsZero() {
		ref = w.now()
	}
	at := docTime(doc)
	if !at.IsZero() && !at.Before(ref.Add(-w.past)) && !at.After(ref.Add(w.future)) {
		return
	}
	if orig, ok := doc.Get("@timestamp"); ok {
		doc.SetKey(keyOriginalTimestamp, orig)
	}
	doc.SetKey(keyTimestamp, ref.UTC().Format(time.RFC3339Nano))
	addTag(doc, tagTimeOutOfRange)
}

// hasTag reports whether the document's tags hold tag.
func hasTag(doc *parser.Doc, tag string) bool {
	t, _ := doc.Get("tags")
	switch t := t.(type) {
	case string:
		return t == tag
	case []string:
		return slices.Contains(t, tag)
	case []any:
		return slices.Contains(t, any(tag))
	}
	return false
}
