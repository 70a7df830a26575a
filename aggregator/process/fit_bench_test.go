package process

import (
	"testing"

	"github.com/sluicelog/sluice/aggregator/internal/records"
	"github.com/sluicelog/sluice/internal/event"
)

// BenchmarkFitMapping measures fitter.fit on the documents of
// BenchmarkDocument (without GeoIP), which fit.
func BenchmarkFitMapping(b *testing.B) {
	for _, kind := range []string{"nginx", "service"} {
		b.Run(kind, func(b *testing.B) {
			recs := records.Of(kind, 1)
			ps, err := newParsers(ParsersConfig{})
			if err != nil {
				b.Fatal(err)
			}
			ev, err := event.Decode(recs[0])
			if err != nil {
				b.Fatal(err)
			}
			doc := newDoc()
			ps.fill(&ev, doc)
			b.Logf("%d fields", doc.Len())
			fit := new(fitter)
			b.ReportAllocs()
			cpu0 := processCPU(b)
			for b.Loop() {
				fit.fit(doc)
			}
			// CPU time, as BenchmarkDocument reports it.
			b.ReportMetric(float64((processCPU(b)-cpu0).Nanoseconds())/float64(b.N), "cpu-ns/doc")
		})
	}
}
