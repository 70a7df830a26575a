package aggregator

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap"

	"github.com/sluicelog/sluice/aggregator/pipeline"
	"github.com/sluicelog/sluice/geoip"
	"github.com/sluicelog/sluice/internal/config"
	"github.com/sluicelog/sluice/internal/event"
	"github.com/sluicelog/sluice/internal/template"
	"github.com/sluicelog/sluice/internal/testenv"
	"github.com/sluicelog/sluice/parser"
	"github.com/sluicelog/sluice/useragent"
)

// benchRecords encodes n lines of kind as the shipper would put them on
// Kafka, with the fields of the environment/customer/service layout.
func benchRecords(kind string, n int) []*kgo.Record {
	r := rand.New(rand.NewPCG(1, 2))
	fields := map[string]string{"environment": "prod", "customer": "acme", "service": "checkout"}
	if kind == "nginx" {
		fields = map[string]string{"environment": "prod", "service": "edge"}
	}
	ev := event.Event{
		Type: kind, Node: "node-1", Path: "/var/log/app/prod/acme/checkout/app.log",
		FileID: "2049-1234567-1764064800000000000", ReadTime: time.Now(), Fields: fields,
	}
	enc := event.NewEncoder("logs-"+kind, &ev, event.EncodeFields(fields))
	// Clients from a few thousand public addresses: repeated, as real
	// traffic is, so the GeoIP cache sees hits and misses.
	clients := make([]string, 3000)
	for i := range clients {
		clients[i] = fmt.Sprintf("%d.%d.%d.%d", 2+r.IntN(200), r.IntN(256), r.IntN(256), 1+r.IntN(254))
	}
	agents := []string{
		"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36",
		"Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
		"curl/8.5.0",
	}
	paths := []string{"/api/v1/orders", "/api/v1/cart", "/api/v1/users/me", "/static/app.js", "/api/v1/search?q=shoes&page=2"}
	t := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	recs := make([]*kgo.Record, n)
	for i := range recs {
		t = t.Add(time.Duration(r.IntN(50)) * time.Millisecond)
		var line string
		switch kind {
		case "nginx":
			rt := r.Float64() * 0.5
			line = fmt.Sprintf(`10.0.0.7 - - [%s] "GET %s HTTP/1.1" %d %d "https://shop.example.com/" "%s" %.3f %.3f "%s, 10.0.0.7"`,
				t.Format("02/Jan/2006:15:04:05 -0700"), paths[r.IntN(len(paths))], []int{200, 200, 200, 201, 304, 404, 500}[r.IntN(7)],
				r.IntN(50000), agents[r.IntN(len(agents))], rt, rt*0.9, clients[r.IntN(len(clients))])
		default:
			line = fmt.Sprintf(`{"@timestamp":"%s","level":"info","msg":"order placed","id":"x%d","order_id":"A-%07d","user_id":"u-%06d","http_path":"%s","duration_ms":%.1f,"trace_id":"%016x%016x","span_id":"%016x"}`,
				t.Format("2006-01-02T15:04:05.000Z07:00"), i, r.IntN(10_000_000), r.IntN(1_000_000), paths[r.IntN(len(paths))],
				r.Float64()*250, r.Uint64(), r.Uint64(), r.Uint64())
		}
		ev.Offset += int64(len(line) + 1)
		ev.Line = []byte(line)
		recs[i] = enc.Record(&ev)
	}
	return recs
}

// processCPU is the CPU time the process has used so far.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// benchGeoIP opens the real GeoLite2 City database, fetched (once) by
// deploy/local/fetch-geoip.sh.
func benchGeoIP(b *testing.B) *geoip.Enricher {
	b.Helper()
	path := os.Getenv("SLUICE_GEOIP_CITY")
	if path == "" {
		root, err := testenv.RepoRoot()
		if err != nil {
			b.Fatal(err)
		}
		out, err := exec.Command(filepath.Join(root, "deploy", "local", "fetch-geoip.sh")).Output()
		if err != nil {
			b.Fatalf("fetching the GeoLite2 City database: %v", err)
		}
		path = strings.TrimSpace(string(out))
	}
	cfg := geoip.Config{City: path}
	cfg.SetDefaults()
	geo, err := geoip.Open(cfg, prometheus.NewRegistry(), zap.NewNop())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { geo.Close() })
	return geo
}

const benchPipelines = `
pipelines:
  nginx:
    - name: drop-health-checks
      drop:
        if: {or: [{equals: {url.original: /healthz}}, {prefix: {user_agent.original: kube-probe/}}]}
    - name: no-cookies
      remove_fields: [nginx.http_cookie]
    - name: tag-slow
      add_fields: {labels.slow: "true"}
      if: {gt: {nginx.request_time: 1}}
  service:
    - name: drop-trace
      drop: {if: {equals: {log.level: trace}}}
`

// BenchmarkDocument measures what the aggregator does per record before
// the bulk request: decode the Kafka record, parse, enrich, filter (a few
// typical pipeline rules), name the index, compute the id and encode the
// document (a null sink). One goroutine: docs/s per core.
func BenchmarkDocument(b *testing.B) {
	geo := benchGeoIP(b)
	agents, err := useragent.New(0, nil)
	if err != nil {
		b.Fatal(err)
	}
	// nginx-no-ua: parsers.user_agent false, for the cost of parsing
	// user agents (cached: the records have three).
	for _, name := range []string{"nginx", "service", "nginx-no-ua"} {
		kind, noUA := strings.CutSuffix(name, "-no-ua")
		b.Run(name, func(b *testing.B) {
			recs := benchRecords(kind, 10000)
			ps, err := newParsers(ParsersConfig{})
			if err != nil {
				b.Fatal(err)
			}
			idx, err := template.Parse(DefaultIndex)
			if err != nil {
				b.Fatal(err)
			}
			// Typical filtering: the demo's kind of rules, none of which
			// drops these lines, so every document is encoded.
			var cfg struct {
				Pipelines pipeline.Config `yaml:"pipelines"`
			}
			if err := config.Decode([]byte(benchPipelines), &cfg, func(string) (string, bool) { return "", false }); err != nil {
				b.Fatal(err)
			}
			pipes, err := newPipelines(cfg.Pipelines, idx, prometheus.NewRegistry())
			if err != nil {
				b.Fatal(err)
			}
			names := newIndexNames(idx)
			var size int64
			for _, rec := range recs {
				size += int64(len(rec.Value))
			}
			b.SetBytes(size / int64(len(recs)))
			fit := new(fitter)
			b.ReportAllocs()
			var buf []byte
			var dec event.Decoder
			i := 0
			cpu0 := processCPU(b)
			for b.Loop() {
				rec := recs[i%len(recs)]
				i++
				ev, err := dec.Decode(rec)
				if err != nil {
					b.Fatal(err)
				}
				doc := docPool.Get().(*parser.Doc)
				ps.fill(&ev, doc)
				geo.Enrich(doc)
				if !noUA {
					agents.Enrich(doc)
				}
				if keep, _ := pipes.apply(&ev, doc); !keep {
					b.Fatal("dropped")
				}
				fit.fit(doc)
				_ = names.name(&ev, doc)
				_ = ev.DocID()
				buf, err = appendDocument(buf[:0], doc)
				if err != nil {
					b.Fatal(err)
				}
				recycle(doc)
			}
			// CPU time, not wall time: on a busy machine wall time counts
			// other processes' turns. The process's CPU includes the
			// garbage collector's workers, which is part of the cost.
			cpu := processCPU(b) - cpu0
			b.ReportMetric(float64(b.N)/cpu.Seconds(), "docs/cpu-s")
			b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/doc")
		})
	}
}

// BenchmarkEncode compares the document encoder with encoding/json on
// nginx documents as the aggregator builds them (GeoIP included), and
// measures building a bulk request body from encoded documents.
func BenchmarkEncode(b *testing.B) {
	geo := benchGeoIP(b)
	ps, err := newParsers(ParsersConfig{})
	if err != nil {
		b.Fatal(err)
	}
	var dec event.Decoder
	var docs []*parser.Doc
	var asMaps []map[string]any // for encoding/json
	var items []item
	for _, rec := range benchRecords("nginx", 1000) {
		ev, err := dec.Decode(rec)
		if err != nil {
			b.Fatal(err)
		}
		doc := newDoc()
		ps.fill(&ev, doc)
		geo.Enrich(doc)
		docs = append(docs, doc)
		asMaps = append(asMaps, doc.Map())
		src, err := appendDocument(nil, doc)
		if err != nil {
			b.Fatal(err)
		}
		items = append(items, item{index: "logs-nginx-edge-prod", id: ev.DocID(), source: src})
	}
	b.Run("appendDocument", func(b *testing.B) {
		b.ReportAllocs()
		var buf []byte
		i := 0
		cpu0 := processCPU(b)
		for b.Loop() {
			buf, _ = appendDocument(buf[:0], docs[i%len(docs)])
			i++
		}
		// CPU time, as in BenchmarkDocument: on a busy machine wall time
		// counts other processes' turns.
		b.ReportMetric(float64((processCPU(b)-cpu0).Nanoseconds())/float64(b.N), "cpu-ns/doc")
	})
	b.Run("encoding-json", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			_, _ = json.Marshal(asMaps[i%len(asMaps)])
			i++
		}
	})
	b.Run("bulk-body", func(b *testing.B) {
		b.ReportAllocs()
		var body bytes.Buffer
		for b.Loop() {
			body.Reset()
			for k := range items {
				writeAction(&body, "index", items[k].index, items[k].id)
				body.Write(items[k].source)
				body.WriteByte('\n')
			}
		}
		b.ReportMetric(float64(b.N*len(items))/b.Elapsed().Seconds(), "docs/s")
	})
}
