package main

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sluicelog/sluice/internal/event"
)

// lineOffsets returns the start offset of each line of the file at path.
func lineOffsets(t *testing.T, path string) []int64 {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var offs []int64
	var pos int64
	for _, l := range strings.SplitAfter(string(data), "\n") {
		if l != "" {
			offs = append(offs, pos)
		}
		pos += int64(len(l))
	}
	return offs
}

// TestReconcileFindsDeletedDocuments ships two files through the real
// Kafka and Elasticsearch, deletes five of their documents from
// Elasticsearch, puts the Kafka record of one of them in the dead-letter
// topic, and expects `sluice reconcile` to name exactly the other four, by
// file and offset, and to exit 1; before the deletion it finds no gap.
func TestReconcileFindsDeletedDocuments(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test needs Kafka and Elasticsearch")
	}
	p := newPipeline(t)
	checkout := filepath.Join(p.logs, "services/prod/acme/checkout/app.log")
	billing := filepath.Join(p.logs, "services/prod/acme/billing/app.log")
	appendLines(t, checkout, serviceLines(0, 300, "checkout"))
	appendLines(t, billing, serviceLines(0, 100, "billing"))
	ship := startSluice(t, "ship", "-c", p.shipperCfg)
	agg := startSluice(t, "aggregate", "-c", p.aggCfg)
	assertExactly(t, p, 400)
	ship.stop() // writes the registry
	agg.stop()

	reconcile := func(wantCode int) string {
		t.Helper()
		var out, errOut bytes.Buffer
		code := run([]string{"reconcile", "-c", p.shipperCfg, "-aggregator", p.aggCfg, "-index", p.indexPattern, "-timeout", "1m"}, &out, &errOut)
		if code != wantCode {
			t.Fatalf("sluice reconcile exited %d, want %d\n%s%s", code, wantCode, out.String(), errOut.String())
		}
		t.Logf("sluice reconcile:\n%s%s", out.String(), errOut.String())
		return out.String()
	}
	if out := reconcile(0); !strings.Contains(out, "2 files, 400 acknowledged lines: 400 indexed, 0 dead-lettered, 0 missing in 0 files") {
		t.Fatalf("before any deletion: %s", out)
	}

	co, bo := lineOffsets(t, checkout), lineOffsets(t, billing)
	deleted := map[string][]int64{checkout: {co[0], co[150], co[151], co[299]}, billing: {bo[42]}}
	for path, offs := range deleted {
		q := fmt.Sprintf(`{"query":{"bool":{"filter":[{"term":{"log.file.path":%q}},{"terms":{"log.offset":%s}}]}}}`,
			path, strings.Join(strings.Fields(fmt.Sprint(offs)), ","))
		// Found by path and offset, deleted one by one (this
		// Elasticsearch has no _delete_by_query).
		var res struct {
			Hits struct {
				Hits []struct {
					Index string `json:"_index"`
					ID    string `json:"_id"`
				} `json:"hits"`
			} `json:"hits"`
		}
		if code := p.stack.ES(t, http.MethodPost, "/"+p.indexPattern+"/_search", strings.NewReader(q), &res); code != http.StatusOK || len(res.Hits.Hits) != len(offs) {
			t.Fatalf("searching %v of %s: status %d, %d found", offs, path, code, len(res.Hits.Hits))
		}
		for _, h := range res.Hits.Hits {
			if code := p.stack.ES(t, http.MethodDelete, "/"+h.Index+"/_doc/"+h.ID+"?refresh=true", nil, nil); code != http.StatusOK {
				t.Fatalf("deleting %s/%s: status %d", h.Index, h.ID, code)
			}
		}
	}
	// The line at co[150] was dead-lettered: not missing.
	var deadLettered bool
	for _, r := range p.stack.ReadTopic(t, p.prefix+"-service", 400, 30*time.Second) {
		ev, err := event.Decode(r)
		if err != nil {
			t.Fatal(err)
		}
		if ev.Path == checkout && ev.Offset == co[150] {
			r.Topic, r.Partition = p.prefix+"-dead-letter", 0
			if err := p.stack.Client(t).ProduceSync(context.Background(), r).FirstErr(); err != nil {
				t.Fatal(err)
			}
			deadLettered = true
			break
		}
	}
	if !deadLettered {
		t.Fatal("the record of the line to dead-letter is not in Kafka")
	}

	out := reconcile(1)
	for path, offs := range map[string][]int64{checkout: {co[0], co[151], co[299]}, billing: {bo[42]}} {
		want := fmt.Sprintf("%s (file id ", path)
		line := ""
		for _, l := range strings.Split(out, "\n") {
			if strings.HasPrefix(l, want) {
				line = l
			}
		}
		wantTail := fmt.Sprintf(": %d of %d acknowledged lines missing, at offsets %s", len(offs), map[string]int{checkout: 300, billing: 100}[path],
			strings.Trim(fmt.Sprint(offs), "[]"))
		if !strings.HasSuffix(line, wantTail) {
			t.Errorf("reconcile says %q for %s, want it to end %q", line, path, wantTail)
		}
	}
	if !strings.Contains(out, "2 files, 400 acknowledged lines: 395 indexed, 1 dead-lettered, 4 missing in 2 files") {
		t.Errorf("summary: %s", out)
	}
}
