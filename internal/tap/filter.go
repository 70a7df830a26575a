package tap

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicelog/sluice/internal/config"
	"github.com/sluicelog/sluice/internal/event"
)

// Filter says which events of a stage a tap takes.
type Filter struct {
	Stage string
	// Types and Services: any of them (none: all).
	Types, Services []string
	// Where: all of them.
	Where []Match
	// Rate is the share of matching events taken, evenly spread: 0.01 is
	// one in a hundred (0 or 1: all).
	Rate float64
	// Limit ends the tap after so many events (0: no limit).
	Limit int
}

// Match is a field=value condition. Field is a dotted name: a document's
// field (log.level), or for lines and dead letters a static or path field
// of the input, or a field of the line when it is a JSON object.
type Match struct{ Field, Value string }

func (m Match) String() string { return m.Field + "=" + m.Value }

// ParseMatch reads "field=value".
func ParseMatch(s string) (Match, error) {
	field, value, ok := strings.Cut(s, "=")
	if !ok || field == "" {
		return Match{}, fmt.Errorf("where %q: write field=value, e.g. log.level=error", s)
	}
	return Match{field, value}, nil
}

// Query returns f as /tap's query parameters.
func (f Filter) Query() url.Values {
	q := url.Values{"stage": {f.Stage}}
	for _, t := range f.Types {
		q.Add("type", t)
	}
	for _, s := range f.Services {
		q.Add("service", s)
	}
	for _, m := range f.Where {
		q.Add("where", m.String())
	}
	if f.Rate > 0 {
		q.Set("rate", strconv.FormatFloat(f.Rate, 'g', -1, 64))
	}
	if f.Limit > 0 {
		q.Set("limit", strconv.Itoa(f.Limit))
	}
	return q
}

// ParseQuery reads a Filter from /tap's query parameters; type and
// service may also be comma-separated lists.
func ParseQuery(q url.Values) (Filter, error) {
	f := Filter{Stage: q.Get("stage")}
	if _, ok := stageOf(f.Stage); !ok {
		return f, fmt.Errorf("stage %q: use one of %s", f.Stage, strings.Join(Stages, ", "))
	}
	f.Types = config.SplitList(q["type"])
	f.Services = config.SplitList(q["service"])
	for _, w := range q["where"] {
		m, err := ParseMatch(w)
		if err != nil {
			return f, err
		}
		f.Where = append(f.Where, m)
	}
	if v := q.Get("rate"); v != "" {
		r, err := strconv.ParseFloat(v, 64)
		if err != nil || r <= 0 || r > 1 {
			return f, fmt.Errorf("rate %q: give the share of events to take, more than 0 and at most 1, e.g. 0.01", v)
		}
		f.Rate = r
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return f, fmt.Errorf("limit %q: give a number of events (0: no limit)", v)
		}
		f.Limit = n
	}
	return f, nil
}

// matchEvent checks what the wire event says: type and service.
func (f *Filter) matchEvent(ev *event.Event) bool {
	if len(f.Types) > 0 && !slices.Contains(f.Types, ev.Type) {
		return false
	}
	if len(f.Services) > 0 {
		s, _ := ev.Field("service")
		if !slices.Contains(f.Services, s) {
			return false
		}
	}
	return true
}

// matchWhere checks the where conditions on the built event.
func (f *Filter) matchWhere(e *Event) bool {
	for _, m := range f.Where {
		v, ok := e.lookup(m.Field)
		if !ok || v != m.Value {
			return false
		}
	}
	return true
}

// lookup returns a field's value as text: of the document, or of the
// input's fields and then the JSON line.
func (e *Event) lookup(field string) (string, bool) {
	if e.Document == nil {
		if v, ok := e.Fields[field]; ok {
			return v, true
		}
	}
	if !e.tried {
		e.tried = true
		src := e.Document
		if src == nil {
			src = []byte(e.Line)
		}
		if t := bytes.TrimSpace(src); len(t) > 0 && t[0] == '{' {
			d := json.NewDecoder(bytes.NewReader(t))
			d.UseNumber()
			_ = d.Decode(&e.parsed) // not JSON: no fields
		}
	}
	return lookupPath(e.parsed, field)
}

// lookupPath finds a dotted name in a JSON object, whether written nested
// ({"log":{"level":...}}), flat ({"log.level":...}) or both.
func lookupPath(obj map[string]any, name string) (string, bool) {
	if obj == nil {
		return "", false
	}
	if v, ok := obj[name]; ok {
		return text(v)
	}
	for i := strings.IndexByte(name, '.'); i >= 0; {
		if sub, ok := obj[name[:i]].(map[string]any); ok {
			if v, ok := lookupPath(sub, name[i+1:]); ok {
				return v, true
			}
		}
		j := strings.IndexByte(name[i+1:], '.')
		if j < 0 {
			break
		}
		i += 1 + j
	}
	return "", false
}

// text is a scalar JSON value as a where condition compares it.
func text(v any) (string, bool) {
	switch v := v.(type) {
	case string:
		return v, true
	case json.Number:
		return v.String(), true
	case bool:
		return strconv.FormatBool(v), true
	case nil:
		return "null", true
	}
	return "", false // objects and arrays
}

// lineEvent is a line as the shipper read it; the line is copied, for
// the reader's buffer is used again.
func lineEvent(ev *event.Event) *Event {
	e := wireEvent(StageLines, ev)
	e.Line = string(ev.Line)
	return e
}

// documentEvent is a document as the aggregator built it.
func documentEvent(ev *event.Event, index string, src []byte) *Event {
	e := wireEvent(StageDocuments, ev)
	e.Index, e.ID = index, ev.DocID()
	e.Document = bytes.Clone(src)
	return e
}

// deadLetterEvent is a record on its way to the dead letters.
func deadLetterEvent(ev *event.Event, rec *kgo.Record, status int, reason, index string) *Event {
	e := wireEvent(StageDeadLetters, ev)
	e.Line = string(rec.Value)
	e.Index, e.Reason, e.Status = index, reason, &status
	e.Topic = rec.Topic
	if rec.Topic != "" {
		p := rec.Partition
		e.Partition = &p
	}
	return e
}

func wireEvent(stage string, ev *event.Event) *Event {
	e := &Event{Stage: stage, Time: time.Now().UTC(), Type: ev.Type, Node: ev.Node, Path: ev.Path, FileID: ev.FileID,
		Fields: ev.Fields, Flags: slices.Clone(ev.Flags)}
	e.Service, _ = ev.Field("service")
	if ev.FileID != "" {
		off := ev.Offset
		e.Offset = &off
	}
	return e
}

// errTooMany is the hub's answer when as many taps as it serves are open.
var errTooMany = errors.New("too many taps open on this process; close one first")
