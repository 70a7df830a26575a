package process

import (
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/sluicelog/sluice/internal/event"
	"github.com/sluicelog/sluice/parser"
)

// Tester builds documents exactly as the aggregator does — parser, GeoIP
// (when configured), pipeline, index name — without Kafka or
// Elasticsearch. It backs `sluice test`.
type Tester struct {
	builder
}

// Result is what the aggregator would do with one event.
type Result struct {
	// Doc is the document that would be indexed; nil when dropped.
	Doc *parser.Doc
	// Index is the index it would be indexed into.
	Index string
	// DroppedBy names the pipeline step that dropped the document.
	DroppedBy string
}

// NewTester prepares the parsers, GeoIP databases and pipelines of a
// validated cfg. Close it when done.
func NewTester(cfg Config) (*Tester, error) {
	b, err := newBuilder(cfg, prometheus.NewRegistry(), zap.NewNop())
	if err != nil {
		return nil, err
	}
	return &Tester{builder: b}, nil
}

// Document runs ev through the aggregator's document building.
func (t *Tester) Document(ev event.Event) Result {
	doc := newDoc()
	_, keep, by, index := t.build(&ev, doc)
	if !keep {
		return Result{DroppedBy: by}
	}
	return Result{Doc: doc, Index: index}
}

// Close releases the GeoIP databases.
func (t *Tester) Close() error {
	if t.geo != nil {
		return t.geo.Close()
	}
	return nil
}
