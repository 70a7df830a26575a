package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sluicelog/sluice/internal/testenv"
)

// runDoc is one line of a sluice run NDJSON output.
type runDoc struct {
	Index  string `json:"_index"`
	ID     string `json:"_id"`
	Source struct {
		ID     string `json:"id"`
		Path   string `json:"log.file.path"`
		Offset int64  `json:"log.offset"`
	} `json:"_source"`
}

// readRunDocs reads the documents of the NDJSON outputs at paths (missing
// files are empty).
func readRunDocs(t *testing.T, paths ...string) []runDoc {
	t.Helper()
	var docs []runDoc
	for _, path := range paths {
		f, err := os.Open(path)
		if os.IsNotExist(err) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 1<<20), 1<<24)
		for sc.Scan() {
			var d runDoc
			if err := json.Unmarshal(sc.Bytes(), &d); err != nil {
				f.Close()
				// A line being written right now is incomplete.
				if !strings.HasSuffix(sc.Text(), "}") {
					break
				}
				t.Fatalf("%s: line %q is not a document: %v", path, sc.Text(), err)
			}
			docs = append(docs, d)
		}
		f.Close()
	}
	return docs
}

// waitDocs waits until the outputs hold at least want documents, and
// returns them.
func waitDocs(t *testing.T, want int, timeout time.Duration, paths ...string) []runDoc {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		docs := readRunDocs(t, paths...)
		if len(docs) >= want || time.Now().After(deadline) {
			return docs
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// countIDs counts documents by the id field of their line (s0, s1, ...).
func countIDs(docs []runDoc) map[string]int {
	n := map[string]int{}
	for _, d := range docs {
		n[d.Source.ID]++
	}
	return n
}

// assertEachOnce checks that the documents hold the lines s0..s(n-1) of
// serviceLines exactly once each.
func assertEachOnce(t *testing.T, docs []runDoc, prefix string, n int) {
	t.Helper()
	ids := countIDs(docs)
	for i := 0; i < n; i++ {
		id := fmt.Sprintf("%s%d", prefix, i)
		if ids[id] != 1 {
			t.Errorf("line %s delivered %d times, want once", id, ids[id])
		}
	}
}

// writeRunConfig writes a sluice run config with the given inputs globs
// (service type, fields from the path) and output section, and returns
// its path.
func writeRunConfig(t *testing.T, path, dir, listen, output string, globs ...string) string {
	t.Helper()
	var in strings.Builder
	for _, g := range globs {
		fmt.Fprintf(&in, "  - type: service\n    paths: [%q]\n    fields: {service: checkout, environment: prod}\n", g)
	}
	writeFile(t, path, fmt.Sprintf(`
node: test-node
registry: %s/registry
scan_interval: 200ms
registry_flush: 200ms
inputs:
%s
%s
http:
  listen: %s
`, dir, in.String(), output, listen))
	return path
}

// registryOffsets reads the offsets the shipper's registry in dir holds,
// by file path.
func registryOffsets(t *testing.T, dir string) map[string]int64 {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, "registry.json"))
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var file struct {
		Entries []struct {
			Path   string `json:"path"`
			Offset int64  `json:"offset"`
		} `json:"entries"`
	}
	if err := json.Unmarshal(data, &file); err != nil {
		t.Fatalf("registry: %v", err)
	}
	out := map[string]int64{}
	for _, e := range file.Entries {
		out[e.Path] = e.Offset
	}
	return out
}

// TestRunToFileKilled runs `sluice run` into an NDJSON file while lines are
// written, SIGKILLs it twice mid-stream and restarts it: every line is in
// the file, and a line is there more than once only if it was past the
// registry's acknowledged offset at a kill (the unacknowledged tail).
func TestRunToFileKilled(t *testing.T) {
	dir := t.TempDir()
	logPath := filepath.Join(dir, "logs", "app.log")
	out := filepath.Join(dir, "out", "docs.ndjson")
	cfg := writeRunConfig(t, filepath.Join(dir, "run.yaml"), dir, "127.0.0.1:0",
		fmt.Sprintf("output:\n  file: {path: %s}", out), filepath.Join(dir, "logs", "*.log"))
	const total = 30000
	done := writeInBackground(t, logPath, total, 200, 20*time.Millisecond)
	var killedAt []int64 // registry offsets at each kill
	for i := 0; i < 2; i++ {
		run := startSluice(t, "run", "-c", cfg)
		time.Sleep(time.Duration(500+rand.IntN(700)) * time.Millisecond)
		run.kill()
		killedAt = append(killedAt, registryOffsets(t, filepath.Join(dir, "registry"))[logPath])
	}
	<-done
	run := startSluice(t, "run", "-c", cfg)
	docs := waitDocs(t, total, 2*time.Minute, out)
	run.stop()
	docs = readRunDocs(t, out)
	assertEvery(t, docs, total)
	byOffset := map[int64]int{}
	for _, d := range docs {
		byOffset[d.Source.Offset]++
	}
	dups := 0
	for off, n := range byOffset {
		allowed := 1
		for _, k := range killedAt {
			if off >= k {
				allowed++
			}
		}
		if n > allowed {
			t.Errorf("line at offset %d delivered %d times; only %d allowed with the registry at %v when killed", off, n, allowed, killedAt)
		}
		dups += n - 1
	}
	t.Logf("%d documents for %d lines: %d re-sent from the unacknowledged tail (registry offsets at the kills: %v)", len(docs), total, dups, killedAt)
}

// assertEvery checks that every line s0..s(n-1) is among the documents.
func assertEvery(t *testing.T, docs []runDoc, n int) {
	t.Helper()
	ids := countIDs(docs)
	missing := 0
	for i := 0; i < n; i++ {
		if ids[fmt.Sprintf("s%d", i)] == 0 {
			missing++
		}
	}
	if missing > 0 {
		t.Fatalf("%d of %d lines missing from %d documents", missing, n, len(docs))
	}
}

// TestRunToElasticsearch runs `sluice run` into the real Elasticsearch and
// expects exactly one document per line, also across a restart.
func TestRunToElasticsearch(t *testing.T) {
	stack := testenv.Start(t)
	dir := t.TempDir()
	prefix := runIndexPrefix(t, stack)
	logPath := filepath.Join(dir, "logs", "app.log")
	cfg := writeRunConfig(t, filepath.Join(dir, "run.yaml"), dir, "127.0.0.1:0", fmt.Sprintf(`elasticsearch:
  addresses: [%q]
  index: %s-{type}-{service}-{environment}
  template_name: %s
  retry_max: 1s`, stack.Elasticsearch, prefix, prefix), filepath.Join(dir, "logs", "*.log"))
	appendLines(t, logPath, serviceLines(0, 3000, "checkout"))
	run := startSluice(t, "run", "-c", cfg)
	index := prefix + "-service-checkout-prod"
	if got := stack.WaitCount(t, index, 3000, 2*time.Minute); got != 3000 {
		t.Fatalf("indexed %d documents, want 3000", got)
	}
	run.stop()
	appendLines(t, logPath, serviceLines(3000, 4000, "checkout"))
	run = startSluice(t, "run", "-c", cfg)
	if got := stack.WaitCount(t, index, 4000, time.Minute); got != 4000 {
		t.Fatalf("after restart: indexed %d documents, want 4000", got)
	}
	time.Sleep(3 * time.Second) // would-be duplicates have time to arrive
	if got := stack.Count(t, index); got != 4000 {
		t.Fatalf("after restart: %d documents, want exactly 4000", got)
	}
	run.stop()
}

// runIndexPrefix returns a name for this test's indices and index
// template, and deletes them before and after the test.
func runIndexPrefix(t *testing.T, stack *testenv.Stack) string {
	prefix := testenv.Name(t, "run")
	stack.DeleteIndices(t, prefix+"-*")
	t.Cleanup(func() {
		stack.DeleteIndices(t, prefix+"-*")
		stack.ES(t, http.MethodDelete, "/_index_template/"+prefix, nil, nil)
	})
	return prefix
}

// scrape fetches /metrics from addr and returns its lines.
func scrape(t *testing.T, addr string) []string {
	t.Helper()
	res, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatalf("metrics: %v", err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	return strings.Split(string(body), "\n")
}

// metric fetches /metrics from addr and returns the value of the sample
// whose line starts with series (name and labels), or -1.
func metric(t *testing.T, addr, series string) float64 {
	t.Helper()
	for _, l := range scrape(t, addr) {
		if rest, ok := strings.CutPrefix(l, series+" "); ok {
			var v float64
			fmt.Sscan(rest, &v)
			return v
		}
	}
	return -1
}

// metricSum fetches /metrics from addr and returns the sum of the samples
// of metric name, whatever their labels, and how many there are.
func metricSum(t *testing.T, addr, name string) (sum float64, n int) {
	t.Helper()
	for _, l := range scrape(t, addr) {
		series, value, ok := strings.Cut(l, " ")
		if !ok || (series != name && !strings.HasPrefix(series, name+"{")) {
			continue
		}
		var v float64
		fmt.Sscan(value, &v)
		sum += v
		n++
	}
	return sum, n
}

// waitMetric waits until series has value want.
func waitMetric(t *testing.T, addr, series string, want float64) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		got := metric(t, addr, series)
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s = %v, want %v", series, got, want)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitFileListed waits until the shipper's /files on addr lists path.
func waitFileListed(t *testing.T, addr, path string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var view struct {
			Files []struct {
				Path string `json:"path"`
			} `json:"files"`
		}
		res, err := http.Get("http://" + addr + "/files")
		if err == nil {
			err = json.NewDecoder(res.Body).Decode(&view)
			res.Body.Close()
		}
		for _, f := range view.Files {
			if f.Path == path {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("/files does not list %s (last error: %v)", path, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestRunReload sends SIGHUP to `sluice run` while lines are written: the
// new configuration adds a second input glob and moves the output to
// another file. Every line of both inputs arrives exactly once across the
// two outputs. Then an invalid configuration is rejected (counted in the
// metrics) and the running one keeps shipping.
func TestRunReload(t *testing.T) {
	dir := t.TempDir()
	listen := freeAddr(t)
	cfgPath := filepath.Join(dir, "run.yaml")
	first, second := filepath.Join(dir, "out", "first.ndjson"), filepath.Join(dir, "out", "second.ndjson")
	appLog, otherLog := filepath.Join(dir, "app", "app.log"), filepath.Join(dir, "other", "other.log")
	writeRunConfig(t, cfgPath, dir, listen, fmt.Sprintf("output:\n  file: {path: %s}", first), filepath.Join(dir, "app", "*.log"))

	const total = 20000
	done := writeInBackground(t, appLog, total, 200, 20*time.Millisecond)
	otherLines := make([]string, 0, 500)
	for _, l := range serviceLines(0, 500, "checkout") {
		otherLines = append(otherLines, strings.Replace(l, `"id":"s`, `"id":"o`, 1))
	}
	appendLines(t, otherLog, otherLines) // not read until the reload adds its glob
	run := startSluice(t, "run", "-c", cfgPath)
	waitDocs(t, 2000, time.Minute, first)
	if v, n := metricSum(t, listen, "sluice_build_info"); v != 1 || n != 1 {
		t.Errorf("sluice_build_info: %d series summing to %v, want one at 1", n, v)
	}

	writeRunConfig(t, cfgPath, dir, listen, fmt.Sprintf("output:\n  file: {path: %s}", second),
		filepath.Join(dir, "app", "*.log"), filepath.Join(dir, "other", "*.log"))
	run.reload(t, listen, "success", 1)
	// /files is the reloaded pipeline's: it lists other.log, which only
	// the new configuration reads.
	waitFileListed(t, listen, otherLog)

	// An invalid configuration is rejected; the running one keeps going.
	editConfig(t, cfgPath, "scan_interval: 200ms", "scan_interval: often")
	run.reload(t, listen, "failure", 1)
	if got := metric(t, listen, "sluice_config_last_reload_success"); got != 0 {
		t.Errorf("sluice_config_last_reload_success = %v after a rejected reload, want 0", got)
	}

	// A configuration that validates but cannot start (its output cannot
	// be created) is counted as failed, and the running one stays.
	writeRunConfig(t, cfgPath, dir, listen, "output:\n  file: {path: /proc/sluice-cannot-create/docs.ndjson}",
		filepath.Join(dir, "app", "*.log"), filepath.Join(dir, "other", "*.log"))
	run.reload(t, listen, "failure", 2)
	<-done // lines written after the rejected reloads arrive too

	docs := waitDocs(t, total+500, 2*time.Minute, first, second)
	time.Sleep(2 * time.Second) // would-be duplicates have time to arrive
	run.stop()
	docs = readRunDocs(t, first, second)
	if len(docs) != total+500 {
		t.Errorf("%d documents, want exactly %d", len(docs), total+500)
	}
	assertEachOnce(t, docs, "s", total)
	assertEachOnce(t, docs, "o", 500)
	firstDocs, secondDocs := readRunDocs(t, first), readRunDocs(t, second)
	if len(firstDocs) == 0 || len(secondDocs) == 0 {
		t.Errorf("first output holds %d documents, second %d: the reload should have moved the output", len(firstDocs), len(secondDocs))
	}
	for _, d := range firstDocs {
		if d.Source.Path == otherLog {
			t.Fatalf("a line of %s went to the first output, before its input was configured", otherLog)
		}
	}
	if !strings.Contains(run.out.String(), "configuration reload rejected") {
		t.Errorf("the rejected reload was not logged:\n%s", tail(run.out.String(), 20))
	}
}
