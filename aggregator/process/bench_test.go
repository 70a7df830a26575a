package process

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/sluicelog/sluice/aggregator/deliver"
	"github.com/sluicelog/sluice/aggregator/internal/records"
	"github.com/sluicelog/sluice/aggregator/pipeline"
	"github.com/sluicelog/sluice/geoip"
	"github.com/sluicelog/sluice/internal/config"
	"github.com/sluicelog/sluice/internal/event"
	"github.com/sluicelog/sluice/internal/template"
	"github.com/sluicelog/sluice/internal/testenv"
	"github.com/sluicelog/sluice/parser"
)

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
	for _, kind := range []string{"nginx", "service"} {
		b.Run(kind, func(b *testing.B) {
			recs := records.Of(kind, 10000)
			ps, err := newParsers(ParsersConfig{})
			if err != nil {
				b.Fatal(err)
			}
			idx, err := template.Parse(deliver.DefaultIndex)
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
				if keep, _ := pipes.apply(&ev, doc); !keep {
					b.Fatal("dropped")
				}
				fit.fit(doc)
				_ = names.name(&ev, doc)
				_ = ev.DocID()
				buf, err = deliver.AppendDocument(buf[:0], doc)
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
	var items []deliver.Item
	for _, rec := range records.Of("nginx", 1000) {
		ev, err := dec.Decode(rec)
		if err != nil {
			b.Fatal(err)
		}
		doc := newDoc()
		ps.fill(&ev, doc)
		geo.Enrich(doc)
		docs = append(docs, doc)
		asMaps = append(asMaps, doc.Map())
		src, err := deliver.AppendDocument(nil, doc)
		if err != nil {
			b.Fatal(err)
		}
		items = append(items, deliver.Item{Index: "logs-nginx-edge-prod", ID: ev.DocID(), Source: src})
	}
	b.Run("appendDocument", func(b *testing.B) {
		b.ReportAllocs()
		var buf []byte
		i := 0
		for b.Loop() {
			buf, _ = deliver.AppendDocument(buf[:0], docs[i%len(docs)])
			i++
		}
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
				deliver.WriteAction(&body, "index", items[k].Index, items[k].ID)
				body.Write(items[k].Source)
				body.WriteByte('\n')
			}
		}
		b.ReportMetric(float64(b.N*len(items))/b.Elapsed().Seconds(), "docs/s")
	})
}
