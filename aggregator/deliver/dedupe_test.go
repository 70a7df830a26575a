package deliver

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap/zaptest"

	"github.com/sluicelog/sluice/internal/event"
	"github.com/sluicelog/sluice/internal/telemetry"
	"github.com/sluicelog/sluice/internal/testenv"
)

// TestDedupeLookupCost measures what looking up 1,000 suspect documents
// costs against the real Elasticsearch, when all are found (a replay) and
// when none is (records that were never indexed). Run with -v for the
// figures.
func TestDedupeLookupCost(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test needs Elasticsearch")
	}
	stack := testenv.Start(t)
	name := testenv.Name(t, "cost")
	stack.DeleteIndices(t, name+"-*")
	log := zaptest.NewLogger(t)
	reg := prometheus.NewRegistry()
	es, err := NewESClient(ElasticsearchConfig{Addresses: []string{stack.Elasticsearch}}, log)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// The documents of 1,000 lines, as the aggregator indexes them into the
	// day's index.
	index := name + "-" + time.Now().UTC().Format("2006.01.02")
	docs := make([]Item, 1000)
	for i := range docs {
		docs[i] = Item{Index: index, ID: event.DocID("node-1", "f1", int64(i)*100), Source: []byte(`{"message":"x"}`)}
	}
	bulk := NewBulk(es, ElasticsearchConfig{Action: "index", BulkBytes: 5 << 20, RetryMax: time.Second}, NewMetrics(reg), log, telemetry.NewEvery(time.Minute))
	out, err := bulk.DeliverAll(ctx, docs)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range out {
		if !o.Delivered {
			t.Fatalf("indexing: %+v", o)
		}
	}
	d := newDeduper(es, reg, log)
	for _, tt := range []struct {
		what  string
		shift int64 // offsets moved past the indexed ones: never indexed
		want  int
	}{{"all found", 0, 1000}, {"none found", 1 << 40, 0}} {
		items := make([]Item, len(docs))
		which := make([]int, len(docs))
		for i := range items {
			items[i] = Item{ID: event.DocID("node-1", "f1", int64(i)*100+tt.shift), Lookup: name + "-*"}
			which[i] = i
		}
		const rounds = 5
		start := time.Now()
		for range rounds {
			found, err := d.find(ctx, items, which)
			if err != nil {
				t.Fatal(err)
			}
			if len(found) != tt.want {
				t.Fatalf("%s: found %d, want %d", tt.what, len(found), tt.want)
			}
		}
		t.Logf("lookup of 1,000 suspect documents, %s: %v", tt.what, time.Since(start)/rounds)
	}
}
