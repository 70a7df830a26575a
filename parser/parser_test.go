package parser

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
)

func TestServiceErrors(t *testing.T) {
	tests := []struct {
		line string
		want error
	}{
		{`not json`, ErrNotJSON},
		{`[1,2]`, ErrNotObject},
		{`"s"`, ErrNotObject},
		{`{"a":`, ErrNotJSON},
		{``, ErrNotJSON},
	}
	for _, tt := range tests {
		if err := ParseService([]byte(tt.line), Doc{}); !errors.Is(err, tt.want) {
			t.Errorf("ParseService(%q) = %v, want %v", tt.line, err, tt.want)
		}
	}
}

func TestCompileNginxErrors(t *testing.T) {
	for _, f := range []string{"", "no variables", "$a$b", "${}"} {
		if _, err := CompileNginx(f); err == nil {
			t.Errorf("CompileNginx(%q) succeeded", f)
		}
	}
}

func TestNginxCustomFormat(t *testing.T) {
	p, err := CompileNginx(`$remote_addr [$time_iso8601] "$request_method ${request_uri}" $status rt=$request_time host=$host id=$request_id`)
	if err != nil {
		t.Fatal(err)
	}
	doc := Doc{}
	line := `1.2.3.4 [2026-11-25T10:00:00+00:00] "GET /x?y=1" 200 rt=0.5 host=shop.example id=r-1`
	if err := p.Parse([]byte(line), doc); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"source.ip": "1.2.3.4", "@timestamp": "2026-11-25T10:00:00.000Z", "http.request.method": "GET",
		"url.original": "/x?y=1", "http.response.status_code": int64(200), "nginx.request_time": 0.5,
		"event.duration": int64(500_000_000), "url.domain": "shop.example", "nginx.request_id": "r-1"}
	for k, v := range want {
		if doc[k] != v {
			t.Errorf("%s = %#v, want %#v", k, doc[k], v)
		}
	}
}

// renderNginx writes a line in the default format from field values, for
// the round-trip fuzz property.
func renderNginx(ip, user, path, agent string, status, bytes int) string {
	return fmt.Sprintf(`%s - %s [25/Nov/2026:10:00:00 +0000] "GET %s HTTP/1.1" %d %d "-" "%s" 0.010 0.005 "-"`, ip, user, path, status, bytes, agent)
}

func FuzzParseService(f *testing.F) {
	f.Add([]byte(`{"@timestamp":"2026-11-25T10:00:00Z","level":"info","msg":"x","n":1}`))
	f.Add([]byte(`{"ts":1764064800123}`))
	f.Add([]byte(`[1]`))
	f.Add([]byte("{\"a\":\"\xff\"}"))
	f.Fuzz(func(t *testing.T, line []byte) {
		doc := Doc{}
		if err := ParseService(line, doc); err != nil {
			clear(doc)
			Fallback(line, err, doc)
		}
		if _, err := json.Marshal(doc); err != nil {
			t.Fatalf("document does not marshal: %v", err)
		}
	})
}

func FuzzNginx(f *testing.F) {
	p, err := CompileNginx(DefaultNginxFormat)
	if err != nil {
		f.Fatal(err)
	}
	f.Add("81.2.69.142", "-", "/a?b=c", "curl/8.5.0", 200, 10)
	f.Add("2001:db8::1", "bob", "/", `x\x22y`, 404, 0)
	f.Fuzz(func(t *testing.T, ip, user, path, agent string, status, n int) {
		line := renderNginx(ip, user, path, agent, status, n)
		doc := Doc{}
		err := p.Parse([]byte(line), doc)
		if _, mErr := json.Marshal(doc); mErr != nil {
			t.Fatalf("document does not marshal: %v", mErr)
		}
		// Round trip: values nginx could have written parse back to themselves.
		plain := func(s string) bool {
			return s != "" && s != "-" && !strings.ContainsAny(s, "\"\\ \n[]") && strings.ToValidUTF8(s, "") == s
		}
		if !plain(ip) || !plain(user) || !plain(path) || !plain(agent) || status < 0 || n < 0 {
			return
		}
		if err != nil {
			t.Fatalf("line %q: %v", line, err)
		}
		if doc["source.ip"] != ip || doc["user.name"] != user || doc["url.original"] != path ||
			doc["user_agent.original"] != agent || doc["http.response.status_code"] != int64(status) ||
			doc["http.response.body.bytes"] != int64(n) {
			t.Fatalf("line %q parsed to %v", line, doc)
		}
	})
}

func FuzzNginxLine(f *testing.F) {
	p, err := CompileNginx(DefaultNginxFormat)
	if err != nil {
		f.Fatal(err)
	}
	f.Add([]byte(renderNginx("1.2.3.4", "-", "/", "a", 200, 1)))
	f.Add([]byte(`{"remote_addr":"1.2.3.4","status":"200"}`))
	f.Fuzz(func(t *testing.T, line []byte) {
		doc := Doc{}
		if err := p.Parse(line, doc); err != nil {
			clear(doc)
			Fallback(line, err, doc)
		}
		if _, err := json.Marshal(doc); err != nil {
			t.Fatalf("document does not marshal: %v", err)
		}
	})
}

func FuzzCompileNginx(f *testing.F) {
	f.Add(DefaultNginxFormat, "1.2.3.4 - - [25/Nov/2026:10:00:00 +0000] \"GET / HTTP/1.1\" 200 1 \"-\" \"-\" 0.1 0.1 \"-\"")
	f.Add("$a ${b}x$c", "1 2x3")
	f.Fuzz(func(t *testing.T, format, line string) {
		p, err := CompileNginx(format)
		if err != nil {
			return
		}
		doc := Doc{}
		_ = p.Parse([]byte(line), doc)
		if _, err := json.Marshal(doc); err != nil {
			t.Fatalf("document does not marshal: %v", err)
		}
	})
}

func FuzzCRI(f *testing.F) {
	f.Add([]byte("2026-11-25T10:00:00.123Z stdout F hello"))
	f.Add([]byte("2026-11-25T10:00:00Z stderr P "))
	f.Fuzz(func(t *testing.T, line []byte) {
		c, err := ParseCRI(line)
		if err != nil {
			return
		}
		if c.Stream != "stdout" && c.Stream != "stderr" {
			t.Fatalf("stream %q", c.Stream)
		}
		if len(c.Log) > 0 && !strings.HasSuffix(string(line), string(c.Log)) {
			t.Fatalf("log %q is not the end of the line %q", c.Log, line)
		}
	})
}

const benchNginxLine = `81.2.69.142 - - [25/Nov/2026:10:00:00 +0000] "GET /api/v1/search?q=shoes&page=2 HTTP/1.1" 200 18231 "https://shop.example/" "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36" 0.124 0.120 "203.0.113.9, 10.0.0.7"`

func BenchmarkNginxParse(b *testing.B) {
	p, err := CompileNginx(DefaultNginxFormat)
	if err != nil {
		b.Fatal(err)
	}
	line := []byte(benchNginxLine)
	b.SetBytes(int64(len(line)))
	b.ReportAllocs()
	doc := make(Doc, 24)
	for b.Loop() {
		clear(doc)
		if err := p.Parse(line, doc); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseService(b *testing.B) {
	line := []byte(`{"@timestamp":"2026-11-25T10:00:00.123Z","level":"info","service":"checkout","msg":"order placed","order_id":"A-1029384","customer":"acme","duration_ms":12.5,"trace_id":"4bf92f3577b34da6a3ce929d0e0e4736"}`)
	b.SetBytes(int64(len(line)))
	b.ReportAllocs()
	doc := make(Doc, 24)
	for b.Loop() {
		clear(doc)
		if err := ParseService(line, doc); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkCRI(b *testing.B) {
	line := []byte(`2026-11-25T10:00:00.123456789Z stdout F {"level":"info","msg":"hello"}`)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseCRI(line); err != nil {
			b.Fatal(err)
		}
	}
}
