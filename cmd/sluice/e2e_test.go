package main

import (
	"bufio"
	"bytes"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sluicelog/sluice/internal/testenv"
)

// The test binary doubles as the sluice binary: run with SLUICE_AS_BINARY
// set, it runs the command line after "--" as sluice would. End-to-end
// tests start the shipper and the aggregator as real child processes this
// way, so they can be stopped, killed and restarted.
func TestMain(m *testing.M) {
	if os.Getenv("SLUICE_AS_BINARY") == "1" {
		args := os.Args[1:]
		for i, a := range args {
			if a == "--" {
				args = args[i+1:]
				break
			}
		}
		os.Exit(run(args, os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

// proc is a sluice child process.
type proc struct {
	t   *testing.T
	cmd *exec.Cmd
	out *bytes.Buffer
}

func startSluice(t *testing.T, args ...string) *proc {
	t.Helper()
	cmd := exec.Command(os.Args[0], append([]string{"-test.run=^$", "--"}, args...)...)
	cmd.Env = append(os.Environ(), "SLUICE_AS_BINARY=1")
	out := &bytes.Buffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting sluice %v: %v", args, err)
	}
	p := &proc{t: t, cmd: cmd, out: out}
	t.Cleanup(func() {
		if p.cmd.ProcessState == nil {
			_ = p.cmd.Process.Kill()
			_ = p.cmd.Wait()
		}
		if t.Failed() {
			t.Logf("sluice %s output:\n%s", args[0], tail(out.String(), 40))
		}
	})
	return p
}

// stop sends SIGTERM and waits for a clean exit.
func (p *proc) stop() {
	p.t.Helper()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- p.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			p.t.Fatalf("sluice exited with %v:\n%s", err, tail(p.out.String(), 40))
		}
	case <-time.After(30 * time.Second):
		_ = p.cmd.Process.Kill()
		p.t.Fatalf("sluice did not stop within 30s of SIGTERM")
	}
}

// kill sends SIGKILL.
func (p *proc) kill() {
	_ = p.cmd.Process.Kill()
	_ = p.cmd.Wait()
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func appendLines(t *testing.T, path string, lines []string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w := bufio.NewWriter(f)
	for _, l := range lines {
		w.WriteString(l)
		w.WriteByte('\n')
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
}

func serviceLines(from, to int, service string) []string {
	var out []string
	for i := from; i < to; i++ {
		out = append(out, fmt.Sprintf(`{"@timestamp":"2026-11-25T10:%02d:%02d.000Z","level":"info","service":%q,"msg":"order placed","id":"s%d"}`, (i/60)%60, i%60, service, i))
	}
	return out
}

func nginxLines(from, to int) []string {
	var out []string
	for i := from; i < to; i++ {
		out = append(out, fmt.Sprintf(`81.2.69.142 - - [25/Nov/2026:10:00:%02d +0000] "GET /api/v1/orders?id=n%d HTTP/1.1" 200 %d "-" "curl/8.5.0" 0.012 0.010 "-"`, i%60, i, 100+i))
	}
	return out
}

// pipeline is a shipper and an aggregator configured for one test's own
// topics and indices.
type pipeline struct {
	stack        *testenv.Stack
	dir, logs    string
	shipperCfg   string
	aggCfg       string
	prefix       string
	indexPattern string
}

func newPipeline(t *testing.T) *pipeline {
	t.Helper()
	stack := testenv.Start(t)
	dir := t.TempDir()
	prefix := testenv.Name(t, "e2e")
	p := &pipeline{stack: stack, dir: dir, logs: filepath.Join(dir, "logs"), prefix: prefix, indexPattern: prefix + "-*"}
	p.shipperCfg = filepath.Join(dir, "shipper.yaml")
	writeFile(t, p.shipperCfg, fmt.Sprintf(`
node: test-node
registry: %[1]s/registry
scan_interval: 200ms
registry_flush: 200ms
inputs:
  - type: service
    paths: ["%[2]s/services/*/*/*/*.log"]
    path_fields: %[2]s/services/{environment}/{customer}/{service}/
  - type: nginx
    paths: ["%[2]s/nginx/*.log"]
    fields: {service: edge, environment: prod}
kafka:
  brokers: ["%[3]s"]
  topic: %[4]s-{type}
  partitions: 3
http:
  listen: 127.0.0.1:0
`, dir, p.logs, stack.Broker, prefix))
	p.aggCfg = p.aggregatorConfig(t, stack.Elasticsearch, "127.0.0.1:0")
	stack.DeleteIndices(t, p.indexPattern)
	t.Cleanup(func() {
		stack.ES(t, http.MethodDelete, "/_index_template/"+prefix, nil, nil)
	})
	return p
}

// aggregatorConfig writes an aggregator config for this pipeline with the
// given Elasticsearch address and HTTP listen address, and returns its path.
func (p *pipeline) aggregatorConfig(t *testing.T, es, listen string) string {
	t.Helper()
	path := filepath.Join(p.dir, fmt.Sprintf("aggregator-%d.yaml", time.Now().UnixNano()))
	writeFile(t, path, fmt.Sprintf(`
kafka:
  brokers: ["%[1]s"]
  group: %[2]s
  topics: [%[2]s-service, %[2]s-nginx]
  dead_letter_topic: %[2]s-dead-letter
  session_timeout: 6s
elasticsearch:
  addresses: ["%[3]s"]
  index: %[2]s-{type}-{service}-{environment}
  template_name: %[2]s
  retry_max: 1s
http:
  listen: %[4]s
`, p.stack.Broker, p.prefix, es, listen))
	return path
}

// TestEndToEnd writes service and nginx lines, runs the real shipper and
// aggregator against the real Kafka and Elasticsearch, and asserts exactly
// one document per line in the expected indices; then restarts the shipper,
// writes more, and asserts that nothing was indexed twice.
func TestEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test needs Kafka and Elasticsearch")
	}
	p := newPipeline(t)
	checkout := filepath.Join(p.logs, "services/prod/acme/checkout/app.log")
	billing := filepath.Join(p.logs, "services/staging/globex/billing/app.log")
	access := filepath.Join(p.logs, "nginx/access.log")
	appendLines(t, checkout, serviceLines(0, 300, "checkout"))
	appendLines(t, checkout, []string{"this line is not JSON", `["json", "but not an object"]`})
	appendLines(t, billing, serviceLines(0, 100, "billing"))
	appendLines(t, access, nginxLines(0, 200))
	want := map[string]int{
		p.prefix + "-service-checkout-prod":   302,
		p.prefix + "-service-billing-staging": 100,
		p.prefix + "-nginx-edge-prod":         200,
	}
	total := 602

	listen := freeAddr(t)
	aggCfg := p.aggregatorConfig(t, p.stack.Elasticsearch, listen)
	ship := startSluice(t, "ship", "-c", p.shipperCfg)
	agg := startSluice(t, "aggregate", "-c", aggCfg)
	if got := p.stack.WaitCount(t, p.indexPattern, total, 2*time.Minute); got != total {
		t.Fatalf("indexed %d documents, want %d", got, total)
	}
	assertCaughtUp(t, listen, total)
	for index, n := range want {
		if got := p.stack.Count(t, index); got != n {
			t.Errorf("index %s holds %d documents, want %d", index, got, n)
		}
	}
	assertRawFlagged(t, p)

	// Restart the shipper: it continues from its registry, so the lines it
	// already shipped are not shipped again.
	ship.stop()
	appendLines(t, checkout, serviceLines(300, 350, "checkout"))
	ship = startSluice(t, "ship", "-c", p.shipperCfg)
	total += 50
	if got := p.stack.WaitCount(t, p.indexPattern, total, time.Minute); got != total {
		t.Fatalf("after restart: indexed %d documents, want %d", got, total)
	}
	time.Sleep(3 * time.Second) // would-be duplicates have time to arrive
	if got := p.stack.Count(t, p.indexPattern); got != total {
		t.Fatalf("after restart: %d documents, want exactly %d", got, total)
	}
	ship.stop()
	agg.stop()
}

// assertCaughtUp waits until the aggregator serving metrics on listen has
// committed records offsets in all (one offset per record, as each
// partition starts at 0) and reports no consumer lag on any partition.
func assertCaughtUp(t *testing.T, listen string, records int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		committed, partitions := metricSum(t, listen, "sluice_aggregator_committed_offset")
		lag, lagged := metricSum(t, listen, "sluice_aggregator_consumer_lag_records")
		if committed == float64(records) && lag == 0 && lagged == partitions && partitions > 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("committed offsets sum to %v over %d partitions, lag %v over %d; want %d records committed, no lag",
				committed, partitions, lag, lagged, records)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// assertRawFlagged checks that a line that is not JSON was indexed raw with
// its parse error, not dropped.
func assertRawFlagged(t *testing.T, p *pipeline) {
	t.Helper()
	hits := p.stack.Search(t, p.indexPattern, `{"query":{"exists":{"field":"error.message"}}}`)
	if len(hits) != 2 {
		t.Fatalf("%d documents flagged with error.message, want 2", len(hits))
	}
	for _, h := range hits {
		msg, _ := h["message"].(string)
		if msg != "this line is not JSON" && msg != `["json", "but not an object"]` {
			t.Errorf("flagged document has message %q, want the raw line", msg)
		}
	}
}
