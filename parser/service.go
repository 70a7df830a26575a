package parser

import (
	"encoding/json"
	"strconv"
	"strings"
	"time"
)

// DefaultDecodeJSON are the members whose JSON text ParseService decodes:
// Docker's json-file log member, which wraps what the service wrote.
var DefaultDecodeJSON = []string{"log"}

// Service parses service JSON lines.
type Service struct {
	// DecodeJSON names members that may hold a JSON object as a string
	// (a log wrapped by a runtime or a forwarder): such an object's members
	// replace the member, as if the line had held them itself.
	DecodeJSON []string
}

// ParseService parses a line as Service{DecodeJSON: DefaultDecodeJSON} does.
func ParseService(line []byte, doc *Doc) error {
	return Service{DecodeJSON: DefaultDecodeJSON}.Parse(line, doc)
}

// Parse parses a service's JSON log line, one JSON object, into doc
// (normally empty): its members under their own names, well-known ones moved
// to ECS fields (see the package documentation). A line that is not JSON returns an error
// wrapping ErrNotJSON; JSON that is not an object, ErrNotObject.
func (s Service) Parse(line []byte, doc *Doc) error {
	r, err := objectReader(line)
	if err != nil {
		return err
	}
	r.members(func(name string) { doc.Set(name, r.value()) })
	if err := r.finish(line); err != nil {
		return err
	}
	for _, name := range s.DecodeJSON {
		decodeJSONMember(doc, name)
	}
	setServiceTime(doc)
	// One pass over the members finds the aliases that have one to take,
	// rather than looking for each name in turn.
	var present uint16
	for _, f := range doc.Fields() {
		present |= aliasMembers[f.Key]
	}
	for i, a := range serviceAliases {
		if present&(1<<i) != 0 {
			setAlias(doc, a.field, a.from)
		}
	}
	if present&traceparentBit != 0 {
		setServiceTraceparent(doc)
	}
	return nil
}

// serviceAliases are the ECS fields and the members they take, best first.
var serviceAliases = [...]struct {
	field string
	from  []string
}{
	{"message", []string{"message", "msg"}},
	{"log.level", []string{"log.level", "level", "severity", "lvl"}},
	{"service.name", []string{"service.name", "service"}},
	{"service.environment", []string{"service.environment", "environment", "env"}},
	{"organization.name", []string{"organization.name", "customer"}},
	// The ids nginx's access lines carry too, so that one query finds
	// a request's lines on both sides.
	{"http.request.id", []string{"http.request.id", "request_id", "requestId", "req_id", "x_request_id"}},
	{"trace.id", []string{"trace.id", "trace_id", "traceId", "traceID"}},
	{"span.id", []string{"span.id", "span_id", "spanId", "spanID"}},
}

// aliasMembers maps each member name of serviceAliases to its alias's bit,
// and traceparent to traceparentBit.
var aliasMembers = func() map[string]uint16 {
	m := map[string]uint16{"traceparent": traceparentBit}
	for i, a := range serviceAliases {
		for _, name := range a.from {
			m[name] |= 1 << i
		}
	}
	return m
}()

const traceparentBit = 1 << 15

// setServiceTraceparent reads a traceparent member, the header a service
// got, into trace.id and span.id when the line has no trace id of its own.
func setServiceTraceparent(doc *Doc) {
	v, ok := doc.Get("traceparent")
	if !ok {
		return
	}
	s, ok := v.(string)
	if !ok || doc.HasKey(keyTraceID) {
		return
	}
	traceID, spanID, ok := parseTraceparent(s)
	if !ok {
		return
	}
	doc.Delete("traceparent")
	doc.SetKey(keyTraceID, traceID)
	if !doc.HasKey(keySpanID) {
		doc.SetKey(keySpanID, spanID)
	}
}

// setServiceTime sets @timestamp from the first timestamp member that can be
// read, which it removes.
func setServiceTime(doc *Doc) {
	if v, ok := doc.Get("@timestamp"); ok {
		if t, ok := parseTimestamp(v); ok {
			doc.Set("@timestamp", formatTime(t))
			return
		}
		doc.Delete("@timestamp")
		doc.Set("_@timestamp", v)
	}
	for _, name := range [...]string{"timestamp", "time", "ts"} {
		v, _ := doc.Get(name)
		if t, ok := parseTimestamp(v); ok {
			doc.Delete(name)
			doc.Set("@timestamp", formatTime(t))
			return
		}
	}
}

// parseTimestamp reads a date-time string or an epoch number.
func parseTimestamp(v any) (time.Time, bool) {
	switch x := v.(type) {
	case string:
		if t, ok := parseDateTime(x); ok {
			return t, true
		}
		return parseEpoch(x)
	case int64:
		return epochInt(x)
	case float64:
		return epochFloat(x)
	}
	return time.Time{}, false
}

// setAlias moves the first of the members from that doc has, and that holds
// a value field can take, to field. Null members are dropped on the way.
func setAlias(doc *Doc, field string, from []string) {
	for _, name := range from {
		v, ok := doc.Get(name)
		if !ok {
			continue
		}
		if v == nil {
			doc.Delete(name)
			continue
		}
		val, ok := aliasValue(field, v)
		if !ok {
			continue
		}
		doc.Delete(name)
		doc.Set(field, val)
		return
	}
}

// aliasValue is v as the string that field is mapped as, so that a service
// logging "level": 30 does not cause a mapping conflict. Only message takes
// an object or array, as JSON text.
func aliasValue(field string, v any) (any, bool) {
	switch x := v.(type) {
	case string:
		if field != "log.level" {
			return v, true
		}
		return strings.ToLower(x), true
	case int64:
		if name, ok := pinoLevel(x); ok && field == "log.level" {
			return name, true
		}
		return strconv.FormatInt(x, 10), true
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64), true
	case bool:
		return strconv.FormatBool(x), true
	}
	if field != "message" {
		return nil, false
	}
	return jsonText(v), true
}

// jsonText encodes v, decoded from JSON, as compact JSON without HTML
// escapes.
func jsonText(v any) string {
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v) // values decoded from JSON encode
	return strings.TrimSuffix(b.String(), "\n")
}

// pinoLevel names the numeric levels of pino and bunyan.
func pinoLevel(n int64) (string, bool) {
	switch n {
	case 10:
		return "trace", true
	case 20:
		return "debug", true
	case 30:
		return "info", true
	case 40:
		return "warn", true
	case 50:
		return "error", true
	case 60:
		return "fatal", true
	}
	return "", false
}

// decodeJSONMember replaces member name, if it is a string holding a JSON
// object, by that object's members, which take the place of members of the
// same name (the wrapper's, such as Docker's stream and time, say less than
// what the service wrote). Anything else stays as it is. A line without the
// member pays one lookup.
func decodeJSONMember(doc *Doc, name string) {
	v, ok := doc.Get(name)
	if !ok {
		return
	}
	text, ok := v.(string)
	if !ok {
		return
	}
	r := jsonReader{s: text, valid: true} // document strings are valid UTF-8
	r.space()
	if r.next() != '{' {
		return
	}
	type member struct {
		name string
		v    any
	}
	var members []member
	r.members(func(name string) { members = append(members, member{name, r.value()}) })
	r.space()
	if r.bad || r.i != len(text) {
		return // not JSON: the text stays
	}
	doc.Delete(name)
	for _, m := range members {
		doc.Set(m.name, m.v)
	}
}
