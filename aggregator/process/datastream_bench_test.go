package process

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/sluicelog/sluice/aggregator/internal/records"
)

// BenchmarkItemDataStream is Documents.Item, record to encoded item, with
// elasticsearch.data_stream (its default name reads event.dataset from
// the document, so it is rendered for every document), without GeoIP.
func BenchmarkItemDataStream(b *testing.B) {
	for _, kind := range []string{"nginx", "service"} {
		b.Run(kind, func(b *testing.B) {
			var cfg Config
			cfg.Elasticsearch.DataStream = true
			cfg.SetDefaults()
			d, err := New(cfg, nil, prometheus.NewRegistry(), zap.NewNop())
			if err != nil {
				b.Fatal(err)
			}
			recs := records.Of(kind, 10000)
			b.ReportAllocs()
			i := 0
			cpu0 := processCPU(b)
			for b.Loop() {
				if _, keep, dead := d.Item(recs[i%len(recs)]); !keep || dead != nil {
					b.Fatal("not kept")
				}
				i++
			}
			cpu := processCPU(b) - cpu0
			b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/doc")
		})
	}
}
