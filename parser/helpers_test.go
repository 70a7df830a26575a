package parser

import (
	"encoding/json"
	"fmt"
	"math"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// fields is what tests expect a document to hold.
type fields = map[string]any

// checkDoc fails t unless doc holds only the value types Doc allows, valid
// UTF-8 strings and finite numbers, and encodes as JSON.
func checkDoc(t *testing.T, doc *Doc) {
	t.Helper()
	for k, v := range doc.All() {
		if !utf8.ValidString(k) {
			t.Errorf("key %q is not UTF-8", k)
		}
		if err := checkValue(v); err != "" {
			t.Errorf("%s: %s", k, err)
		}
	}
	if _, err := json.Marshal(doc); err != nil {
		t.Errorf("document does not encode: %v", err)
	}
}

func checkValue(v any) string {
	switch x := v.(type) {
	case nil, bool, int64:
	case string:
		if !utf8.ValidString(x) {
			return "not UTF-8: " + strconv.Quote(x)
		}
	case float64:
		if math.IsInf(x, 0) || math.IsNaN(x) {
			return "not finite"
		}
	case []string:
		for _, e := range x {
			if msg := checkValue(e); msg != "" {
				return msg
			}
		}
	case []float64:
		for _, e := range x {
			if msg := checkValue(e); msg != "" {
				return msg
			}
		}
	case []any:
		for _, e := range x {
			if msg := checkValue(e); msg != "" {
				return msg
			}
		}
	case map[string]any:
		for k, e := range x {
			if !utf8.ValidString(k) {
				return "key not UTF-8: " + strconv.Quote(k)
			}
			if msg := checkValue(e); msg != "" {
				return msg
			}
		}
	default:
		return fmt.Sprintf("unexpected type %T", v)
	}
	return ""
}

// nginxEscape escapes s as nginx's default log escaping does.
func nginxEscape(s string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '"' || c == '\\' || c < 32 || c > 126 {
			b.WriteString(`\x`)
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&15])
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

// access is the content of one access log line in the default format.
type access struct {
	addr          netip.Addr // invalid: "unix:"
	user          string
	time          time.Time
	method        string
	target        string
	version       string
	status        uint16
	bytes         uint32
	referrer      string
	agent         string
	requestMillis uint32
	upstream      []uint16 // milliseconds of each upstream tried
	redirect      bool     // upstream times separated by " : "
	forwardedFor  string
}

// line renders a as nginx writes it with DefaultNginxFormat.
func (a access) line() string {
	addr := "unix:"
	if a.addr.IsValid() {
		addr = a.addr.String()
	}
	up := "-"
	if len(a.upstream) > 0 {
		parts := make([]string, len(a.upstream))
		for i, ms := range a.upstream {
			parts[i] = millis(uint32(ms))
		}
		sep := ", "
		if a.redirect {
			sep = " : "
		}
		up = strings.Join(parts, sep)
	}
	req := a.method + " " + a.target + " HTTP/" + a.version
	return strings.Join([]string{
		nginxEscape(addr), " - ", dash(nginxEscape(a.user)),
		" [", a.time.Format("02/Jan/2006:15:04:05 -0700"), `] "`, nginxEscape(req), `" `,
		strconv.Itoa(int(a.status)), " ", strconv.Itoa(int(a.bytes)),
		` "`, dash(nginxEscape(a.referrer)), `" "`, dash(nginxEscape(a.agent)), `" `,
		millis(a.requestMillis), " ", up, ` "`, nginxEscape(a.forwardedFor), `"`,
	}, "")
}

// doc is the document a's line must parse to.
func (a access) doc() fields {
	d := fields{
		"@timestamp":                a.time.UTC().Format("2006-01-02T15:04:05.000Z"),
		"http.request.method":       validUTF8(a.method),
		"http.version":              validUTF8(a.version),
		"http.response.status_code": int64(a.status),
		"http.response.body.bytes":  int64(a.bytes),
		"nginx.request_time":        float64(a.requestMillis) / 1e3,
		"event.duration":            int64(a.requestMillis) * 1e6,
	}
	d["source.address"] = "unix:"
	if a.addr.IsValid() {
		d["source.address"] = a.addr.String()
		d["source.ip"] = a.addr.WithZone("").String()
	}
	setPresent(d, "user.name", a.user)
	if a.target != "" {
		d["url.original"] = validUTF8(a.target)
		if strings.HasPrefix(a.target, "/") {
			d["http.route"] = refRoute(validUTF8(a.target))
			path, query, _ := strings.Cut(validUTF8(a.target), "?")
			d["url.path"] = path
			if query != "" {
				d["url.query"] = query
			}
		}
	}
	setPresent(d, "http.request.referrer", a.referrer)
	setPresent(d, "user_agent.original", a.agent)
	var total uint32
	var times []float64
	for _, ms := range a.upstream {
		total += uint32(ms)
		times = append(times, float64(ms)/1e3)
	}
	if len(times) > 0 {
		d["nginx.upstream_response_time"] = float64(total) / 1e3
		d["nginx.own_time"] = float64(max(int64(a.requestMillis)-int64(total), 0)) / 1e3
	}
	if len(times) > 1 {
		d["nginx.upstream_response_times"] = times
		var attempts []any
		for _, t := range times {
			attempts = append(attempts, map[string]any{"response_time": t})
		}
		d["nginx.upstream_attempts"] = attempts
		d["nginx.upstream_tries"] = int64(len(times))
	}
	var xff []string
	for _, s := range strings.Split(validUTF8(a.forwardedFor), ",") {
		if s = strings.TrimSpace(s); s != "" {
			xff = append(xff, s)
		}
	}
	if xff != nil && a.forwardedFor != "-" {
		d["nginx.x_forwarded_for"] = xff
	}
	return d
}

func setPresent(d fields, key, v string) {
	if v != "" && v != "-" {
		d[key] = validUTF8(v)
	}
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func millis(ms uint32) string {
	return strconv.Itoa(int(ms/1000)) + "." + strconv.Itoa(int(1000 + ms%1000))[1:]
}
