package main

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sluicelog/sluice/internal/event"
)

// TestMultilineShipperKilledMidTrace ships a Java stack trace (the sample
// of testdata/multiline, with "Caused by" and "... 16 more") through the
// real shipper, Kafka, aggregator and Elasticsearch, and SIGKILLs the
// shipper while the trace is half written: after the restart the trace is
// read again from its first line, whole, and is ONE document, under the id
// of its first line's offset; the index holds every event once.
func TestMultilineShipperKilledMidTrace(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test needs Kafka and Elasticsearch")
	}
	p := newPipeline(t)
	sample, err := os.ReadFile(filepath.Join("..", "..", "testdata", "multiline", "java.log"))
	if err != nil {
		t.Fatal(err)
	}
	text := string(sample)
	// The pipeline's shipper, its service input with the java preset.
	base, err := os.ReadFile(p.shipperCfg)
	if err != nil {
		t.Fatal(err)
	}
	shipperCfg := func(timeout string) string {
		path := filepath.Join(p.dir, "shipper-multiline-"+timeout+".yaml")
		cfg := strings.Replace(string(base), "  - type: nginx\n", "    multiline: {preset: java, timeout: "+timeout+"}\n  - type: nginx\n", 1)
		if cfg == string(base) {
			t.Fatal("the pipeline's shipper config has no nginx input to put the multiline block before")
		}
		writeFile(t, path, cfg)
		return path
	}
	log := filepath.Join(p.logs, "services/prod/acme/checkout/app.log")
	cut := strings.Index(text, "Caused by: java.sql")
	traceStart := int64(strings.Index(text, "2026-12-06 07:41:02.387"))
	appendLines(t, log, strings.Split(strings.TrimSuffix(text[:cut], "\n"), "\n"))

	agg := startSluice(t, "aggregate", "-c", p.aggCfg)
	// A long timeout: the half-written trace waits in the shipper for its
	// next line when it is killed.
	ship := startSluice(t, "ship", "-c", shipperCfg("60s"))
	if got := p.stack.WaitCount(t, p.indexPattern, 1, time.Minute); got != 1 {
		t.Fatalf("indexed %d documents, want the line before the trace", got)
	}
	time.Sleep(500 * time.Millisecond)
	ship.kill()
	if got := p.stack.Count(t, p.indexPattern); got != 1 {
		t.Fatalf("%d documents before the kill, want 1: the trace was shipped in part", got)
	}
	appendLines(t, log, strings.Split(strings.TrimSuffix(text[cut:], "\n"), "\n"))
	ship = startSluice(t, "ship", "-c", shipperCfg("500ms"))
	assertExactly(t, p, 4) // the line before, the trace, two lines after

	recs := p.stack.ReadTopic(t, p.prefix+"-service", 4, 30*time.Second)
	fileID := ""
	for _, r := range recs {
		ev, err := event.Decode(r)
		if err != nil {
			t.Fatal(err)
		}
		fileID = ev.FileID
		if strings.Contains(string(ev.Line), "Caused by") && (ev.Offset != traceStart || !ev.HasFlag(event.FlagMultiline)) {
			t.Errorf("a record of the trace at offset %d flagged %v, want it at %d flagged multiline", ev.Offset, ev.Flags, traceStart)
		}
	}
	var res struct {
		Hits struct {
			Hits []struct {
				ID     string         `json:"_id"`
				Source map[string]any `json:"_source"`
			} `json:"hits"`
		} `json:"hits"`
	}
	query := `{"query":{"match_phrase":{"message":"HikariPool-1 - Connection is not available"}}}`
	if code := p.stack.ES(t, http.MethodPost, "/"+p.indexPattern+"/_search", strings.NewReader(query), &res); code != http.StatusOK {
		t.Fatalf("search: status %d", code)
	}
	if len(res.Hits.Hits) != 1 {
		t.Fatalf("%d documents hold the trace's last cause, want 1", len(res.Hits.Hits))
	}
	doc := res.Hits.Hits[0]
	wantMessage := text[traceStart:strings.Index(text, "2026-12-06 07:41:02.391")]
	if msg, _ := doc.Source["message"].(string); msg != strings.TrimSuffix(wantMessage, "\n") {
		t.Errorf("the trace's document holds %q, want the whole trace", msg)
	}
	if want := event.DocID("test-node", fileID, traceStart); doc.ID != want {
		t.Errorf("the trace's document id is %s, want %s (its first line's offset, %d)", doc.ID, want, traceStart)
	}
	ship.stop()
	agg.stop()
}
