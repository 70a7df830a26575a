package main

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// editConfig rewrites the config at path, replacing each old text with its
// new text; the test fails if an old text is missing.
func editConfig(t *testing.T, path string, oldNew ...string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	for i := 0; i < len(oldNew); i += 2 {
		if !strings.Contains(s, oldNew[i]) {
			t.Fatalf("config %s has no %q", path, oldNew[i])
		}
		s = strings.Replace(s, oldNew[i], oldNew[i+1], 1)
	}
	writeFile(t, path, s)
}

// replayTopic runs `sluice replay` of topic and checks how many records it
// sent.
func replayTopic(t *testing.T, cfg, topic string, want int) {
	t.Helper()
	var out strings.Builder
	if code := run([]string{"replay", "-c", cfg, "-topic", topic}, &out, &out); code != 0 {
		t.Fatalf("sluice replay exited %d: %s", code, out.String())
	}
	if !strings.Contains(out.String(), fmt.Sprintf("replayed %d records", want)) {
		t.Fatalf("sluice replay said %q, want %d records", out.String(), want)
	}
}

// TestDateSuffixedIndexFromEventTime names indices with a date taken from
// each event's own @timestamp, not from the time of indexing: lines of two
// days land in two indices, a line without a time in the index of the day
// it was read, and a re-delivery (sluice replay of the whole topic) lands
// in the same indices and deduplicates on the document ids.
func TestDateSuffixedIndexFromEventTime(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test needs Kafka and Elasticsearch")
	}
	p := newPipeline(t)
	editConfig(t, p.aggCfg, "index: "+p.prefix+"-{type}-{service}-{environment}", "index: "+p.prefix+"-{type}-{+2006.01.02}")
	// Days within elasticsearch.accept_time (30 days back): d1 and d2
	// alternately, and d0 the day before d1.
	d0 := time.Now().UTC().Truncate(24*time.Hour).AddDate(0, 0, -4)
	d1, d2 := d0.AddDate(0, 0, 1), d0.AddDate(0, 0, 2)
	var lines []string
	for i := range 120 {
		day := []time.Time{d1, d2}[i%2]
		lines = append(lines, fmt.Sprintf(`{"@timestamp":"%sT23:59:%02d.000+00:00","level":"info","msg":"tick","id":"d%d"}`, day.Format("2006-01-02"), i%60, i))
	}
	// Epoch milliseconds, and an offset that moves the UTC date: both are
	// d0 at 23:30 UTC.
	at := d0.Add(23*time.Hour + 30*time.Minute)
	lines = append(lines, fmt.Sprintf(`{"ts":%d,"msg":"epoch ms"}`, at.UnixMilli()),
		fmt.Sprintf(`{"time":%q,"msg":"offset"}`, at.In(time.FixedZone("", 2*3600)).Format(time.RFC3339)))
	lines = append(lines, "not JSON: no time of its own") // read time
	appendLines(t, filepath.Join(p.logs, "services/prod/acme/checkout/app.log"), lines)
	before := time.Now().UTC()
	ship := startSluice(t, "ship", "-c", p.shipperCfg)
	agg := startSluice(t, "aggregate", "-c", p.aggCfg)
	assertExactly(t, p, len(lines))
	after := time.Now().UTC()

	today := p.prefix + "-service-" + before.Format("2006.01.02")
	want := map[string]int{
		p.prefix + "-service-" + d0.Format("2006.01.02"): 2,
		p.prefix + "-service-" + d1.Format("2006.01.02"): 60,
		p.prefix + "-service-" + d2.Format("2006.01.02"): 60,
	}
	if before.Format("2006.01.02") != after.Format("2006.01.02") {
		t.Skip("the test ran across midnight UTC; the read-time line's index is ambiguous")
	}
	want[today]++
	for index, n := range want {
		if got := p.stack.Count(t, index); got != n {
			t.Errorf("index %s holds %d documents, want %d", index, got, n)
		}
	}
	agg.stop()
	ship.stop()

	// Every record again, days later as far as indexing is concerned: the
	// same indices, the same ids, no new documents.
	replayTopic(t, p.aggCfg, p.prefix+"-service", len(lines))
	assertExactly(t, p, len(lines))
	for index, n := range want {
		if got := p.stack.Count(t, index); got != n {
			t.Errorf("after the replay, index %s holds %d documents, want %d", index, got, n)
		}
	}
}

// TestDataStreamCreate writes into a data stream, as the built-in logs
// template of a default Elasticsearch makes of logs-*-* names: data streams
// accept only the create action. With elasticsearch.action create and
// Sluice's own template off, every line lands in the data stream; a
// re-delivery of every record gets 409 on the deterministic ids, which
// counts as delivered: no duplicates and nothing dead-lettered.
func TestDataStreamCreate(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test needs Kafka and Elasticsearch")
	}
	p := newPipeline(t)
	// A data stream template like the built-in logs one (which this test
	// distribution lacks). Data streams cannot be deleted here (that API is
	// in an x-pack module the test distribution does not have): the names
	// are the test's own.
	stream := p.prefix + "-ds-service"
	tmpl := p.prefix + "-ds"
	if code := p.stack.ES(t, http.MethodPut, "/_index_template/"+tmpl, strings.NewReader(fmt.Sprintf(
		`{"index_patterns":["%s-ds-*"],"data_stream":{},"priority":150,
		  "template":{"mappings":{"properties":{"@timestamp":{"type":"date"}}}}}`, p.prefix)), nil); code != http.StatusOK {
		t.Fatalf("installing the data stream template: HTTP %d", code)
	}
	editConfig(t, p.aggCfg,
		"index: "+p.prefix+"-{type}-{service}-{environment}", "index: "+p.prefix+"-ds-{type}\n  action: create\n  template: false")
	lines := serviceLines(0, 300, "checkout")
	appendLines(t, filepath.Join(p.logs, "services/prod/acme/checkout/app.log"), lines)
	ship := startSluice(t, "ship", "-c", p.shipperCfg)
	agg := startSluice(t, "aggregate", "-c", p.aggCfg)
	if got := p.stack.WaitCount(t, stream, len(lines), 2*time.Minute); got != len(lines) {
		t.Fatalf("data stream %s holds %d documents, want %d", stream, got, len(lines))
	}
	agg.stop()
	ship.stop()
	// The documents are in the stream's backing indices, not in an index
	// of that name.
	var backing []map[string]string
	p.stack.ES(t, http.MethodGet, "/_cat/indices/.ds-"+stream+"-*?format=json&h=index", nil, &backing)
	if len(backing) == 0 {
		t.Fatalf("no backing index .ds-%s-*: not a data stream", stream)
	}

	replayTopic(t, p.aggCfg, p.prefix+"-service", len(lines))
	time.Sleep(2 * time.Second)
	if got := p.stack.Count(t, stream); got != len(lines) {
		t.Fatalf("after the replay, data stream %s holds %d documents, want exactly %d", stream, got, len(lines))
	}
	if dead := p.stack.ReadTopic(t, p.prefix+"-dead-letter", 1, 3*time.Second); len(dead) != 0 {
		t.Fatalf("%d records dead-lettered; a 409 on the deterministic id means delivered", len(dead))
	}
}

// TestTemplateTakesPrecedenceOverBuiltinLogs installs a template like the
// built-in logs one (a data stream for the same names, priority 100) and
// runs the aggregator with the default index action: Sluice's template
// (priority 200) wins, the names become ordinary indices, and the index
// action with its deterministic ids works.
func TestTemplateTakesPrecedenceOverBuiltinLogs(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test needs Kafka and Elasticsearch")
	}
	p := newPipeline(t)
	tmpl := p.prefix + "-builtin-like"
	if code := p.stack.ES(t, http.MethodPut, "/_index_template/"+tmpl, strings.NewReader(fmt.Sprintf(
		`{"index_patterns":["%s-*-*"],"data_stream":{},"priority":100}`, p.prefix)), nil); code != http.StatusOK {
		t.Fatalf("installing the built-in-like template: HTTP %d", code)
	}
	t.Cleanup(func() { p.stack.ES(t, http.MethodDelete, "/_index_template/"+tmpl, nil, nil) })
	appendLines(t, filepath.Join(p.logs, "services/prod/acme/checkout/app.log"), serviceLines(0, 200, "checkout"))
	ship := startSluice(t, "ship", "-c", p.shipperCfg)
	agg := startSluice(t, "aggregate", "-c", p.aggCfg)
	assertExactly(t, p, 200)
	agg.stop()
	ship.stop()
	index := p.prefix + "-service-checkout-prod"
	var got map[string]struct {
		Settings struct {
			Index struct {
				Hidden string `json:"hidden"`
			} `json:"index"`
		} `json:"settings"`
	}
	if code := p.stack.ES(t, http.MethodGet, "/"+index+"/_settings", nil, &got); code != http.StatusOK {
		t.Fatalf("GET %s/_settings: HTTP %d", index, code)
	}
	if _, ok := got[index]; !ok {
		t.Fatalf("%s is not an ordinary index (a data stream's backing index would be .ds-%s-*): %v", index, index, got)
	}
}
