package main

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var updateGolden = flag.Bool("update-golden", false, "rewrite the golden outputs of sluice test")

const testCasesDir = "../../testdata/pipeline-tests"

// runSluice runs the sluice command line in-process.
func runSluice(args ...string) (code int, stdout, stderr string) {
	var out, errb bytes.Buffer
	code = run(args, &out, &errb)
	return code, out.String(), errb.String()
}

func checkGolden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join(testCasesDir, name)
	if *updateGolden {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		t.Errorf("output differs from %s:\n--- got\n%s--- want\n%s", path, got, want)
	}
}

// TestSluiceTestPasses runs the cases of the config's tests directory
// (pass/), which match the documents the pipelines build: dropped health
// checks and debug lines, removed fields, a tag, a set that reroutes the
// index, and an unparsable line indexed raw.
func TestSluiceTestPasses(t *testing.T) {
	code, out, errOut := runSluice("test", "-c", filepath.Join(testCasesDir, "aggregator.yaml"))
	if code != 0 {
		t.Fatalf("exit code %d, want 0; stderr: %s\n%s", code, errOut, out)
	}
	checkGolden(t, "pass.golden", out)
}

// TestSluiceTestReportsDifferences runs cases (fail/) whose expected
// documents differ from what is built: a changed and a missing field, an
// extra field, the wrong drop step, and a line without an expected
// document. It exits 1 and lists each difference.
func TestSluiceTestReportsDifferences(t *testing.T) {
	code, out, errOut := runSluice("test", "-c", filepath.Join(testCasesDir, "aggregator.yaml"), "-dir", filepath.Join(testCasesDir, "fail"))
	if code != 1 {
		t.Fatalf("exit code %d, want 1; stderr: %s\n%s", code, errOut, out)
	}
	if !strings.Contains(errOut, "documents differ from the expected ones") {
		t.Errorf("stderr %q does not say that documents differ", errOut)
	}
	checkGolden(t, "fail.golden", out)
}

// TestSluiceTestUpdate writes the expected documents with -update into a
// copy of the passing cases and checks they are those committed in pass/.
func TestSluiceTestUpdate(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(testCasesDir, "pass")
	entries, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".expected.ndjson") {
			continue
		}
		data, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		writeFile(t, filepath.Join(dir, e.Name()), string(data))
	}
	cfg := filepath.Join(testCasesDir, "aggregator.yaml")
	if code, out, errOut := runSluice("test", "-c", cfg, "-dir", dir); code != 1 || !strings.Contains(errOut, "-update") {
		t.Fatalf("without expected files: exit code %d, stderr %q, want 1 and a hint to use -update\n%s", code, errOut, out)
	}
	if code, out, errOut := runSluice("test", "-c", cfg, "-dir", dir, "-update"); code != 0 {
		t.Fatalf("-update: exit code %d; %s\n%s", code, errOut, out)
	}
	for _, name := range []string{"checkout.service.expected.ndjson", "edge.nginx.expected.ndjson"} {
		got, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		want, err := os.ReadFile(filepath.Join(src, name))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("-update wrote %s:\n%s\nwant\n%s", name, got, want)
		}
	}
	if code, out, errOut := runSluice("test", "-c", cfg, "-dir", dir); code != 0 {
		t.Fatalf("after -update: exit code %d; %s\n%s", code, errOut, out)
	}
}

// TestSluiceTestRejectsBadConfig checks that a bad pipeline is reported with
// its key path before any case runs.
func TestSluiceTestRejectsBadConfig(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "aggregator.yaml")
	writeFile(t, cfg, `
elasticsearch: {}
pipelines:
  nginx:
    - name: a
      drop: {if: {regex: {url.original: "("}}}
`)
	code, _, errOut := runSluice("test", "-c", cfg)
	want := "pipelines.nginx[0].drop.if.regex: url.original: \"(\" is not a valid regular expression"
	if code != 1 || !strings.Contains(errOut, want) {
		t.Fatalf("exit code %d, stderr %q; want 1 and %q", code, errOut, want)
	}
}

// TestLocalDeployPipelineTests keeps the sample pipelines of
// deploy/local/aggregator.yaml and their cases in step.
func TestLocalDeployPipelineTests(t *testing.T) {
	t.Setenv("SLUICE_GEOIP_CITY", "")
	code, out, errOut := runSluice("test", "-c", "../../deploy/local/aggregator.yaml")
	if code != 0 || !strings.Contains(out, "PASS: 2 cases, 7 lines") {
		t.Fatalf("exit code %d, want 0 and PASS; stderr: %s\n%s", code, errOut, out)
	}
}
