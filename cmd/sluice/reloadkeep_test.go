package main

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sluicelog/sluice/internal/testenv"
)

// TestReloadKeepsRunningPipelineWhenNewCannotStart reloads `sluice run`
// (into the real Elasticsearch) with a configuration that validates but
// whose Elasticsearch does not answer: the reload fails, counted and said
// in a sentence, and the running pipeline is not stopped — it goes on
// indexing. Then a reload that succeeds leaves the counters where they
// were instead of starting them from zero.
func TestReloadKeepsRunningPipelineWhenNewCannotStart(t *testing.T) {
	stack := testenv.Start(t)
	dir := t.TempDir()
	prefix := runIndexPrefix(t, stack)
	listen := freeAddr(t)
	logPath := filepath.Join(dir, "logs", "app.log")
	cfgPath := filepath.Join(dir, "run.yaml")
	config := func(es, retry string) {
		writeRunConfig(t, cfgPath, dir, listen, fmt.Sprintf(`elasticsearch:
  addresses: [%q]
  index: %s-{type}-{service}-{environment}
  template_name: %s
  retry_max: %s`, es, prefix, prefix, retry), filepath.Join(dir, "logs", "*.log"))
	}
	config(stack.Elasticsearch, "1s")
	appendLines(t, logPath, serviceLines(0, 1000, "checkout"))
	run := startSluice(t, "run", "-c", cfgPath)
	index := prefix + "-service-checkout-prod"
	if got := stack.WaitCount(t, index, 1000, time.Minute); got != 1000 {
		t.Fatalf("indexed %d documents, want 1000", got)
	}

	config("http://"+freeAddr(t), "1s") // nothing listens there
	run.reload(t, listen, "failure", 1)
	if got := metric(t, listen, `sluice_config_reload_total{result="success"}`); got != 0 {
		t.Fatalf("a reload to an Elasticsearch that does not answer counted as a success")
	}
	appendLines(t, logPath, serviceLines(1000, 2000, "checkout"))
	if got := stack.WaitCount(t, index, 2000, time.Minute); got != 2000 {
		t.Fatalf("after the failed reload: indexed %d documents, want 2000", got)
	}
	out := run.out.String()
	if !strings.Contains(out, "configuration reload failed: the new configuration cannot start; the running pipeline stays") ||
		strings.Contains(out, "running pipeline stopped for the reload") {
		t.Fatalf("the failed reload stopped the running pipeline, or was not said:\n%s", tail(out, 20))
	}

	read := `sluice_shipper_lines_read_total{type="service"}`
	waitMetric(t, listen, read, 2000)
	config(stack.Elasticsearch, "2s")
	run.reload(t, listen, "success", 1)
	if got := metric(t, listen, read); got != 2000 {
		t.Errorf("%s = %v after a reload, want 2000 (counters carry on across reloads)", read, got)
	}
	run.stop()
}
