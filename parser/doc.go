// Package parser turns raw log lines into Elasticsearch documents that use
// Elastic Common Schema (ECS) field names. Parsers are pure functions over
// bytes: no I/O, no logging, no state beyond what CompileNginx compiles
// (and a memo of the last time an Nginx parser read, which never changes a
// result), so they are safe for concurrent use.
//
// Documents (Doc) are flat: fields keyed by dotted ECS names ("source.ip"),
// which the aggregator writes to _source as nested objects. Values are string, float64,
// int64, bool, []string, []float64, []any, map[string]any (nested objects
// of service JSON, and source.geo.location) or nil. Timestamps are written
// to @timestamp as RFC 3339 strings in UTC with milliseconds
// ("2026-11-25T10:00:00.123Z"). Strings in documents are valid UTF-8: each
// invalid byte is replaced by U+FFFD, as encoding/json does.
//
// A parser that rejects a line returns an error wrapping one of ErrNotJSON,
// ErrNotObject, ErrNoMatch or ErrBadCRI, and may have filled part of doc.
// The caller then clears doc and calls Fallback, which indexes the raw line
// with error.message and error.type set.
//
// # Service JSON (ParseService)
//
// Lines are JSON objects. Members are copied under their own names, nested
// objects as map[string]any and arrays as []any. JSON numbers written
// without a fraction or exponent that fit in int64 become int64; all other
// numbers become float64 (a number too large for float64 stays a string of
// its digits). Well-known members are then moved to ECS fields; each ECS
// field takes the first member present in this list, the others stay under
// their own names:
//
//	ECS field            members, best first
//	@timestamp           @timestamp, timestamp, time, ts
//	message              message, msg
//	log.level            log.level, level, severity, lvl   (lower case)
//	service.name         service.name, service
//	service.environment  service.environment, environment, env
//	organization.name    organization.name, customer
//	http.request.id      http.request.id, request_id, requestId, req_id, x_request_id
//	trace.id             trace.id, trace_id, traceId, traceID
//	span.id              span.id, span_id, spanId, spanID
//
// A traceparent member (the W3C header a service got) gives trace.id and
// span.id (its parent id) when the line has no trace id of its own, and is
// then removed. These are the fields nginx's lines put their request and
// trace ids in, so one query finds both sides of a request.
//
// The customer goes to organization.name because ECS has no customer field
// and Sluice's indexes already key tenants by organization.name.
//
// The commonest loggers write some keys as strings whose names ECS defines
// as objects (zap, slog and Sluice itself log "error": "..."); at the root
// Elasticsearch would reject such a line. A string, number or boolean under
// one of these names goes to the ECS field for it, as text, unless the
// line sets that field itself (then it stays, and the aggregator moves it
// aside); an object or array stays where it is, and null is dropped:
//
//	member    ECS field
//	error     error.message
//	host      host.name       (the aggregator then overrules it with the
//	                           node, keeping it as labels.claimed_host_name)
//	user      user.name
//	url       url.original
//	client    client.address
//	source    source.address
//	file      file.path
//	process   process.name
//	event     event.action
//	log       message if there is none, else event.original
//
// The line's other members stay at the root under their own names. One
// line may add at most Service.MaxFields fields to the index mapping
// (DefaultMaxFields, 256): each scalar or list counts one, each object one
// plus its members'; the fields above and @timestamp do not count. The
// members past the bound go, whole and under their own names, into one
// object, OverflowField (labels.overflow), which Sluice's index template
// maps as flattened: one mapped field, its keys still searchable as
// labels.overflow.<name>. Which members stay is fixed for a given line
// (mostly the first ones: taking out the well-known members moves the
// last member into its place).
//
// ECS fields take scalars: a string as it is, a number or boolean as its
// JSON text. Numeric levels of pino and bunyan (10 to 60) become their names
// (trace, debug, info, warn, error, fatal). An object or array under one of
// the member names is left where it is (a nested "service": {"name": ...}
// already is ECS), except for message, which takes it as JSON text. A null
// member is dropped.
//
// Before that, members named in Service.DecodeJSON (ParseService: "log",
// which Docker's json-file driver wraps a line in) whose value is a string
// holding a JSON object are replaced by that object's members, which win
// over members of the same name. Other strings stay as they are.
//
// Timestamps may be strings, "2006-01-02T15:04:05[.fraction]" followed by
// "Z", "+07:00", "+0700" or nothing (UTC), with a space instead of the T
// allowed and a comma allowed for the fraction point; or epoch numbers
// (also as strings of digits), whose unit is read from their magnitude:
//
//	below 1e11   seconds, with an optional fraction (1e11 s is the year 5138)
//	below 1e14   milliseconds (1e11 ms is 1973-03-03)
//	below 1e17   microseconds
//	from 1e17    nanoseconds
//
// A timestamp member that cannot be read stays under its own name and
// @timestamp is left for the caller to fill, except that an unreadable
// "@timestamp" is moved to "_@timestamp" (as Logstash does), since
// Elasticsearch maps @timestamp as a date.
//
// # nginx access logs (CompileNginx, Nginx.Parse)
//
// CompileNginx compiles an nginx log_format string: $name and ${name}
// variables with literal text between them. Parse splits a line at the
// literals: a variable's value ends at the first occurrence of the whole
// literal that follows it (the last literal must end the line). nginx's
// default escaping writes double quotes, backslashes and bytes outside
// 32..126 as \xHH, so a quoted value never contains the quote that ends it;
// Parse decodes the \xHH escapes. An unquoted value must not contain the literal that follows
// it (in the combined format, $remote_user must not contain " [").
//
//	variable                 ECS field
//	remote_addr              source.address; source.ip if it is an IP address
//	remote_user              user.name
//	time_local               @timestamp  ("25/Nov/2026:10:00:00 +0100")
//	time_iso8601             @timestamp  ("2026-11-25T10:00:00+01:00")
//	msec                     @timestamp  (epoch seconds, "1764064800.123")
//	request                  http.request.method, url.original, http.version
//	                         ("GET /a?b HTTP/1.1"; a request line with no
//	                         space, such as binary junk, goes whole to
//	                         url.original), url.path and url.query ("/a",
//	                         "b", as sent: percent-encoded)
//	request_method           http.request.method
//	request_uri              url.original, url.path, url.query
//	uri                      url.path (decoded; wins over the target's)
//	server_protocol          http.version ("HTTP/1.1" -> "1.1")
//	status                   http.response.status_code (int64)
//	body_bytes_sent          http.response.body.bytes (int64)
//	bytes_sent               http.response.bytes (int64)
//	request_length           http.request.bytes (int64)
//	http_referer             http.request.referrer
//	http_user_agent          user_agent.original (the aggregator parses it
//	                         into user_agent.name, .os.*, ...: package
//	                         useragent)
//	host, http_host          url.domain
//	server_name              url.domain, unless $host or $http_host set it
//	request_time             nginx.request_time (float64 seconds) and
//	                         event.duration (int64 nanoseconds)
//	upstream_response_time   nginx.upstream_response_time (float64 seconds)
//	upstream_connect_time    nginx.upstream_connect_time (float64 seconds)
//	upstream_header_time     nginx.upstream_header_time (float64 seconds)
//	upstream_addr            nginx.upstream_addr (string, []string if several)
//	upstream_status          nginx.upstream_status (int64, the last)
//	http_x_forwarded_for     nginx.x_forwarded_for ([]string)
//	request_id               http.request.id
//	http_x_request_id        http.request.id (wins over $request_id, which
//	                         then goes to nginx.request_id if it differs)
//	http_traceparent         trace.id and span.id (the parent id); one that
//	                         is not a valid traceparent: nginx.http_traceparent
//	otel_trace_id            trace.id
//	otel_span_id             span.id
//	any other $name          nginx.<name> (string)
//
// A value "-" or "" means absent: no field is set. Numbers and times that do
// not parse make the line fail with ErrNoMatch.
//
// $upstream_response_time lists one time per upstream server tried,
// separated by ", " (and " : " across internal redirects), "-" for a server
// that was not reached. nginx.upstream_response_time is their sum, the time
// the request spent upstream; when more than one server answered, the
// individual times are kept in nginx.upstream_response_times ([]float64).
// The upstream variables list one item per attempt the same way; the
// sums of the times, every address and the last status are set, and
// nginx.upstream_tries counts the attempts. With more than one attempt,
// nginx.upstream_attempts holds each ([]any of map[string]any with addr,
// status, response_time, connect_time and header_time, those present).
// nginx.own_time is $request_time less nginx.upstream_response_time, at
// least 0: the time nginx and the client's connection added.
// $http_x_forwarded_for is split at commas, entries trimmed, empty entries
// dropped.
//
// http.route is the request's path ($uri's, else $request_uri's or
// $request's without the query) with its ids replaced by "{id}": see
// Routes. Nginx.Routes adds rules by path prefix.
//
// A line that starts with '{' is read as an nginx escape=json log line, a
// JSON object. If the log_format given to CompileNginx is itself a JSON
// template ('{"ip":"$remote_addr",...}'), each member whose value is one
// whole variable maps like that variable, whatever its name. Other members
// are taken as variable names ("status": "200" maps like $status), and
// names that are not known variables go to nginx.<name>. Strings, numbers,
// true and false are read as the variable's text; null means absent;
// objects and arrays are kept as they are under nginx.<name>.
//
// # CRI container logs (ParseCRI)
//
// Kubernetes container runtimes write "<RFC 3339 time> <stdout|stderr>
// <P|F> <log>". P marks a partial line, continued by the next one; F the
// full line or last piece. The tag may carry more flags after ':'. A line
// without the tag is rejected; the log itself may be empty.
package parser

import (
	"errors"
	"strings"
	"unicode/utf8"
)

// Errors the parsers wrap, for errors.Is.
var (
	ErrNotJSON   = errors.New("not JSON")
	ErrNotObject = errors.New("JSON is not an object")
	ErrNoMatch   = errors.New("line does not match the log format")
	ErrBadCRI    = errors.New("not a CRI log line")
)

// Fallback makes doc the document of a line its parser rejected with err:
// message is the raw line (each invalid UTF-8 byte replaced by U+FFFD),
// error.message says why, error.type is "parse". It leaves other fields in
// doc alone; callers normally clear what the failed parser left first.
func Fallback(line []byte, err error, doc *Doc) {
	doc.Set("message", validUTF8(string(line)))
	doc.Set("error.message", err.Error())
	doc.Set("error.type", "parse")
}

// validUTF8 replaces each byte of s that is not part of a valid UTF-8
// sequence by U+FFFD.
func validUTF8(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 8)
	for _, r := range s {
		b.WriteRune(r) // ranging yields utf8.RuneError for each invalid byte
	}
	return b.String()
}
