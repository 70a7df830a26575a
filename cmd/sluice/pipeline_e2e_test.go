package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
)

// TestPipelinesDropAndReroute runs the real shipper and aggregator with
// pipelines: nginx health checks and service debug lines are dropped, admin
// requests are rerouted to another index by a set on service.name. It
// asserts exactly the kept documents are indexed, in the expected indices,
// none of the dropped ones, and that the consumer group's committed offsets
// reach the end of every partition: the dropped records, written last,
// count as delivered.
func TestPipelinesDropAndReroute(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test needs Kafka and Elasticsearch")
	}
	p := newPipeline(t)
	cfg, err := os.ReadFile(p.aggCfg)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, p.aggCfg, string(cfg)+`
pipelines:
  nginx:
    - name: drop-health-checks
      drop:
        if: {or: [{equals: {url.original: /healthz}}, {prefix: {user_agent.original: kube-probe/}}]}
    - name: route-admin
      set: {field: service.name, value: "{service.name}-admin"}
      if: {prefix: {url.original: /admin/}}
  service:
    - name: drop-debug
      drop: {if: {in: {log.level: [debug, trace]}}}
`)
	checkout := filepath.Join(p.logs, "services/prod/acme/checkout/app.log")
	access := filepath.Join(p.logs, "nginx/access.log")
	var nginx []string
	for i := 0; i < 150; i++ {
		switch {
		case i%3 == 1:
			nginx = append(nginx, fmt.Sprintf(`10.0.0.2 - - [25/Nov/2026:10:00:%02d +0000] "GET /healthz HTTP/1.1" 200 2 "-" "curl/8.5.0" 0.000 0.000 "-"`, i%60))
		case i%10 == 0:
			nginx = append(nginx, fmt.Sprintf(`81.2.69.142 - - [25/Nov/2026:10:00:%02d +0000] "GET /admin/users?id=%d HTTP/1.1" 200 9 "-" "curl/8.5.0" 0.001 0.001 "-"`, i%60, i))
		default:
			nginx = append(nginx, nginxLines(i, i+1)...)
		}
	}
	for i := 0; i < 20; i++ { // the last records of the partition are dropped
		nginx = append(nginx, fmt.Sprintf(`10.0.0.3 - - [25/Nov/2026:10:01:%02d +0000] "GET /ready HTTP/1.1" 200 2 "-" "kube-probe/1.31" 0.000 0.000 "-"`, i))
	}
	service := serviceLines(0, 100, "checkout")
	for i := 0; i < 30; i++ {
		service = append(service, fmt.Sprintf(`{"@timestamp":"2026-11-25T10:02:%02d.000Z","level":"debug","service":"checkout","msg":"cache miss","id":"d%d"}`, i, i))
	}
	appendLines(t, access, nginx)
	appendLines(t, checkout, service)
	// nginx: 150 lines, 50 health checks (i%3 == 1), 10 admin of the rest
	// (i%10 == 0 and i%3 != 1); then 20 probes. service: 100 kept, 30 debug.
	admin := 0
	for i := 0; i < 150; i++ {
		if i%10 == 0 && i%3 != 1 {
			admin++
		}
	}
	want := map[string]int{
		p.prefix + "-nginx-edge-prod":       100 - admin,
		p.prefix + "-nginx-edge-admin-prod": admin,
		p.prefix + "-service-checkout-prod": 100,
	}
	total := 200
	records := len(nginx) + len(service)

	ship := startSluice(t, "ship", "-c", p.shipperCfg)
	agg := startSluice(t, "aggregate", "-c", p.aggCfg)
	defer ship.stop()
	defer agg.stop()
	if got := p.stack.WaitCount(t, p.indexPattern, total, 2*time.Minute); got != total {
		t.Fatalf("indexed %d documents, want %d", got, total)
	}

	// Every record, the dropped ones too, is committed.
	adm := kadm.NewClient(p.stack.Client(t))
	topics := []string{p.prefix + "-nginx", p.prefix + "-service"}
	var committed, end int64
	deadline := time.Now().Add(time.Minute)
	for {
		committed, end = groupProgress(t, adm, p.prefix, topics)
		if committed == end && end == int64(records) || time.Now().After(deadline) {
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	if end != int64(records) {
		t.Fatalf("topics hold %d records, want %d", end, records)
	}
	if committed != end {
		t.Fatalf("consumer group committed %d of %d records; the dropped ones at the end must be committed too", committed, end)
	}

	time.Sleep(2 * time.Second) // anything wrongly indexed has time to arrive
	if got := p.stack.Count(t, p.indexPattern); got != total {
		t.Fatalf("%d documents, want exactly %d", got, total)
	}
	for index, n := range want {
		if got := p.stack.Count(t, index); got != n {
			t.Errorf("index %s holds %d documents, want %d", index, got, n)
		}
	}
	for _, q := range []string{
		`{"query":{"term":{"url.original":"/healthz"}}}`,
		`{"query":{"term":{"url.original":"/ready"}}}`,
		`{"query":{"term":{"log.level":"debug"}}}`,
	} {
		if hits := p.stack.Search(t, p.indexPattern, q); len(hits) != 0 {
			t.Errorf("%s: %d documents indexed, want 0 (dropped)", q, len(hits))
		}
	}
}

// groupProgress sums the group's committed offsets and the end offsets of
// the topics' partitions.
func groupProgress(t *testing.T, adm *kadm.Client, group string, topics []string) (committed, end int64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ends, err := adm.ListEndOffsets(ctx, topics...)
	if err != nil {
		t.Fatalf("listing end offsets: %v", err)
	}
	ends.Each(func(o kadm.ListedOffset) { end += o.Offset })
	offsets, err := adm.FetchOffsets(ctx, group)
	if err != nil {
		t.Fatalf("fetching group offsets: %v", err)
	}
	offsets.Each(func(o kadm.OffsetResponse) {
		if o.Err == nil {
			committed += o.At
		}
	})
	return committed, end
}
