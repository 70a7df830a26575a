package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sluicelog/sluice/internal/tap"
)

// tapCLI runs `sluice tap` in this process with args and returns the
// events it printed, once it ends (at its -limit).
func tapCLI(args ...string) (<-chan []tap.Event, <-chan error) {
	out, errc := make(chan []tap.Event, 1), make(chan error, 1)
	go func() {
		var stdout, stderr bytes.Buffer
		if code := run(append([]string{"tap"}, args...), &stdout, &stderr); code != 0 {
			errc <- fmt.Errorf("sluice tap %v: exit %d: %s", args, code, stderr.String())
			return
		}
		var evs []tap.Event
		for _, l := range strings.Split(strings.TrimSpace(stdout.String()), "\n") {
			var e tap.Event
			if err := json.Unmarshal([]byte(l), &e); err != nil {
				errc <- fmt.Errorf("sluice tap %v printed %q: %v", args, l, err)
				return
			}
			if e.Dropped == 0 {
				evs = append(evs, e)
			}
		}
		out <- evs
	}()
	return out, errc
}

// TestTapShipAndAggregate taps a running shipper's lines and a running
// aggregator's documents and dead letters, each filtered, while lines are
// written: each tap sees what its filter asks for, where it was read from
// or where it goes.
func TestTapShipAndAggregate(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test needs Kafka and Elasticsearch")
	}
	p := newPipeline(t)
	shipListen, aggListen := freeAddr(t), freeAddr(t)
	editConfig(t, p.shipperCfg, "listen: 127.0.0.1:0", "listen: "+shipListen)
	aggCfg := p.aggregatorConfig(t, p.stack.Elasticsearch, aggListen)
	checkout := filepath.Join(p.logs, "services/prod/acme/checkout/app.log")
	billing := filepath.Join(p.logs, "services/prod/acme/billing/app.log")
	// "detail" becomes an object in the mapping; a line with it and
	// "again" as strings is one no retry can index (see
	// TestMappingConflictAndDeadLetter).
	appendLines(t, checkout, []string{`{"msg":"object","detail":{"code":1},"again":{"code":1}}`})
	ship := startSluice(t, "ship", "-c", p.shipperCfg)
	agg := startSluice(t, "aggregate", "-c", aggCfg)
	waitServing(t, shipListen)
	waitServing(t, aggListen)

	lines, linesErr := tapCLI("-c", p.shipperCfg, "-stage", "lines", "-service", "checkout", "-where", "level=error", "-limit", "3")
	docs, docsErr := tapCLI("-addr", aggListen, "-stage", "documents", "-type", "service", "-service", "checkout",
		"-where", "log.level=error", "-limit", "3")
	dead, deadErr := tapCLI("-addr", aggListen, "-stage", "dead_letters", "-limit", "1")
	sampled, sampledErr := tapCLI("-addr", shipListen, "-stage", "lines", "-service", "billing", "-rate", "0.5", "-limit", "4")

	// Until every tap has what it waits for.
	defer writeEvery(200*time.Millisecond, func(i int) {
		batch := serviceLines(i*10, i*10+9, "checkout")
		batch = append(batch, fmt.Sprintf(`{"level":"error","service":"checkout","msg":"payment failed","id":"e%d"}`, i))
		if i%5 == 0 {
			batch = append(batch, fmt.Sprintf(`{"msg":"hopeless","detail":"one","again":"two","id":"h%d"}`, i))
		}
		appendLines(t, checkout, batch)
		appendLines(t, billing, serviceLines(i*2, i*2+2, "billing"))
	})()

	wait := func(name string, c <-chan []tap.Event, errc <-chan error) []tap.Event {
		t.Helper()
		select {
		case evs := <-c:
			return evs
		case err := <-errc:
			t.Fatal(err)
		case <-time.After(90 * time.Second):
			t.Fatalf("tap %s saw too little in 90s", name)
		}
		return nil
	}
	content, _ := os.ReadFile(checkout) // grows; holds what was tapped
	gotLines := wait("lines", lines, linesErr)
	content, _ = os.ReadFile(checkout)
	if len(gotLines) != 3 {
		t.Fatalf("lines tap: %d events, want 3", len(gotLines))
	}
	for _, e := range gotLines {
		if e.Stage != tap.StageLines || e.Service != "checkout" || e.Type != "service" || e.Path != checkout || e.Offset == nil ||
			!strings.Contains(e.Line, `"level":"error"`) || !bytes.HasPrefix(content[*e.Offset:], []byte(e.Line+"\n")) {
			t.Errorf("lines tap: %+v is not an error line of checkout at its offset", e)
		}
	}
	for _, e := range wait("documents", docs, docsErr) {
		var doc map[string]any
		if err := json.Unmarshal(e.Document, &doc); err != nil {
			t.Fatalf("documents tap: %s: %v", e.Document, err)
		}
		if want := p.prefix + "-service-checkout-prod"; e.Index != want || e.ID == "" || doc["log.level"] != "error" ||
			doc["message"] != "payment failed" || doc["log.offset"] != float64(*e.Offset) {
			t.Errorf("documents tap: index %s id %q document %s, want an error of checkout for %s", e.Index, e.ID, e.Document, want)
		}
	}
	d := wait("dead_letters", dead, deadErr)
	if len(d) != 1 || d[0].Status == nil || *d[0].Status != 400 || !strings.Contains(d[0].Reason, "again") ||
		!strings.HasPrefix(d[0].Line, `{"msg":"hopeless"`) || d[0].Service != "checkout" {
		t.Errorf("dead letters tap: %+v", d)
	}
	// Billing's lines are written in order, with ids s0, s1, ...: a rate
	// of 0.5 takes every other.
	var ids []int
	for _, e := range wait("sampled", sampled, sampledErr) {
		var id int
		if _, err := fmt.Sscanf(e.Line[strings.Index(e.Line, `"id":"s`)+7:], "%d", &id); err != nil || e.Service != "billing" {
			t.Fatalf("sampled tap: %+v", e)
		}
		ids = append(ids, id)
	}
	for i := 1; i < len(ids); i++ {
		if ids[i] != ids[i-1]+2 {
			t.Errorf("sampled tap took ids %v, want every other line", ids)
		}
	}
	ship.stop()
	agg.stop()
}

// waitServing waits until a process serves HTTP on addr.
func waitServing(t *testing.T, addr string) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); readyz(addr) == 0; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("nothing serves on %s", addr)
		}
	}
}

// TestTapRun taps `sluice run`, whose one process has both stages: the
// lines it reads and the documents it writes to its output file.
func TestTapRun(t *testing.T) {
	dir := t.TempDir()
	logPath := filepath.Join(dir, "logs", "app.log")
	out := filepath.Join(dir, "out", "docs.ndjson")
	listen := freeAddr(t)
	cfg := writeRunConfig(t, filepath.Join(dir, "run.yaml"), dir, listen,
		fmt.Sprintf("output:\n  file: {path: %s}\ndead_letter_file: %s/dead.ndjson", out, dir), filepath.Join(dir, "logs", "*.log"))
	run := startSluice(t, "run", "-c", cfg)
	waitServing(t, listen)
	lines, linesErr := tapCLI("-c", cfg, "-stage", "lines", "-limit", "2")
	docs, docsErr := tapCLI("-c", cfg, "-stage", "documents", "-service", "checkout", "-where", "log.level=info", "-limit", "2")
	defer writeEvery(100*time.Millisecond, func(i int) { appendLines(t, logPath, serviceLines(i, i+1, "checkout")) })()
	for name, c := range map[string]struct {
		evs  <-chan []tap.Event
		errc <-chan error
	}{tap.StageLines: {lines, linesErr}, tap.StageDocuments: {docs, docsErr}} {
		select {
		case evs := <-c.evs:
			if len(evs) != 2 || evs[0].Stage != name || evs[0].Path != logPath || evs[0].Service != "checkout" {
				t.Errorf("%s tap of sluice run: %+v", name, evs)
			}
			if name == tap.StageDocuments && !bytes.Contains(evs[0].Document, []byte(`"log.level":"info"`)) {
				t.Errorf("documents tap of sluice run: %s", evs[0].Document)
			}
			if name == tap.StageDocuments && evs[0].Index != "logs-service-checkout-prod" {
				t.Errorf("documents tap of sluice run: index %q", evs[0].Index)
			}
		case err := <-c.errc:
			t.Fatal(err)
		case <-time.After(30 * time.Second):
			t.Fatalf("%s tap of sluice run saw too little in 30s", name)
		}
	}
	// A tap still open does not hold up SIGTERM.
	open, openErr := tapCLI("-c", cfg, "-stage", "lines")
	time.Sleep(300 * time.Millisecond)
	start := time.Now()
	run.stop()
	if took := time.Since(start); took > 1500*time.Millisecond {
		t.Errorf("sluice run took %v to stop with a tap open", took)
	}
	select {
	case <-open:
	case err := <-openErr:
		t.Errorf("the open tap ended with %v when sluice run stopped", err)
	case <-time.After(5 * time.Second):
		t.Error("the open tap did not end when sluice run stopped")
	}
}

// writeEvery calls write(0), write(1), ... every interval until the
// returned function is called, which waits for the last write.
func writeEvery(interval time.Duration, write func(i int)) (stop func()) {
	stopc, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; ; i++ {
			select {
			case <-stopc:
				return
			case <-time.After(interval):
			}
			write(i)
		}
	}()
	return func() { close(stopc); <-done }
}
