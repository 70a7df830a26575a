// Package parser turns raw log lines into Elasticsearch documents that use
// Elastic Common Schema (ECS) field names. Parsers are pure functions over
// bytes: no I/O, no logging, no state beyond what is compiled up front.
//
// Documents are flat maps keyed by dotted ECS names ("source.ip");
// Elasticsearch expands the dots into objects.
//
// # Service JSON (ParseService)
//
//	@timestamp, timestamp, time, ts   -> @timestamp (RFC 3339 in UTC, ms)
//	level, severity, lvl              -> log.level (lower case)
//	message, msg                      -> message
//	service                           -> service.name
//	environment, env                  -> service.environment
//	customer                          -> organization.name
//	anything else                     -> kept under its own key
//
// Timestamps may be RFC 3339 strings, "2006-01-02 15:04:05[.000]" strings
// (UTC), or numbers: epoch seconds (with a fraction) below 1e11, epoch
// milliseconds from 1e11 on. A timestamp that cannot be read is kept under
// its original key and @timestamp is left for the caller to fill. Integral
// JSON numbers become int64, others float64.
//
// # nginx access logs (Nginx)
//
// CompileNginx compiles an nginx log_format string; variables map to ECS:
//
//	remote_addr            -> source.ip, source.address
//	remote_user            -> user.name
//	time_local, time_iso8601 -> @timestamp
//	request                -> http.request.method, url.original, http.version
//	request_method         -> http.request.method
//	request_uri, uri       -> url.original / url.path
//	server_protocol        -> http.version
//	status                 -> http.response.status_code (int)
//	body_bytes_sent        -> http.response.body.bytes (int)
//	bytes_sent             -> http.response.bytes (int)
//	request_length         -> http.request.bytes (int)
//	http_referer           -> http.request.referrer
//	http_user_agent        -> user_agent.original
//	request_time           -> nginx.request_time (seconds, float) and event.duration (ns)
//	upstream_response_time -> nginx.upstream_response_time (seconds, the sum over
//	                          the upstreams tried) and nginx.upstream_response_times (list)
//	http_x_forwarded_for   -> nginx.x_forwarded_for (list of addresses)
//	host, http_host        -> url.domain
//	upstream_addr          -> nginx.upstream_addr
//	any other variable     -> nginx.<name> (string)
//
// A value of "-" means absent: the field is not set. nginx's \xHH escapes
// are decoded. Lines that start with '{' are read as nginx's escape=json
// style, a JSON object whose keys are variable names.
//
// # CRI container logs (ParseCRI)
//
// "<RFC 3339 time> <stdout|stderr> <P|F> <log>": P marks a partial line
// that the next one continues.
package parser

import (
	"errors"
	"strings"
	"unicode/utf8"
)

// Doc is one Elasticsearch document under construction: dotted ECS field
// names to values (string, int64, float64, bool, []string, []any,
// map[string]any or nil).
type Doc map[string]any

// Errors parsers wrap, for errors.Is.
var (
	ErrNotJSON   = errors.New("not JSON")
	ErrNotObject = errors.New("JSON is not an object")
	ErrNoMatch   = errors.New("line does not match the log format")
	ErrBadCRI    = errors.New("not a CRI log line")
)

// Fallback makes doc the raw-line document for a line its parser rejected:
// message is the line (invalid UTF-8 replaced), error.message says why.
func Fallback(line []byte, err error, doc Doc) {
	doc["message"] = validUTF8(line)
	doc["error.message"] = err.Error()
	doc["error.type"] = "parse"
}

func validUTF8(b []byte) string {
	if utf8.Valid(b) {
		return string(b)
	}
	return strings.ToValidUTF8(string(b), "\uFFFD")
}
