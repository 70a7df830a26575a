package runner

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/sluicelog/sluice/internal/config"
)

// TestLogsNameTheirComponent: in sluice run, every log line says which
// component wrote it (zap's logger name): the runner, the shipper, and the
// aggregator's stages (here the process stage's warning about nginx lines
// that do not match the log_format).
func TestLogsNameTheirComponent(t *testing.T) {
	dir := t.TempDir()
	var lines strings.Builder
	for i := range 12 {
		fmt.Fprintf(&lines, "not an nginx line %d\n", i)
	}
	if err := os.WriteFile(filepath.Join(dir, "access.log"), []byte(lines.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "documents.ndjson")
	yaml := fmt.Sprintf(`
registry: %s
inputs: [{type: nginx, paths: [%q]}]
output: {file: {path: %q}}
dead_letter_file: %q
`, filepath.Join(dir, "registry"), filepath.Join(dir, "*.log"), out, filepath.Join(dir, "dead.ndjson"))
	var cfg Config
	if err := config.Decode([]byte(yaml), &cfg, func(string) (string, bool) { return "", false }); err != nil {
		t.Fatal(err)
	}
	core, logs := observer.New(zap.InfoLevel)
	r, err := New(cfg, prometheus.NewRegistry(), zap.New(core))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	deadline := time.Now().Add(20 * time.Second)
	for {
		data, _ := os.ReadFile(out)
		if strings.Count(string(data), "\n") == 12 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("documents not written within 20s:\n%s", data)
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, e := range logs.All() {
		names[e.LoggerName] = true
		if e.LoggerName == "" {
			t.Errorf("a line without its component: %q", e.Message)
		}
	}
	for _, want := range []string{"runner", "shipper", "aggregator.process"} {
		if !names[want] {
			t.Errorf("no line from %s; loggers: %v", want, names)
		}
	}
}
