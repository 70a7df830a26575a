package parser

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestParseServiceErrors(t *testing.T) {
	tests := []struct {
		line string
		want error
	}{
		{`not json`, ErrNotJSON},
		{`[1,2]`, ErrNotObject},
		{`"s"`, ErrNotObject},
		{`12`, ErrNotObject},
		{` null `, ErrNotObject},
		{`{"a":`, ErrNotJSON},
		{`{"a":1}}`, ErrNotJSON},
		{``, ErrNotJSON},
		{"\xff", ErrNotJSON},
	}
	for _, tt := range tests {
		if err := ParseService([]byte(tt.line), &Doc{}); !errors.Is(err, tt.want) {
			t.Errorf("ParseService(%q) = %v, want %v", tt.line, err, tt.want)
		}
	}
}

func TestParseService(t *testing.T) {
	tests := []struct {
		name, line string
		want       fields
	}{
		{"aliases", `{"msg":"m","lvl":"WARN","service":"s","env":"e","customer":"c"}`,
			fields{"message": "m", "log.level": "warn", "service.name": "s", "service.environment": "e", "organization.name": "c"}},
		{"losing alias stays", `{"severity":"x","level":"y"}`, fields{"log.level": "y", "severity": "x"}},
		{"object alias stays", `{"env":{"PATH":"/bin"}}`, fields{"env": map[string]any{"PATH": "/bin"}}},
		{"array message", `{"msg":[1,"<a>"]}`, fields{"message": `[1,"<a>"]`}},
		{"bunyan fatal", `{"level":60}`, fields{"log.level": "fatal"}},
		{"float level", `{"level":30.5}`, fields{"log.level": "30.5"}},
		{"null alias dropped", `{"service":null}`, fields{}},
		{"time consumed", `{"time":"2026-11-25T10:00:00Z","x":1}`, fields{"@timestamp": "2026-11-25T10:00:00.000Z", "x": int64(1)}},
		{"numbers", `{"i":-12,"f":1.5,"e":2E2,"big":123456789012345678901}`,
			fields{"i": int64(-12), "f": 1.5, "e": 200.0, "big": 123456789012345678901.0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc := &Doc{}
			if err := ParseService([]byte(tt.line), doc); err != nil {
				t.Fatal(err)
			}
			if got := doc.Map(); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got  %#v\nwant %#v", got, tt.want)
			}
		})
	}
}

func TestParseServiceLongLine(t *testing.T) {
	msg := strings.Repeat("long message é ", 1<<16) // 1 MiB
	line, _ := json.Marshal(map[string]any{"msg": msg, "level": "info"})
	doc := &Doc{}
	if err := ParseService(line, doc); err != nil {
		t.Fatal(err)
	}
	if got, _ := doc.Get("message"); got != msg {
		t.Errorf("message of %d bytes came back as %d bytes", len(msg), len(got.(string)))
	}
}

func TestParseTimestamp(t *testing.T) {
	at := func(s string) time.Time {
		t.Helper()
		tm, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			t.Fatal(err)
		}
		return tm
	}
	tests := []struct {
		in   any
		want time.Time
		ok   bool
	}{
		{int64(1e11 - 1), time.Unix(1e11-1, 0), true}, // the largest epoch in seconds
		{int64(1e11), time.UnixMilli(1e11), true},     // the smallest in milliseconds
		{int64(1e14), time.UnixMicro(1e14), true},
		{int64(1e17), time.Unix(0, 1e17), true},
		{int64(math.MaxInt64), time.Unix(0, math.MaxInt64), true},
		{int64(-1), time.Time{}, false},
		{1764064800.25, at("2025-11-25T10:00:00.25Z"), true},
		{1764064800123.0, at("2025-11-25T10:00:00.123Z"), true},
		{1e19, time.Time{}, false},
		{math.Inf(1), time.Time{}, false},
		{"1764064800", at("2025-11-25T10:00:00Z"), true},
		{"1764064800.5.5", time.Time{}, false},
		{"+1764064800", time.Time{}, false},
		{"1e9", time.Time{}, false},
		{"", time.Time{}, false},
		{"2026-11-25T10:00:00.123456789Z", at("2026-11-25T10:00:00.123456789Z"), true},
		{"2026-11-25T10:00:00-0130", at("2026-11-25T11:30:00Z"), true},
		{"2026-11-25T10:00:00 +01:00", time.Time{}, false},
		{"2026-11-25T10:00:00.5.5", time.Time{}, false},
		{"2026-02-29T10:00:00Z", time.Time{}, false},
		{true, time.Time{}, false},
		{nil, time.Time{}, false},
	}
	for _, tt := range tests {
		got, ok := parseTimestamp(tt.in)
		if ok != tt.ok || !got.Equal(tt.want) {
			t.Errorf("parseTimestamp(%#v) = %v, %v; want %v, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

func TestFormatTime(t *testing.T) {
	in := time.Date(2026, 11, 25, 11, 0, 0, 123999999, time.FixedZone("", 3600))
	if got := formatTime(in); got != "2026-11-25T10:00:00.123Z" {
		t.Errorf("formatTime = %s", got)
	}
}

func TestFallback(t *testing.T) {
	doc := &Doc{}
	Fallback([]byte("bad \xff\xfe line"), ErrNotJSON, doc)
	want := fields{"message": "bad \uFFFD\uFFFD line", "error.message": "not JSON", "error.type": "parse"}
	if got := doc.Map(); !reflect.DeepEqual(got, want) {
		t.Errorf("got %#v, want %#v", got, want)
	}
}

// TestJSONReader checks the reader against encoding/json.
func TestJSONReader(t *testing.T) {
	for _, in := range []string{
		`{}`, `{"a":[]}`, `{"a":[[],[{}]]}`, ` { "a" : 1 , "b" : [ 1 , 2 ] } `,
		`{"s":"\"\\\/\b\f\n\r\t\u0041\u00e9\u20ac\ud83d\ude00"}`,
		`{"lone":"\ud800x","pair-bad":"\ud800\u0041","low":"\udc00","hi-hi":"\ud800\ud800"}`,
		"{\"raw\":\"\xff\xc3\xa9\xe2\x82\",\"k\xfe\":\"\\u00e9\xc3\"}",
		`{"n":[0,-0,1e2,1E+2,1.5e-3,-9223372036854775808,9223372036854775808,1e309,-1e309]}`,
		`{"t":true,"f":false,"n":null,"nested":{"a":{"b":{"c":[true,null]}}}}`,
	} {
		r, err := objectReader([]byte(in))
		if err != nil {
			t.Fatalf("%s: %v", in, err)
		}
		if got, want := r.value(), decodeStd(t, []byte(in)); !reflect.DeepEqual(got, want) {
			t.Errorf("%s:\n got %#v\nwant %#v", in, got, want)
		}
	}
}

// decodeStd decodes with encoding/json and converts numbers as the reader
// does.
func decodeStd(t testing.TB, line []byte) any {
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		t.Fatal(err)
	}
	return stdNumbers(v)
}

func stdNumbers(v any) any {
	switch x := v.(type) {
	case json.Number:
		if !strings.ContainsAny(string(x), ".eE") {
			if n, err := strconv.ParseInt(string(x), 10, 64); err == nil {
				return n
			}
		}
		if f, err := strconv.ParseFloat(string(x), 64); !math.IsInf(f, 0) || err == nil {
			return f
		}
		return string(x)
	case map[string]any:
		for k, e := range x {
			x[k] = stdNumbers(e)
		}
	case []any:
		for i, e := range x {
			x[i] = stdNumbers(e)
		}
	}
	return v
}

// TestJSONReaderSyntax checks that the reader accepts what encoding/json
// accepts.
func TestJSONReaderSyntax(t *testing.T) {
	deep := func(n int) string { return `{"a":` + strings.Repeat("[", n-1) + strings.Repeat("]", n-1) + "}" }
	for _, in := range []string{
		`{`, `{"a"}`, `{"a":}`, `{"a":1,}`, `{"a":1 "b":2}`, `{,}`, `{"a":[1,]}`, `{"a":[,1]}`,
		`{"a":01}`, `{"a":-}`, `{"a":1.}`, `{"a":.1}`, `{"a":1e}`, `{"a":1e+}`, `{"a":+1}`, `{"a":0x1}`,
		`{"a":tru}`, `{"a":nul}`, `{"a":True}`, `{"a":"\x"}`, `{"a":"\u12"}`, `{"a":"\u12G4"}`,
		"{\"a\":\"\t\"}", `{"a":"unterminated}`, `{"a\`, `{"a":"\`, `{"a":[}`, `{"a":{]}`, `{a:1}`,
		`{"a":1}}`, `{"a":1} {}`, `{"a":1}  `, `{"a":-0.0e-0}`, `{"a":"\ud800\u"}`,
		deep(maxDepth), deep(maxDepth + 1),
	} {
		r, err := objectReader([]byte(in))
		if err == nil {
			r.value()
			err = r.finish([]byte(in))
		}
		if valid := json.Valid([]byte(in)); (err == nil) != valid {
			t.Errorf("%.40q: reader says %v, json.Valid %v", in, err, valid)
		}
	}
}

func TestServiceDecodeJSON(t *testing.T) {
	line := []byte(`{"log":"{\"message\":\"Hello world\",\"level\":\"info\"}\n","stream":"stdout"}`)
	doc := NewDoc(8)
	if err := ParseService(line, doc); err != nil {
		t.Fatal(err)
	}
	if v, _ := doc.Get("message"); v != "Hello world" || doc.Has("log") {
		t.Fatalf("ParseService = %v, want message Hello world and no log", doc.Map())
	}
	// Other members are named by the configuration; none decodes nothing.
	doc.Reset()
	if err := (Service{DecodeJSON: []string{"payload"}}).Parse([]byte(`{"payload":"{\"msg\":\"inner\"}","log":"{\"a\":1}"}`), doc); err != nil {
		t.Fatal(err)
	}
	// The log member not decoded is a string beside a message: the raw
	// event.
	if v, _ := doc.Get("message"); v != "inner" || !doc.Has("event.original") {
		t.Fatalf("DecodeJSON payload = %v", doc.Map())
	}
	doc.Reset()
	if err := (Service{}).Parse(line, doc); err != nil {
		t.Fatal(err)
	}
	// Not decoded, and with no message, the log string is the message.
	if v, _ := doc.Get("message"); v != "{\"message\":\"Hello world\",\"level\":\"info\"}\n" || doc.Has("log") {
		t.Fatalf("no DecodeJSON = %v", doc.Map())
	}
}

// A line's members beyond MaxFields mapped fields go into one overflow
// object; the fields Parse sets itself never do, and a document within the
// bound is left alone.
func TestParseServiceBound(t *testing.T) {
	tests := []struct {
		name, line string
		max        int
		want       fields
	}{
		{"within", `{"msg":"m","a":1,"b":2}`, 2, fields{"message": "m", "a": int64(1), "b": int64(2)}},
		{"beyond", `{"msg":"m","level":"info","a":1,"b":2,"c":3}`, 2,
			fields{"message": "m", "log.level": "info", "a": int64(1), "b": int64(2), OverflowField: map[string]any{"c": int64(3)}}},
		{"object counts its members", `{"a":1,"o":{"x":1,"y":{"z":2}},"b":2}`, 4,
			fields{"a": int64(1), OverflowField: map[string]any{"o": map[string]any{"x": int64(1), "y": map[string]any{"z": int64(2)}}, "b": int64(2)}}},
		{"objects in lists count", `{"l":[{"x":1,"y":2}],"b":2}`, 3,
			fields{"l": []any{map[string]any{"x": int64(1), "y": int64(2)}}, OverflowField: map[string]any{"b": int64(2)}}},
		{"the line's own overflow is kept", `{"a":1,"labels.overflow":"mine","b":2}`, 1,
			fields{"a": int64(1), OverflowField: map[string]any{OverflowField: "mine", "b": int64(2)}}},
		{"ECS leaves stay", `{"a":1,"b":2,"error":"e","host":"h"}`, 1,
			fields{"a": int64(1), "error.message": "e", "host.name": "h", OverflowField: map[string]any{"b": int64(2)}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc := &Doc{}
			if err := (Service{MaxFields: tt.max}).Parse([]byte(tt.line), doc); err != nil {
				t.Fatal(err)
			}
			if got := doc.Map(); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got  %#v\nwant %#v", got, tt.want)
			}
		})
	}
}

// One line of 1,950 keys adds at most DefaultMaxFields fields; the rest are
// in the overflow object, none lost.
func TestParseServiceManyKeys(t *testing.T) {
	var b strings.Builder
	b.WriteString(`{"msg":"wide"`)
	for i := range 1950 {
		fmt.Fprintf(&b, `,"k%d":%d`, i, i)
	}
	b.WriteString("}")
	doc := &Doc{}
	if err := ParseService([]byte(b.String()), doc); err != nil {
		t.Fatal(err)
	}
	over, _ := doc.Get(OverflowField)
	m, _ := over.(map[string]any)
	// message, the kept keys and the overflow object.
	if kept := doc.Len() - 2; kept != DefaultMaxFields || kept+len(m) != 1950 {
		t.Fatalf("%d keys kept at the root and %d in %s, want %d and %d", kept, len(m), OverflowField, DefaultMaxFields, 1950-DefaultMaxFields)
	}
}

// TestServiceCorrelationIDs: the request and trace ids services write
// under their usual names land in the fields nginx's lines use.
func TestServiceCorrelationIDs(t *testing.T) {
	tests := []struct {
		line string
		want map[string]any
	}{
		{`{"request_id":"0af7651916cd43dd8448eb211c80319c","trace_id":"4bf92f3577b34da6a3ce929d0e0e4736","span_id":"a3ce929d0e0e4736"}`,
			map[string]any{"http.request.id": "0af7651916cd43dd8448eb211c80319c", "trace.id": "4bf92f3577b34da6a3ce929d0e0e4736", "span.id": "a3ce929d0e0e4736"}},
		{`{"requestId":42,"traceId":"t","spanId":"s"}`,
			map[string]any{"http.request.id": "42", "trace.id": "t", "span.id": "s"}},
		{`{"req_id":"r","x_request_id":"x"}`, map[string]any{"http.request.id": "r", "x_request_id": "x"}},
		{`{"traceparent":"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}`,
			map[string]any{"trace.id": "4bf92f3577b34da6a3ce929d0e0e4736", "span.id": "00f067aa0ba902b7"}},
		{`{"traceparent":"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01","span_id":"mine"}`,
			map[string]any{"trace.id": "4bf92f3577b34da6a3ce929d0e0e4736", "span.id": "mine"}},
		{`{"traceparent":"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01","trace_id":"other"}`,
			map[string]any{"trace.id": "other", "traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}},
		{`{"traceparent":"junk"}`, map[string]any{"traceparent": "junk"}},
		{`{"trace_id":{"nested":1}}`, map[string]any{"trace_id": map[string]any{"nested": int64(1)}}},
	}
	for _, tt := range tests {
		doc := &Doc{}
		if err := ParseService([]byte(tt.line), doc); err != nil {
			t.Fatal(err)
		}
		if got := doc.Map(); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s:\n got %#v\nwant %#v", tt.line, got, tt.want)
		}
	}
}
