package parser

import (
	"errors"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// field is what an nginx variable's value is stored as.
type field struct {
	kind fieldKind
	key  Key // the document key, for kindString and kindInt
}

type fieldKind uint8

const (
	kindString          fieldKind = iota // key: the value
	kindInt                              // key: the value as int64
	kindAddress                          // source.address, source.ip
	kindTimeLocal                        // @timestamp from $time_local
	kindTimeISO                          // @timestamp from $time_iso8601
	kindMsec                             // @timestamp from $msec
	kindRequest                          // method, URL and version from $request
	kindProtocol                         // http.version from $server_protocol
	kindServerName                       // url.domain unless set
	kindRequestTime                      // nginx.request_time, event.duration
	kindUpstreamTime                     // nginx.upstream_response_time(s)
	kindForwardedFor                     // nginx.x_forwarded_for
	kindUpstreamAddr                     // nginx.upstream_addr, per attempt
	kindUpstreamStatus                   // nginx.upstream_status, per attempt
	kindUpstreamConnect                  // nginx.upstream_connect_time, per attempt
	kindUpstreamHeader                   // nginx.upstream_header_time, per attempt
	kindRequestID                        // http.request.id from $request_id
	kindIncomingID                       // http.request.id from $http_x_request_id
	kindTraceparent                      // trace.id, span.id from $http_traceparent
	kindTraceID                          // trace.id
	kindSpanID                           // span.id
	kindURI                              // url.path from $uri
	kindRequestURI                       // url.original from $request_uri
)

// Keys of the fields the parser sets.
var (
	keyEventDuration              = NewKey("event.duration")
	keyHTTPRequestMethod          = NewKey("http.request.method")
	keyHTTPVersion                = NewKey("http.version")
	keyNginxRequestTime           = NewKey("nginx.request_time")
	keyNginxUpstreamResponseTime  = NewKey("nginx.upstream_response_time")
	keyNginxUpstreamResponseTimes = NewKey("nginx.upstream_response_times")
	keyNginxUpstreamConnectTime   = NewKey("nginx.upstream_connect_time")
	keyNginxUpstreamHeaderTime    = NewKey("nginx.upstream_header_time")
	keyNginxUpstreamAddr          = NewKey("nginx.upstream_addr")
	keyNginxUpstreamStatus        = NewKey("nginx.upstream_status")
	keyNginxUpstreamTries         = NewKey("nginx.upstream_tries")
	keyNginxUpstreamAttempts      = NewKey("nginx.upstream_attempts")
	keyNginxOwnTime               = NewKey("nginx.own_time")
	keyNginxRequestID             = NewKey("nginx.request_id")
	keyNginxTraceparent           = NewKey("nginx.http_traceparent")
	keyHTTPRequestID              = NewKey("http.request.id")
	keyHTTPRoute                  = NewKey("http.route")
	keyTraceID                    = NewKey("trace.id")
	keySpanID                     = NewKey("span.id")
	keyURLPath                    = NewKey("url.path")
	keyURLQuery                   = NewKey("url.query")
	keyNginxXForwardedFor         = NewKey("nginx.x_forwarded_for")
	keySourceAddress              = NewKey("source.address")
	keySourceIP                   = NewKey("source.ip")
	keyTimestamp                  = NewKey("@timestamp")
	keyURLDomain                  = NewKey("url.domain")
	keyURLOriginal                = NewKey("url.original")
)

// nginxField is the field of the nginx variable name.
func nginxField(name string) field {
	switch name {
	case "remote_addr":
		return field{kind: kindAddress}
	case "remote_user":
		return field{kindString, NewKey("user.name")}
	case "time_local":
		return field{kind: kindTimeLocal}
	case "time_iso8601":
		return field{kind: kindTimeISO}
	case "msec":
		return field{kind: kindMsec}
	case "request":
		return field{kind: kindRequest}
	case "request_method":
		return field{kindString, NewKey("http.request.method")}
	case "request_uri":
		return field{kind: kindRequestURI}
	case "uri":
		return field{kind: kindURI}
	case "server_protocol":
		return field{kind: kindProtocol}
	case "status":
		return field{kindInt, NewKey("http.response.status_code")}
	case "body_bytes_sent":
		return field{kindInt, NewKey("http.response.body.bytes")}
	case "bytes_sent":
		return field{kindInt, NewKey("http.response.bytes")}
	case "request_length":
		return field{kindInt, NewKey("http.request.bytes")}
	case "http_referer":
		return field{kindString, NewKey("http.request.referrer")}
	case "http_user_agent":
		return field{kindString, NewKey("user_agent.original")}
	case "host", "http_host":
		return field{kindString, NewKey("url.domain")}
	case "server_name":
		return field{kind: kindServerName}
	case "request_time":
		return field{kind: kindRequestTime}
	case "upstream_response_time":
		return field{kind: kindUpstreamTime}
	case "http_x_forwarded_for":
		return field{kind: kindForwardedFor}
	case "upstream_addr":
		return field{kind: kindUpstreamAddr}
	case "upstream_status":
		return field{kind: kindUpstreamStatus}
	case "upstream_connect_time":
		return field{kind: kindUpstreamConnect}
	case "upstream_header_time":
		return field{kind: kindUpstreamHeader}
	case "request_id":
		return field{kind: kindRequestID}
	case "http_x_request_id":
		return field{kind: kindIncomingID}
	case "http_traceparent":
		return field{kind: kindTraceparent}
	case "otel_trace_id":
		return field{kind: kindTraceID}
	case "otel_span_id":
		return field{kind: kindSpanID}
	}
	return field{kindString, NewKey("nginx." + name)}
}

// set stores v, a present value ("-" and "" are not), of field f in d, or
// in st for the fields that depend on one another (see finish).
func (p *Nginx) set(f field, d *Doc, v string, st *nginxLine) error {
	switch f.kind {
	case kindString:
		if f.key == keyHTTPRequestMethod {
			d.SetKey(f.key, methodValue(d, v))
		} else {
			d.SetKey(f.key, d.StringValue(v))
		}
	case kindInt:
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return errors.New("not an integer: " + strconv.Quote(clip(v)))
		}
		d.SetKey(f.key, intValue(d, n))
	case kindAddress:
		setAddress(d, v)
	case kindTimeLocal, kindTimeISO, kindMsec:
		return p.setTime(f.kind, d, v)
	case kindRequest:
		if target := setRequest(d, v); target != nil {
			st.target = target
		}
	case kindRequestURI:
		st.target = d.StringValue(v)
		d.SetKey(keyURLOriginal, st.target)
	case kindURI:
		st.uri = d.StringValue(v)
		d.SetKey(keyURLPath, st.uri)
	case kindProtocol:
		d.SetKey(keyHTTPVersion, versionValue(d, strings.TrimPrefix(v, "HTTP/")))
	case kindServerName:
		if !d.HasKey(keyURLDomain) {
			d.SetKey(keyURLDomain, d.StringValue(v))
		}
	case kindRequestTime:
		return st.setRequestTime(d, v)
	case kindForwardedFor:
		setForwardedFor(d, v)
	case kindUpstreamAddr:
		st.upstream[upAddr] = v
	case kindUpstreamStatus:
		st.upstream[upStatus] = v
	case kindUpstreamTime:
		st.upstream[upResponse] = v
	case kindUpstreamConnect:
		st.upstream[upConnect] = v
	case kindUpstreamHeader:
		st.upstream[upHeader] = v
	case kindRequestID:
		st.requestID = v
	case kindIncomingID:
		st.incomingID = v
	case kindTraceparent:
		if !setTraceparent(d, v) {
			d.SetKey(keyNginxTraceparent, d.StringValue(v))
		}
	case kindTraceID:
		d.SetKey(keyTraceID, d.StringValue(v))
	case kindSpanID:
		d.SetKey(keySpanID, d.StringValue(v))
	}
	return nil
}

// stamp is a time variable's value and the @timestamp it gives, ready to
// be stored in a document.
type stamp struct {
	kind fieldKind
	raw  string
	ts   any // string
}

// setTime sets @timestamp from a time variable of kind. Consecutive lines
// mostly share their time ($time_local has whole seconds), so the last
// value read is remembered and reused as it is.
func (p *Nginx) setTime(kind fieldKind, d *Doc, v string) error {
	if last := p.lastTime.Load(); last != nil && last.kind == kind && last.raw == v {
		d.SetKey(keyTimestamp, last.ts)
		return nil
	}
	ts, err := timestamp(kind, v)
	if err != nil {
		return err
	}
	// raw is copied: v is part of the line, which it would keep alive.
	last := &stamp{kind: kind, raw: strings.Clone(v), ts: ts}
	p.lastTime.Store(last)
	d.SetKey(keyTimestamp, last.ts)
	return nil
}

// timestamp reads v, the value of a time variable of kind, as @timestamp.
func timestamp(kind fieldKind, v string) (string, error) {
	var t time.Time
	var ok bool
	switch kind {
	case kindTimeLocal:
		t, ok = parseTimeLocal(v)
	case kindTimeISO:
		t, ok = parseDateTime(v)
	default:
		t, ok = parseEpoch(v)
	}
	if !ok {
		return "", errors.New("not a time: " + strconv.Quote(clip(v)))
	}
	return formatTime(t), nil
}

// setAddress sets source.address, and source.ip if v is an IP address
// ($remote_addr is "unix:" for connections over a Unix socket), without
// the zone of an IPv6 address, which Elasticsearch does not take.
func setAddress(d *Doc, v string) {
	a := d.StringValue(v)
	d.SetKey(keySourceAddress, a)
	ip, err := netip.ParseAddr(v)
	switch {
	case err != nil:
	case ip.Zone() != "":
		d.SetKey(keySourceIP, d.StringValue(v[:strings.IndexByte(v, '%')]))
	default:
		d.SetKey(keySourceIP, a)
	}
}

// setRequest splits a request line, "GET /path HTTP/1.1". A request line
// nginx could not parse (bytes sent to the wrong port) goes whole to
// url.original. It returns the request target as set in url.original, or
// nil if it is not a path.
func setRequest(d *Doc, v string) any {
	method, rest, ok := strings.Cut(v, " ")
	if !ok {
		d.SetKey(keyURLOriginal, d.StringValue(v))
		return nil
	}
	d.SetKey(keyHTTPRequestMethod, methodValue(d, method))
	if i := strings.LastIndexByte(rest, ' '); i >= 0 && strings.HasPrefix(rest[i+1:], "HTTP/") {
		d.SetKey(keyHTTPVersion, versionValue(d, rest[i+1+len("HTTP/"):]))
		rest = rest[:i]
	}
	if rest == "" {
		return nil
	}
	target := d.StringValue(rest)
	d.SetKey(keyURLOriginal, target)
	return target
}

// parseSeconds reads a non-negative decimal number of seconds, "0.124", as
// nanoseconds, exactly; digits past the nanosecond are dropped.
func parseSeconds(s string) (int64, bool) {
	whole, frac, _ := strings.Cut(s, ".")
	if whole == "" || len(whole) > 10 {
		return 0, false
	}
	var ns int64
	for i := 0; i < len(whole); i++ {
		c := whole[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		ns = ns*10 + int64(c-'0')
	}
	if ns > 9e9 { // keeps the nanoseconds in an int64
		return 0, false
	}
	ns *= 1e9
	scale := int64(1e8)
	for i := 0; i < len(frac); i++ {
		c := frac[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		ns += int64(c-'0') * scale
		scale /= 10
	}
	return ns, true
}

// setForwardedFor splits $http_x_forwarded_for at commas.
func setForwardedFor(d *Doc, v string) {
	if list := d.listValue(v); list != nil {
		d.SetKey(keyNginxXForwardedFor, list)
	}
}

// Values most lines share, as document values. A constant stored in an
// interface needs no allocation; any other value is stored as it is.

// methodValue returns a request method as a document value.
func methodValue(d *Doc, m string) any {
	switch m {
	case "GET":
		return "GET"
	case "POST":
		return "POST"
	case "HEAD":
		return "HEAD"
	case "PUT":
		return "PUT"
	case "DELETE":
		return "DELETE"
	case "OPTIONS":
		return "OPTIONS"
	case "PATCH":
		return "PATCH"
	}
	return d.StringValue(m)
}

// versionValue returns an HTTP version as a document value.
func versionValue(d *Doc, v string) any {
	switch v {
	case "1.1":
		return "1.1"
	case "2.0":
		return "2.0"
	case "1.0":
		return "1.0"
	case "3.0":
		return "3.0"
	}
	return d.StringValue(v)
}

// intValue returns n as a document value. Go stores 0 to 255 in
// interfaces without allocating; common status codes are constants.
func intValue(d *Doc, n int64) any {
	switch n {
	case 301:
		return int64(301)
	case 302:
		return int64(302)
	case 304:
		return int64(304)
	case 400:
		return int64(400)
	case 401:
		return int64(401)
	case 403:
		return int64(403)
	case 404:
		return int64(404)
	case 429:
		return int64(429)
	case 499:
		return int64(499)
	case 500:
		return int64(500)
	case 502:
		return int64(502)
	case 503:
		return int64(503)
	case 504:
		return int64(504)
	}
	if n >= 0 && n < 256 {
		return n // no allocation
	}
	return d.IntValue(n)
}
