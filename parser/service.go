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
	// MaxFields bounds the fields the line's own members may add to the
	// index mapping (see the package documentation); 0 means
	// DefaultMaxFields.
	MaxFields int
}

// DefaultMaxFields is the default of Service.MaxFields: far more than a
// service logs, and few enough that one line takes an eighth of
// Elasticsearch's usual limit of 2,000 fields per index at most.
const DefaultMaxFields = 256

// OverflowField is the field that takes the members of a line beyond
// Service.MaxFields, as one object. Sluice's index template maps it as
// flattened: one mapped field, whatever it holds.
const OverflowField = "labels.overflow"

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
	for _, l := range leaves {
		setLeaf(doc, l.member, l.to)
	}
	limit := s.MaxFields
	if limit <= 0 {
		limit = DefaultMaxFields
	}
	bound(doc, limit)
	return nil
}

// leaves are the members the commonest loggers write as a string (zap's,
// slog's and Sluice's own "error"), whose names are ECS objects: such a
// string goes to the ECS field for it, the first of to not set already.
// Left at the root, the string would be rejected by Elasticsearch, where
// the name is mapped as an object. Objects stay as they are: they already
// are ECS's shape.
var leaves = [...]struct {
	member Key
	to     []Key
}{
	{NewKey("error"), []Key{NewKey("error.message")}},
	{NewKey("host"), []Key{NewKey("host.name")}},
	{NewKey("user"), []Key{NewKey("user.name")}},
	{NewKey("url"), []Key{NewKey("url.original")}},
	{NewKey("client"), []Key{NewKey("client.address")}},
	{NewKey("source"), []Key{NewKey("source.address")}},
	{NewKey("file"), []Key{NewKey("file.path")}},
	{NewKey("process"), []Key{NewKey("process.name")}},
	{NewKey("event"), []Key{NewKey("event.action")}},
	// Mapped as objects for correlation with nginx (trace.id, span.id).
	{NewKey("trace"), []Key{NewKey("trace.id")}},
	{NewKey("span"), []Key{NewKey("span.id")}},
	// A log string is the message when there is none (a runtime's log
	// member whose text is not JSON), else the raw event.
	{NewKey("log"), []Key{NewKey("message"), NewKey("event.original")}},
}

// setLeaf moves a scalar member to the first of the fields to that doc
// lacks, as text; a null member is dropped. The keys are hashed once, for
// every line.
func setLeaf(doc *Doc, member Key, to []Key) {
	v, ok := doc.GetKey(member)
	if !ok {
		return
	}
	if v == nil {
		doc.DeleteKey(member)
		return
	}
	switch v.(type) {
	case map[string]any, []any:
		return
	}
	for _, field := range to {
		if doc.HasKey(field) {
			continue
		}
		val, _ := aliasValue(field.String(), v) // scalars always have a text
		doc.DeleteKey(member)
		doc.SetKey(field, val)
		return
	}
}

// ownFields are the fields Parse sets itself, which bound leaves alone.
var ownFields = func() map[string]bool {
	own := map[string]bool{"@timestamp": true, "_@timestamp": true, "message": true,
		"log.level": true, "service.name": true, "service.environment": true, "organization.name": true,
		"http.request.id": true, "trace.id": true, "span.id": true}
	for _, l := range leaves {
		for _, f := range l.to {
			own[f.String()] = true
		}
	}
	return own
}()

// bound moves the line's members beyond the first limit mapped fields (each
// scalar or array one, each object one plus its members) into one
// OverflowField object, under their names: a line with thousands of keys
// would otherwise fill the index's mapping, shared with other services and
// tenants, and make their new fields fail. A document within the bound
// pays one pass over its fields.
func bound(doc *Doc, limit int) {
	fields := doc.Fields()
	if len(fields) <= limit && within(fields, limit) {
		return // the commonest case, without a lookup
	}
	n, cut := 0, -1
	for i := range fields {
		if ownFields[fields[i].Key] {
			continue
		}
		if n += mappedFields(fields[i].Value, limit-n); n > limit {
			cut = i
			break
		}
	}
	if cut < 0 {
		return
	}
	over := map[string]any{}
	if old, ok := doc.Get(OverflowField); ok {
		over[OverflowField] = old // the line's own, kept under its name
	}
	var moved []string
	for _, f := range fields[cut:] {
		if !ownFields[f.Key] && f.Key != OverflowField {
			moved = append(moved, f.Key)
			over[f.Key] = f.Value
		}
	}
	for _, k := range moved {
		doc.Delete(k)
	}
	doc.Set(OverflowField, over)
}

// within reports whether all of fields, the parser's own included, map to
// at most limit fields.
func within(fields []Field, limit int) bool {
	n := 0
	for i := range fields {
		if n += mappedFields(fields[i].Value, limit-n); n > limit {
			return false
		}
	}
	return true
}

// mappedFields counts the fields v adds to a mapping, up to more than
// limit: 1 for a scalar or a list of them, 1 plus its members' for an
// object; objects in lists count their members.
func mappedFields(v any, limit int) int {
	switch x := v.(type) {
	case map[string]any:
		n := 1
		for _, e := range x {
			if n += mappedFields(e, limit-n); n > limit {
				break
			}
		}
		return n
	case []any:
		n := 1
		for _, e := range x {
			switch e.(type) {
			case map[string]any, []any:
				if n += mappedFields(e, limit-n) - 1; n > limit {
					return n
				}
			}
		}
		return n
	}
	return 1
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
