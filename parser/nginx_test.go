package parser

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestCompileNginx(t *testing.T) {
	p, err := CompileNginx(`[$a] ${b}c$d_1"`)
	if err != nil {
		t.Fatal(err)
	}
	want := []nginxVar{
		{name: "a", field: nginxField("a"), after: "] "},
		{name: "b", field: nginxField("b"), after: "c"},
		{name: "d_1", field: nginxField("d_1"), after: `"`},
	}
	if p.lead != "[" || !reflect.DeepEqual(p.vars, want) || p.members != nil {
		t.Errorf("got %+v", p)
	}
}

func TestCompileNginxErrors(t *testing.T) {
	for _, f := range []string{"", "no variables", "$a$b", "${a}$b", "$", "$ x", "${}", "${a", "${a b}", "a $-"} {
		if _, err := CompileNginx(f); err == nil {
			t.Errorf("CompileNginx(%q) succeeded", f)
		}
	}
}

func TestJSONMemberName(t *testing.T) {
	tests := []struct {
		before, after, want string
		ok                  bool
	}{
		{`{"ip":"`, `","`, "ip", true},
		{`{"status":`, `,"x":"`, "status", true},
		{`{ "status" : `, ` }`, "status", true},
		{`,"last":"`, `"}`, "last", true},
		{`,"last":`, ``, "last", true},
		{"\"t\":\t\"", "\"\n}", "t", true},
		{`{"é":"`, `"}`, "é", true},
		{`"":"`, `"}`, "", true},
		{`"pair":"`, `://`, "", false}, // not the whole value
		{`://`, `"}`, "", false},       // not after a name
		{`"a":"`, `,`, "", false},      // opening quote not closed
		{`"a\"b":"`, `"}`, "", false},  // escaped name
		{`x:"`, `"}`, "", false},       // unquoted name
		{`"q":"x`, `"}`, "", false},    // text before the variable
		{`{"k":$`, `","`, "", false},   // not JSON around it
	}
	for _, tt := range tests {
		got, ok := jsonMemberName(tt.before, tt.after)
		if got != tt.want || ok != tt.ok {
			t.Errorf("jsonMemberName(%q, %q) = %q, %v; want %q, %v", tt.before, tt.after, got, ok, tt.want, tt.ok)
		}
	}
}

// TestNginxFields parses one variable at a time.
func TestNginxFields(t *testing.T) {
	tests := []struct {
		name, value string
		want        fields
	}{
		{"remote_addr", "81.2.69.142", fields{"source.ip": "81.2.69.142", "source.address": "81.2.69.142"}},
		{"remote_addr", "::ffff:1.2.3.4", fields{"source.ip": "::ffff:1.2.3.4", "source.address": "::ffff:1.2.3.4"}},
		{"remote_addr", "unix:", fields{"source.address": "unix:"}},
		{"remote_user", "bob smith", fields{"user.name": "bob smith"}},
		{"time_local", "29/Feb/2028:23:59:59 -1200", fields{"@timestamp": "2028-03-01T11:59:59.000Z"}},
		{"time_iso8601", "2026-11-25T10:00:00+05:30", fields{"@timestamp": "2026-11-25T04:30:00.000Z"}},
		{"msec", "1764064800.123", fields{"@timestamp": "2025-11-25T10:00:00.123Z"}},
		{"request", "GET /a?b=c HTTP/1.1", fields{"http.request.method": "GET", "url.original": "/a?b=c", "url.path": "/a", "url.query": "b=c", "http.version": "1.1", "http.route": "/a"}},
		{"request", "PRI * HTTP/2.0", fields{"http.request.method": "PRI", "url.original": "*", "http.version": "2.0"}},
		{"request", "GARBAGE", fields{"url.original": "GARBAGE"}},
		{"request", "GET /a HTTPS", fields{"http.request.method": "GET", "url.original": "/a HTTPS", "url.path": "/a HTTPS", "http.route": "/a HTTPS"}},
		{"request_method", "DELETE", fields{"http.request.method": "DELETE"}},
		{"request_uri", "/a?b", fields{"url.original": "/a?b", "url.path": "/a", "url.query": "b", "http.route": "/a"}},
		{"request_uri", "/a?", fields{"url.original": "/a?", "url.path": "/a", "http.route": "/a"}},
		{"request_uri", "*", fields{"url.original": "*"}},
		{"request_uri", "/orders/8123?b", fields{"url.original": "/orders/8123?b", "url.path": "/orders/8123", "url.query": "b", "http.route": "/orders/{id}"}},
		{"uri", "/a", fields{"url.path": "/a", "http.route": "/a"}},
		{"server_protocol", "HTTP/1.0", fields{"http.version": "1.0"}},
		{"status", "499", fields{"http.response.status_code": int64(499)}},
		{"body_bytes_sent", "0", fields{"http.response.body.bytes": int64(0)}},
		{"bytes_sent", "1048576", fields{"http.response.bytes": int64(1048576)}},
		{"request_length", "77", fields{"http.request.bytes": int64(77)}},
		{"http_referer", "https://a/", fields{"http.request.referrer": "https://a/"}},
		{"http_user_agent", `a \x22b\x22`, fields{"user_agent.original": `a "b"`}},
		{"host", "shop.example", fields{"url.domain": "shop.example"}},
		{"http_host", "shop.example:8080", fields{"url.domain": "shop.example:8080"}},
		{"server_name", "_", fields{"url.domain": "_"}},
		{"request_time", "0.253", fields{"nginx.request_time": 0.253, "event.duration": int64(253_000_000)}},
		{"request_time", "3", fields{"nginx.request_time": 3.0, "event.duration": int64(3_000_000_000)}},
		{"upstream_response_time", "0.004", fields{"nginx.upstream_response_time": 0.004}},
		{"upstream_response_time", "0.1, 0.2 : 0.3", fields{"nginx.upstream_response_time": 0.6, "nginx.upstream_response_times": []float64{0.1, 0.2, 0.3},
			"nginx.upstream_tries": int64(3), "nginx.upstream_attempts": []any{
				map[string]any{"response_time": 0.1}, map[string]any{"response_time": 0.2}, map[string]any{"response_time": 0.3}}}},
		{"upstream_response_time", "-, 0.2", fields{"nginx.upstream_response_time": 0.2, "nginx.upstream_tries": int64(2),
			"nginx.upstream_attempts": []any{map[string]any{}, map[string]any{"response_time": 0.2}}}},
		{"upstream_addr", "10.0.0.1:80", fields{"nginx.upstream_addr": "10.0.0.1:80", "nginx.upstream_tries": int64(1)}},
		{"upstream_addr", "10.0.0.1:80, 10.0.0.2:80", fields{"nginx.upstream_addr": []string{"10.0.0.1:80", "10.0.0.2:80"},
			"nginx.upstream_tries": int64(2), "nginx.upstream_attempts": []any{
				map[string]any{"addr": "10.0.0.1:80"}, map[string]any{"addr": "10.0.0.2:80"}}}},
		{"upstream_addr", "unix:/run/app.sock : backend", fields{"nginx.upstream_addr": []string{"unix:/run/app.sock", "backend"},
			"nginx.upstream_tries": int64(2), "nginx.upstream_attempts": []any{
				map[string]any{"addr": "unix:/run/app.sock"}, map[string]any{"addr": "backend"}}}},
		{"upstream_status", "502", fields{"nginx.upstream_status": int64(502), "nginx.upstream_tries": int64(1)}},
		{"upstream_connect_time", "0.001", fields{"nginx.upstream_connect_time": 0.001}},
		{"upstream_header_time", "0.002", fields{"nginx.upstream_header_time": 0.002}},
		{"http_x_forwarded_for", " 203.0.113.9 ,10.0.0.1", fields{"nginx.x_forwarded_for": []string{"203.0.113.9", "10.0.0.1"}}},
		{"http_x_forwarded_for", ", ,", fields{}},
		{"request_id", "abc", fields{"http.request.id": "abc"}},
		{"http_x_request_id", "ext-1", fields{"http.request.id": "ext-1"}},
		{"http_traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
			fields{"trace.id": "4bf92f3577b34da6a3ce929d0e0e4736", "span.id": "00f067aa0ba902b7"}},
		{"http_traceparent", "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
			fields{"nginx.http_traceparent": "00-00000000000000000000000000000000-00f067aa0ba902b7-01"}},
		{"otel_trace_id", "4bf92f3577b34da6a3ce929d0e0e4736", fields{"trace.id": "4bf92f3577b34da6a3ce929d0e0e4736"}},
		{"otel_span_id", "00f067aa0ba902b7", fields{"span.id": "00f067aa0ba902b7"}},
		{"ssl_protocol", "TLSv1.3", fields{"nginx.ssl_protocol": "TLSv1.3"}},
		{"status", "-", fields{}},
		{"http_user_agent", "", fields{}},
	}
	for _, tt := range tests {
		p, err := CompileNginx("<$" + tt.name + ">")
		if err != nil {
			t.Fatal(err)
		}
		doc := &Doc{}
		if err := p.Parse([]byte("<"+tt.value+">"), doc); err != nil {
			t.Errorf("$%s %q: %v", tt.name, tt.value, err)
			continue
		}
		if got := doc.Map(); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("$%s %q:\n got %#v\nwant %#v", tt.name, tt.value, got, tt.want)
		}
	}
}

func TestNginxFieldErrors(t *testing.T) {
	tests := []struct{ name, value string }{
		{"status", "2OO"},
		{"status", "99999999999999999999"},
		{"body_bytes_sent", "1.5"},
		{"time_local", "25/Nov/2026:10:00:00"},
		{"time_local", "25/Nov/2026:24:00:00 +0000"},
		{"time_local", "29/Feb/2027:10:00:00 +0000"},
		{"time_local", "25/Nov/2026:10:00:00 0000"},
		{"time_local", "25/nov/2026:10:00:00 +0000"},
		{"time_iso8601", "2026-11-25"},
		{"msec", "-1.5"},
		{"request_time", "1e3"},
		{"request_time", ".5"},
		{"request_time", "0.5s"},
		{"request_time", "99999999999"},
		{"upstream_response_time", "0.1, oops"},
		{"upstream_status", "200, oops"},
		{"upstream_status", "oops"},
		{"upstream_connect_time", "x"},
	}
	for _, tt := range tests {
		p, err := CompileNginx("<$" + tt.name + ">")
		if err != nil {
			t.Fatal(err)
		}
		if err := p.Parse([]byte("<"+tt.value+">"), &Doc{}); !errors.Is(err, ErrNoMatch) {
			t.Errorf("$%s %q: %v, want ErrNoMatch", tt.name, tt.value, err)
		}
	}
}

func TestNginxValue(t *testing.T) {
	tests := []struct{ in, want string }{
		{"plain", "plain"},
		{`\x22q\x22`, `"q"`},
		{`\x5Cx22`, `\x22`},
		{`\xc3\xa9`, "é"},
		{`\xff`, "\uFFFD"},
		{`\x`, `\x`},
		{`\x4`, `\x4`},
		{`\xg0`, `\xg0`},
		{`a\x20b\x`, `a b\x`},
	}
	for _, tt := range tests {
		if got := nginxValue(tt.in, true); got != tt.want {
			t.Errorf("nginxValue(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	if got := nginxValue("raw \xff", false); got != "raw \uFFFD" {
		t.Errorf("invalid UTF-8 kept: %q", got)
	}
}

func TestNginxRoundTrip(t *testing.T) {
	base := access{
		addr: netip.MustParseAddr("81.2.69.142"), user: "alice",
		time:   time.Date(2026, 11, 25, 11, 30, 5, 0, time.FixedZone("", 3600)),
		method: "GET", target: "/search?q=a b", version: "1.1", status: 200, bytes: 18231,
		referrer: "https://shop.example/", agent: `Mozilla/5.0 "quoted" \ back é`,
		requestMillis: 124, upstream: []uint16{120}, forwardedFor: "203.0.113.9, 10.0.0.7",
	}
	cases := map[string]func(a *access){
		"as it is":                 func(*access) {},
		"IPv6":                     func(a *access) { a.addr = netip.MustParseAddr("2001:db8::1") },
		"unix socket":              func(a *access) { a.addr = netip.Addr{} },
		"absent values":            func(a *access) { a.user, a.referrer, a.agent, a.forwardedFor, a.upstream = "", "-", "", "", nil },
		"two upstreams":            func(a *access) { a.upstream = []uint16{100, 24} },
		"internal redirect":        func(a *access) { a.upstream, a.redirect = []uint16{1, 2, 3}, true },
		"control bytes":            func(a *access) { a.agent = "a\x00b\nc\td\x7f" },
		"bytes that are not UTF-8": func(a *access) { a.target, a.agent = "/\xff", "\xc3" },
		"very long user agent":     func(a *access) { a.agent = strings.Repeat(`Mozilla "x" `, 1<<17) },
		"empty target":             func(a *access) { a.target = "" },
		"dash target":              func(a *access) { a.target = "-" },
	}
	p, err := CompileNginx(DefaultNginxFormat)
	if err != nil {
		t.Fatal(err)
	}
	for name, change := range cases {
		t.Run(name, func(t *testing.T) {
			a := base
			change(&a)
			doc := &Doc{}
			if err := p.Parse([]byte(a.line()), doc); err != nil {
				t.Fatal(err)
			}
			if got, want := doc.Map(), a.doc(); !reflect.DeepEqual(got, want) {
				t.Errorf("line %.200q\n got %#v\nwant %#v", a.line(), got, want)
			}
		})
	}
}

func TestNginxJSONFormat(t *testing.T) {
	p, err := CompileNginx(testJSONFormat)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"time": "time_iso8601", "ip": "remote_addr", "user": "remote_user", "req": "request",
		"status": "status", "bytes": "body_bytes_sent", "rt": "request_time",
		"urt": "upstream_response_time", "ref": "http_referer", "ua": "http_user_agent",
		"xff": "http_x_forwarded_for", "vhost": "host", "rid": "request_id",
	}
	if len(p.members) != len(want) {
		t.Errorf("members %v", p.members)
	}
	for member, variable := range want {
		if p.members[member] != nginxField(variable) {
			t.Errorf("member %q maps to %+v, want $%s", member, p.members[member], variable)
		}
	}
}

// TestNginxTimeMemo parses lines whose times repeat, change, fail and come
// from different variables with one parser, and checks each document
// against a fresh parser's, which remembers no earlier time.
func TestNginxTimeMemo(t *testing.T) {
	formats := []struct {
		format string
		lines  []string
	}{
		{DefaultNginxFormat, []string{
			`1.2.3.4 - - [25/Nov/2026:10:00:00 +0000] "GET / HTTP/1.1" 200 1 "-" "-" 0.1 0.1 "-"`,
			`1.2.3.4 - - [25/Nov/2026:10:00:00 +0000] "GET / HTTP/1.1" 200 1 "-" "-" 0.1 0.1 "-"`,
			`1.2.3.4 - - [25/Nov/2026:10:00:00 +0100] "GET / HTTP/1.1" 200 1 "-" "-" 0.1 0.1 "-"`,
			`1.2.3.4 - - [25/Nov/2026:10:00:01 +0100] "GET / HTTP/1.1" 200 1 "-" "-" 0.1 0.1 "-"`,
			`1.2.3.4 - - [31/Nov/2026:10:00:01 +0100] "GET / HTTP/1.1" 200 1 "-" "-" 0.1 0.1 "-"`,
			`1.2.3.4 - - [25/Nov/2026:10:00:01 +0100] "GET / HTTP/1.1" 200 1 "-" "-" 0.1 0.1 "-"`,
			// JSON lines: the same text as another time variable.
			`{"time_local":"25/Nov/2026:10:00:01 +0100"}`,
			`{"msec":"1764064800.123"}`,
			`{"time_iso8601":"1764064800.123"}`,
			`{"msec":"1764064800.123"}`,
			`{"msec":"1764064800.124"}`,
			`{"time_iso8601":"2026-11-25T10:00:00+01:00"}`,
			`{"time_iso8601":"2026-11-25T10:00:00+01:00"}`,
			`{"time_local":"2026-11-25T10:00:00+01:00"}`,
		}},
		{`$msec $status`, []string{"1764064800.123 200", "1764064800.123 201", "1764064800 200", "1764064800000 200", "x 200"}},
	}
	for _, f := range formats {
		p, err := CompileNginx(f.format)
		if err != nil {
			t.Fatal(err)
		}
		for i, line := range f.lines {
			fresh, _ := CompileNginx(f.format)
			got, want := &Doc{}, &Doc{}
			gotErr, wantErr := p.Parse([]byte(line), got), fresh.Parse([]byte(line), want)
			if !reflect.DeepEqual(got.Map(), want.Map()) || fmt.Sprint(gotErr) != fmt.Sprint(wantErr) {
				t.Errorf("%q line %d %s:\n got %v, %v\nwant %v, %v", f.format, i, line, got, gotErr, want, wantErr)
			}
		}
	}
}

// TestNginxConcurrentTimes parses lines with different times from several
// goroutines with one parser (run with -race).
func TestNginxConcurrentTimes(t *testing.T) {
	p, err := CompileNginx(`[$time_local]`)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 500 {
				sec := (g + i) % 60
				doc := &Doc{}
				if err := p.Parse(fmt.Appendf(nil, "[25/Nov/2026:10:00:%02d +0000]", sec), doc); err != nil {
					t.Error(err)
					return
				}
				if got, _ := doc.Get("@timestamp"); got != fmt.Sprintf("2026-11-25T10:00:%02d.000Z", sec) {
					t.Errorf("@timestamp %v, want second %d", got, sec)
					return
				}
			}
		})
	}
	wg.Wait()
}

// TestSharedValues checks that the values stored without allocating are
// the values given, of the same type, and that they do not allocate.
func TestSharedValues(t *testing.T) {
	for _, m := range []string{"GET", "POST", "HEAD", "PUT", "DELETE", "OPTIONS", "PATCH", "get", "PROPFIND", ""} {
		if got := methodValue(&Doc{}, m); got != any(m) {
			t.Errorf("methodValue(%q) = %#v", m, got)
		}
	}
	for _, v := range []string{"1.1", "2.0", "1.0", "3.0", "2", "0.9", ""} {
		if got := versionValue(&Doc{}, v); got != any(v) {
			t.Errorf("versionValue(%q) = %#v", v, got)
		}
	}
	for n := int64(-1000); n <= 1000; n++ {
		if got := intValue(&Doc{}, n); got != any(n) {
			t.Errorf("intValue(%d) = %#v", n, got)
		}
	}
	d := &Doc{}
	line := strings.Fields("GET 1.1 404")
	status, _ := strconv.ParseInt(line[2], 10, 64)
	if n := testing.AllocsPerRun(100, func() {
		d.Set("m", methodValue(d, line[0]))
		d.Set("v", versionValue(d, line[1]))
		d.Set("s", intValue(d, status))
	}); n != 0 {
		t.Errorf("%v allocations storing shared values", n)
	}
}

// TestNginxUpstreamRetry is a request nginx tried on two servers, the first
// refusing the connection, then passed through an internal redirect to a
// third: each attempt is kept, the totals and nginx's own time are set.
func TestNginxUpstreamRetry(t *testing.T) {
	p, err := CompileNginx(`$request_time|$upstream_addr|$upstream_status|$upstream_response_time|$upstream_connect_time|$upstream_header_time|`)
	if err != nil {
		t.Fatal(err)
	}
	doc := &Doc{}
	line := `0.350|10.0.0.1:80, 10.0.0.2:80 : 10.0.0.3:8080|502, 200 : 404|0.000, 0.210 : 0.030|-, 0.001 : 0.002|-, 0.200 : 0.029|`
	if err := p.Parse([]byte(line), doc); err != nil {
		t.Fatal(err)
	}
	want := fields{
		"nginx.request_time": 0.35, "event.duration": int64(350_000_000),
		"nginx.upstream_addr":           []string{"10.0.0.1:80", "10.0.0.2:80", "10.0.0.3:8080"},
		"nginx.upstream_status":         int64(404),
		"nginx.upstream_response_time":  0.24,
		"nginx.upstream_response_times": []float64{0, 0.21, 0.03},
		"nginx.upstream_connect_time":   0.003,
		"nginx.upstream_header_time":    0.229,
		"nginx.upstream_tries":          int64(3),
		"nginx.own_time":                0.11,
		"nginx.upstream_attempts": []any{
			map[string]any{"addr": "10.0.0.1:80", "status": int64(502), "response_time": 0.0},
			map[string]any{"addr": "10.0.0.2:80", "status": int64(200), "response_time": 0.21, "connect_time": 0.001, "header_time": 0.2},
			map[string]any{"addr": "10.0.0.3:8080", "status": int64(404), "response_time": 0.03, "connect_time": 0.002, "header_time": 0.029},
		},
	}
	if got := doc.Map(); !reflect.DeepEqual(got, want) {
		t.Errorf("got  %#v\nwant %#v", got, want)
	}
}

// TestNginxOwnTime: nginx's own time is request_time less the upstream
// time; millisecond rounding never makes it negative.
func TestNginxOwnTime(t *testing.T) {
	p, err := CompileNginx(`$upstream_response_time $request_time.`)
	if err != nil {
		t.Fatal(err)
	}
	for line, want := range map[string]any{"0.120 0.124.": 0.004, "0.125 0.124.": 0.0, "- 0.124.": nil} {
		doc := &Doc{}
		if err := p.Parse([]byte(line), doc); err != nil {
			t.Fatal(err)
		}
		if got, _ := doc.Get("nginx.own_time"); got != want {
			t.Errorf("%q: nginx.own_time = %v, want %v", line, got, want)
		}
	}
}

// TestNginxRequestID: the id a client sent, which nginx passes on, is
// http.request.id; nginx's own is kept aside when it differs.
func TestNginxRequestID(t *testing.T) {
	p, err := CompileNginx(`$request_id $http_x_request_id.`)
	if err != nil {
		t.Fatal(err)
	}
	tests := map[string]fields{
		"0af7651916cd43dd8448eb211c80319c -.":     {"http.request.id": "0af7651916cd43dd8448eb211c80319c"},
		"0af7651916cd43dd8448eb211c80319c ext-7.": {"http.request.id": "ext-7", "nginx.request_id": "0af7651916cd43dd8448eb211c80319c"},
		"ext-7 ext-7.": {"http.request.id": "ext-7"},
	}
	for line, want := range tests {
		doc := &Doc{}
		if err := p.Parse([]byte(line), doc); err != nil {
			t.Fatal(err)
		}
		if got := doc.Map(); !reflect.DeepEqual(got, want) {
			t.Errorf("%q: got %#v, want %#v", line, got, want)
		}
	}
}

// TestNginxRoutes: the parser's Routes apply to the path.
func TestNginxRoutes(t *testing.T) {
	p, err := CompileNginx(`$uri $request_uri.`)
	if err != nil {
		t.Fatal(err)
	}
	if p.Routes, err = NewRoutes([]RouteRule{{Prefix: "/shop", Templates: []string{"/shop/{sku}"}}}); err != nil {
		t.Fatal(err)
	}
	doc := &Doc{}
	if err := p.Parse([]byte("/shop/red-shoes /shop/red-shoes?x=1."), doc); err != nil {
		t.Fatal(err)
	}
	if got, _ := doc.Get("http.route"); got != "/shop/{sku}" {
		t.Errorf("http.route = %v", got)
	}
}

// TestREADMEFormatTraced: the log_format lines the README tells to paste
// are the named formats, and the nginx_format it and the demo use is
// FormatTraced.
func TestREADMEFormatTraced(t *testing.T) {
	data, err := os.ReadFile("../docs/documents.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := string(data)
	for _, name := range []string{"main", "sluice", "traced"} {
		_, block, ok := strings.Cut(readme, "log_format "+name+" ")
		block, _, ok2 := strings.Cut(block, ";")
		if !ok || !ok2 {
			t.Fatalf("docs/documents.md has no log_format %s", name)
		}
		// nginx joins the quoted pieces as they are; the pieces between
		// quotes alternate with the whitespace between them.
		var format strings.Builder
		for i, piece := range strings.Split(block, "'") {
			if i%2 == 1 {
				format.WriteString(piece)
			}
		}
		if want, _ := NginxFormat(name); format.String() != want {
			t.Errorf("docs/documents.md's log_format %s is\n%s\nnot\n%s", name, format.String(), want)
		}
	}
	if !strings.Contains(readme, "  nginx_format: '"+FormatTraced+"'\n") {
		t.Errorf("docs/documents.md's nginx_format is not FormatTraced")
	}
	demo, err := os.ReadFile("../deploy/local/aggregator.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(demo), "  nginx_format: '"+FormatTraced+"'\n") {
		t.Errorf("deploy/local/aggregator.yaml's nginx_format is not FormatTraced")
	}
}

// TestNginxFormatNames checks that every named format compiles and reads
// a line nginx writes with it, and that a log_format string is no name.
func TestNginxFormatNames(t *testing.T) {
	lines := map[string]string{
		"combined": `81.2.69.142 - - [25/Nov/2026:10:00:00 +0000] "GET / HTTP/1.1" 200 612 "-" "curl/8.5.0"`,
		"main":     `81.2.69.142 - - [25/Nov/2026:10:00:00 +0000] "GET / HTTP/1.1" 200 612 "-" "curl/8.5.0" "-"`,
		"sluice":   `81.2.69.142 - - [25/Nov/2026:10:00:00 +0000] "GET / HTTP/1.1" 200 612 "-" "curl/8.5.0" 0.012 0.010 "-"`,
		"traced": `81.2.69.142 - - [25/Nov/2026:10:00:00 +0000] "GET / HTTP/1.1" 200 612 "-" "curl/8.5.0" 0.012 0.010 "-" ` +
			`0af7651916cd43dd8448eb211c80319c "-" "-" "10.0.0.11:8080" "200" "0.001" shop.example`,
	}
	if len(lines) != len(NginxFormatNames) {
		t.Fatalf("%d names, %d test lines", len(NginxFormatNames), len(lines))
	}
	for _, name := range NginxFormatNames {
		f, ok := NginxFormat(name)
		if !ok {
			t.Fatalf("NginxFormat(%q) unknown", name)
		}
		p, err := CompileNginx(f)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		doc := NewDoc(40)
		if err := p.ParseString(lines[name], doc); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, ok := NginxFormat(FormatCombined); ok {
		t.Error("a log_format string taken as a name")
	}
}
