package parser

import (
	"encoding/json"
	"testing"
)

// benchNginxLine is a realistic line in DefaultNginxFormat, 290 bytes.
const benchNginxLine = `81.2.69.142 - - [25/Nov/2026:10:00:00 +0000] "GET /api/v1/search?q=running+shoes&page=2 HTTP/1.1" 200 18231 "https://shop.example/catalog/shoes" "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36" 0.124 0.120 "203.0.113.9, 10.0.0.7"`

const benchNginxJSONLine = `{"time":"2026-11-25T10:00:00+00:00","ip":"81.2.69.142","user":"","req":"GET /api/v1/search?q=running+shoes&page=2 HTTP/1.1","status":200,"bytes":18231,"rt":0.124,"urt":"0.120","ref":"https://shop.example/catalog/shoes","ua":"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36","xff":"203.0.113.9, 10.0.0.7","vhost":"shop.example","rid":"4bf92f3577b34da6"}`

const benchServiceLine = `{"@timestamp":"2026-11-25T10:00:00.123Z","level":"info","service":"checkout","msg":"order placed","order_id":"A-1029384","customer":"acme","duration_ms":12.5,"items":3,"trace_id":"4bf92f3577b34da6a3ce929d0e0e4736","http":{"method":"POST","status":201}}`

const benchCRILine = `2026-11-25T10:00:00.123456789Z stdout F {"level":"info","msg":"order placed","order_id":"A-1029384"}`

func benchmarkParse(b *testing.B, parse func([]byte, *Doc) error, line string) {
	in := []byte(line)
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	doc := NewDoc(24)
	for b.Loop() {
		doc.Reset()
		if err := parse(in, doc); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkNginxParse(b *testing.B) {
	p, err := CompileNginx(DefaultNginxFormat)
	if err != nil {
		b.Fatal(err)
	}
	benchmarkParse(b, p.Parse, benchNginxLine)
}

// benchTracedLine is a line in FormatTraced: an id in the path, nginx's
// request id, one upstream.
const benchTracedLine = `81.2.69.142 - - [25/Nov/2026:10:00:00 +0000] "GET /api/v1/orders/8123/lines?page=2 HTTP/1.1" 200 18231 "https://shop.example/catalog/shoes" "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36" 0.124 0.120 "203.0.113.9, 10.0.0.7" 0af7651916cd43dd8448eb211c80319c "-" "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01" "10.0.0.11:8080" "200" "0.001" api.shop.example`

// BenchmarkNginxParseTraced is the README's format: route, upstream and
// correlation fields on top of BenchmarkNginxParse's.
func BenchmarkNginxParseTraced(b *testing.B) {
	p, err := CompileNginx(FormatTraced)
	if err != nil {
		b.Fatal(err)
	}
	benchmarkParse(b, p.Parse, benchTracedLine)
}

func BenchmarkNginxParseJSON(b *testing.B) {
	p, err := CompileNginx(testJSONFormat)
	if err != nil {
		b.Fatal(err)
	}
	benchmarkParse(b, p.Parse, benchNginxJSONLine)
}

func BenchmarkParseService(b *testing.B) {
	benchmarkParse(b, ParseService, benchServiceLine)
}

func BenchmarkCRI(b *testing.B) {
	in := []byte(benchCRILine)
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseCRI(in); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkParseServiceNoDecode is BenchmarkParseService without decoding
// the log member: the cost of looking for it on a line that has none.
func BenchmarkParseServiceNoDecode(b *testing.B) {
	benchmarkParse(b, Service{}.Parse, benchServiceLine)
}

// BenchmarkParseServiceWrapped is a Docker json-file line whose log member
// holds the service's JSON.
func BenchmarkParseServiceWrapped(b *testing.B) {
	line, err := json.Marshal(map[string]string{"log": benchServiceLine + "\n", "stream": "stdout", "time": "2026-11-25T10:00:00.123456789Z"})
	if err != nil {
		b.Fatal(err)
	}
	benchmarkParse(b, ParseService, string(line))
}
