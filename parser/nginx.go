package parser

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// nginx log_format strings Sluice knows by name.
const (
	FormatCombined     = `$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent "$http_referer" "$http_user_agent"`
	DefaultNginxFormat = FormatCombined + ` $request_time $upstream_response_time "$http_x_forwarded_for"`
)

// Nginx parses access log lines written with one log_format.
type Nginx struct {
	format string
	// lead is the literal text before the first variable.
	lead []byte
	vars []nginxVar
}

// nginxVar is a variable and the literal text that follows it up to the
// next variable ("" after the last one).
type nginxVar struct {
	name  string
	set   setter
	after []byte
}

// setter stores a variable's (unescaped, present) value into doc.
type setter func(doc Doc, v string) error

// CompileNginx compiles an nginx log_format string.
func CompileNginx(format string) (*Nginx, error) {
	if strings.TrimSpace(format) == "" {
		return nil, fmt.Errorf("empty log_format")
	}
	p := &Nginx{format: format}
	rest := format
	i := strings.IndexByte(rest, '$')
	if i < 0 {
		return nil, fmt.Errorf("log_format %q has no $variables", format)
	}
	p.lead, rest = []byte(rest[:i]), rest[i:]
	for rest != "" {
		name, n := varName(rest)
		if name == "" {
			return nil, fmt.Errorf("bad variable at %q in log_format", rest)
		}
		rest = rest[n:]
		j := strings.IndexByte(rest, '$')
		if j < 0 {
			j = len(rest)
		}
		lit := rest[:j]
		rest = rest[j:]
		if lit == "" && rest != "" {
			return nil, fmt.Errorf("variables $%s and the next one have no text between them; the line could not be split", name)
		}
		p.vars = append(p.vars, nginxVar{name: name, set: setterFor(name), after: []byte(lit)})
	}
	return p, nil
}

// varName reads "$name" or "${name}" at the start of s.
func varName(s string) (string, int) {
	if strings.HasPrefix(s, "${") {
		end := strings.IndexByte(s, '}')
		if end < 3 {
			return "", 0
		}
		return s[2:end], end + 1
	}
	n := 1
	for n < len(s) && (s[n] == '_' || s[n] >= 'a' && s[n] <= 'z' || s[n] >= 'A' && s[n] <= 'Z' || s[n] >= '0' && s[n] <= '9') {
		n++
	}
	if n == 1 {
		return "", 0
	}
	return s[1:n], n
}

// Parse parses one access log line into doc. Lines starting with '{' are
// read as nginx's escape=json style.
func (p *Nginx) Parse(line []byte, doc Doc) error {
	line = bytes.TrimRight(line, "\r\n")
	if len(line) > 0 && line[0] == '{' {
		return ParseNginxJSON(line, doc)
	}
	if !bytes.HasPrefix(line, p.lead) {
		return fmt.Errorf("%w: expected %q at the start", ErrNoMatch, p.lead)
	}
	pos := len(p.lead)
	for _, v := range p.vars {
		var val []byte
		if len(v.after) == 0 {
			val, pos = line[pos:], len(line)
		} else {
			k := bytes.Index(line[pos:], v.after)
			if k < 0 {
				return fmt.Errorf("%w: expected %q after $%s at byte %d", ErrNoMatch, v.after, v.name, pos)
			}
			val = line[pos : pos+k]
			pos += k + len(v.after)
		}
		if len(val) == 0 || (len(val) == 1 && val[0] == '-') {
			continue
		}
		if err := v.set(doc, unescape(val)); err != nil {
			return fmt.Errorf("%w: $%s: %v", ErrNoMatch, v.name, err)
		}
	}
	if pos != len(line) {
		return fmt.Errorf("%w: %d unexpected bytes at the end", ErrNoMatch, len(line)-pos)
	}
	return nil
}

// ParseNginxJSON parses an escape=json access log line: a JSON object whose
// keys are nginx variable names.
func ParseNginxJSON(line []byte, doc Doc) error {
	var obj map[string]any
	if err := json.Unmarshal(line, &obj); err != nil {
		return fmt.Errorf("%w: %v", ErrNotJSON, err)
	}
	for k, raw := range obj {
		var v string
		switch x := raw.(type) {
		case string:
			v = x
		case float64:
			v = strconv.FormatFloat(x, 'f', -1, 64)
		case bool:
			v = strconv.FormatBool(x)
		case nil:
			continue
		default:
			doc["nginx."+k] = raw
			continue
		}
		if v == "" || v == "-" {
			continue
		}
		if err := setterFor(k)(doc, v); err != nil {
			return fmt.Errorf("%w: %s: %v", ErrNoMatch, k, err)
		}
	}
	return nil
}

// unescape decodes nginx's \xHH escapes (and \" \\ from escape=default on
// newer versions).
func unescape(b []byte) string {
	if bytes.IndexByte(b, '\\') < 0 {
		return validUTF8(b)
	}
	out := make([]byte, 0, len(b))
	for i := 0; i < len(b); i++ {
		if b[i] == '\\' && i+3 < len(b) && b[i+1] == 'x' {
			if v, err := strconv.ParseUint(string(b[i+2:i+4]), 16, 8); err == nil {
				out = append(out, byte(v))
				i += 3
				continue
			}
		}
		out = append(out, b[i])
	}
	return validUTF8(out)
}

func setterFor(name string) setter {
	switch name {
	case "remote_addr":
		return func(d Doc, v string) error { d["source.ip"], d["source.address"] = v, v; return nil }
	case "remote_user":
		return str("user.name")
	case "time_local":
		return timeSetter("02/Jan/2006:15:04:05 -0700")
	case "time_iso8601":
		return timeSetter(time.RFC3339)
	case "request":
		return setRequest
	case "request_method":
		return str("http.request.method")
	case "request_uri":
		return str("url.original")
	case "uri":
		return str("url.path")
	case "server_protocol":
		return func(d Doc, v string) error { d["http.version"] = strings.TrimPrefix(v, "HTTP/"); return nil }
	case "status":
		return integer("http.response.status_code")
	case "body_bytes_sent":
		return integer("http.response.body.bytes")
	case "bytes_sent":
		return integer("http.response.bytes")
	case "request_length":
		return integer("http.request.bytes")
	case "http_referer":
		return str("http.request.referrer")
	case "http_user_agent":
		return str("user_agent.original")
	case "request_time":
		return setRequestTime
	case "upstream_response_time":
		return setUpstreamTime
	case "http_x_forwarded_for":
		return func(d Doc, v string) error {
			if list := splitList(v, ","); len(list) > 0 {
				d["nginx.x_forwarded_for"] = list
			}
			return nil
		}
	case "host", "http_host":
		return str("url.domain")
	case "upstream_addr":
		return str("nginx.upstream_addr")
	}
	return str("nginx." + name)
}

func str(key string) setter { return func(d Doc, v string) error { d[key] = v; return nil } }

func integer(key string) setter {
	return func(d Doc, v string) error {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return fmt.Errorf("%q is not a number", v)
		}
		d[key] = n
		return nil
	}
}

func timeSetter(layout string) setter {
	return func(d Doc, v string) error {
		t, err := time.Parse(layout, v)
		if err != nil {
			return fmt.Errorf("%q is not a time like %s", v, layout)
		}
		d["@timestamp"] = formatTime(t)
		return nil
	}
}

// setRequest splits "GET /path HTTP/1.1". A request line nginx could not
// parse (e.g. garbage sent to the port) is kept whole in url.original.
func setRequest(d Doc, v string) error {
	method, rest, ok := strings.Cut(v, " ")
	if !ok {
		d["url.original"] = v
		return nil
	}
	d["http.request.method"] = method
	if i := strings.LastIndexByte(rest, ' '); i >= 0 && strings.HasPrefix(rest[i+1:], "HTTP/") {
		d["url.original"] = rest[:i]
		d["http.version"] = rest[i+6:]
		return nil
	}
	d["url.original"] = rest
	return nil
}

func setRequestTime(d Doc, v string) error {
	f, err := strconv.ParseFloat(v, 64)
	if err != nil {
		return fmt.Errorf("%q is not a number of seconds", v)
	}
	d["nginx.request_time"] = f
	d["event.duration"] = int64(f * 1e9)
	return nil
}

// setUpstreamTime reads $upstream_response_time: one time per upstream
// tried, separated by ", " (or " : " across internal redirects). The total
// is what the request spent upstream.
func setUpstreamTime(d Doc, v string) error {
	parts := strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == ':' || r == ' ' })
	times := make([]float64, 0, len(parts))
	var total float64
	for _, p := range parts {
		if p == "-" {
			continue
		}
		f, err := strconv.ParseFloat(p, 64)
		if err != nil {
			return fmt.Errorf("%q is not a number of seconds", p)
		}
		times = append(times, f)
		total += f
	}
	if len(times) == 0 {
		return nil
	}
	d["nginx.upstream_response_time"] = math.Round(total*1e6) / 1e6 // nginx logs ms; drop float noise
	if len(times) > 1 {
		d["nginx.upstream_response_times"] = times
	}
	return nil
}

func splitList(v, sep string) []string {
	var out []string
	for _, p := range strings.Split(v, sep) {
		if p = strings.TrimSpace(p); p != "" && p != "-" {
			out = append(out, p)
		}
	}
	return out
}
