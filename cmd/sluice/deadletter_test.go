package main

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sluicelog/sluice/aggregator"
	"github.com/sluicelog/sluice/internal/testenv"
)

// TestMappingConflictAndDeadLetter sends a document whose field conflicts
// with the mapping (it is indexed with the field moved aside) and one that
// no retry can fix (to the dead-letter topic, with the reason), among good
// ones that are not affected.
func TestMappingConflictAndDeadLetter(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test needs Kafka and Elasticsearch")
	}
	p := newPipeline(t)
	path := filepath.Join(p.logs, "services/prod/acme/checkout/app.log")
	lines := serviceLines(0, 50, "checkout")
	// "detail" becomes an object in the index's mapping: a later string
	// under it conflicts. (A string under a name the index template maps
	// as an object, such as "error", is moved before indexing instead.)
	lines = append(lines, `{"msg":"object","detail":{"code":1},"again":{"code":1},"id":"object"}`,
		`{"msg":"conflict","detail":"a plain string","id":"conflict"}`)
	// Two conflicting fields: the retry moves only one, so it is
	// hopeless.
	lines = append(lines, `{"msg":"hopeless","detail":"one","again":"two"}`)
	appendLines(t, path, lines)

	ship := startSluice(t, "ship", "-c", p.shipperCfg)
	agg := startSluice(t, "aggregate", "-c", p.aggCfg)
	assertExactly(t, p, 52)

	hits := p.stack.Search(t, p.indexPattern, `{"query":{"term":{"tags":"mapping_conflict"}}}`)
	if len(hits) != 1 || testenv.Flat(hits[0])["labels.moved_detail"] != "a plain string" {
		t.Fatalf("conflicting document: %+v", hits)
	}

	dead := p.stack.ReadTopic(t, p.prefix+"-dead-letter", 1, 30*time.Second)
	if len(dead) != 1 {
		t.Fatalf("%d dead-lettered records, want 1", len(dead))
	}
	headers := map[string]string{}
	for _, h := range dead[0].Headers {
		headers[h.Key] = string(h.Value)
	}
	if headers[aggregator.HeaderDLQStatus] != "400" || !strings.Contains(headers[aggregator.HeaderDLQReason], "again") ||
		!strings.HasPrefix(string(dead[0].Value), `{"msg":"hopeless"`) || headers["sluice.type"] != "service" {
		t.Fatalf("dead letter: headers %v, value %.40q", headers, dead[0].Value)
	}
	ship.stop()
	agg.stop()
}

// TestReplay deletes the indices after everything was indexed and replays
// the source topic: every document comes back, once.
func TestReplay(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test needs Kafka and Elasticsearch")
	}
	p := newPipeline(t)
	appendLines(t, filepath.Join(p.logs, "services/prod/acme/checkout/app.log"), serviceLines(0, 500, "checkout"))
	ship := startSluice(t, "ship", "-c", p.shipperCfg)
	agg := startSluice(t, "aggregate", "-c", p.aggCfg)
	assertExactly(t, p, 500)
	agg.stop()
	ship.stop()
	p.stack.ES(t, "DELETE", "/"+p.indexPattern, nil, nil)
	if n := p.stack.Count(t, p.indexPattern); n != 0 {
		t.Fatalf("%d documents left after deleting the indices", n)
	}
	replayTopic(t, p.aggCfg, p.prefix+"-service", 500)
	assertExactly(t, p, 500)
}
