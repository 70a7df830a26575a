package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCheckTellsRoles checks that `sluice check` recognises each role's
// configuration by its keys, and that a run config gets run-mode rules.
func TestCheckTellsRoles(t *testing.T) {
	const inputs = "registry: /var/lib/sluice\ninputs: [{type: service, paths: [\"/var/log/*.log\"]}]\n"
	tests := []struct {
		name, yaml, kind, err string
	}{
		{"shipper", inputs, "shipper", ""},
		{"aggregator", "elasticsearch: {addresses: [\"http://es:9200\"]}\n", "aggregator", ""},
		{"run with a file output", inputs + "output: {file: {path: /tmp/docs.ndjson}}\n", "run", ""},
		{"run into elasticsearch", inputs + "elasticsearch: {addresses: [\"http://es:9200\"]}\n", "run", ""},
		{"run with kafka", inputs + "output: {stdout: {}}\nkafka: {brokers: [\"k:9092\"]}\n", "run", "kafka: sluice run has no Kafka"},
		{"neither", "log: {level: info}\n", "", "neither a shipper"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "sluice.yaml")
			writeFile(t, path, tt.yaml)
			kind, _, err := check(path)
			if kind != tt.kind {
				t.Errorf("kind %q, want %q", kind, tt.kind)
			}
			if tt.err == "" && err != nil {
				t.Errorf("unexpected error: %v", err)
			}
			if tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)) {
				t.Errorf("error %v, want one containing %q", err, tt.err)
			}
		})
	}
}

// TestCheckBadConfigs runs `sluice check` on each testdata/check/*.bad.yaml:
// it must exit 1 with the message the file's first line wants, naming the
// key and the fix. These are the mistakes that used to pass check and then
// misroute data or stop the process at start.
func TestCheckBadConfigs(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "check", "*.bad.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no testdata/check/*.bad.yaml (%v)", err)
	}
	for _, path := range files {
		t.Run(filepath.Base(path), func(t *testing.T) {
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			first, _, _ := strings.Cut(string(data), "\n")
			want, ok := strings.CutPrefix(first, "# want: ")
			if !ok {
				t.Fatalf("first line %q is not '# want: MESSAGE'", first)
			}
			var stdout, stderr bytes.Buffer
			code := run([]string{"check", path}, &stdout, &stderr)
			if code != 1 || !strings.Contains(stderr.String(), want) {
				t.Errorf("exit %d, stderr %q\nwant exit 1 and %q", code, stderr.String(), want)
			}
		})
	}
}

func TestCheckArguments(t *testing.T) {
	path := filepath.Join(t.TempDir(), "shipper.yaml")
	writeFile(t, path, "registry: /var/lib/sluice\ninputs: [{type: service, paths: [\"/var/log/*.log\"]}]\n")
	for _, tc := range []struct {
		args []string
		code int
		out  string
	}{
		{[]string{"check", path}, 0, "valid shipper configuration"},
		{[]string{"check", "-c", path}, 0, "valid shipper configuration"},
		{[]string{"check", path, "extra"}, 2, `unexpected argument "extra"`},
		{[]string{"check", "-c", path, "extra"}, 2, `unexpected argument "extra"`},
		{[]string{"ship", "-c", path, "extra"}, 2, `unexpected argument "extra"`},
	} {
		var stdout, stderr bytes.Buffer
		code := run(tc.args, &stdout, &stderr)
		if code != tc.code || !strings.Contains(stdout.String()+stderr.String(), tc.out) {
			t.Errorf("%q: exit %d, output %q; want exit %d and %q", tc.args, code, stdout.String()+stderr.String(), tc.code, tc.out)
		}
	}
}

// TestCheckWarnsOfOverlappingInputs: a file two inputs match is read by the
// first only; check says so (exit 0, as the file is valid).
func TestCheckWarnsOfOverlappingInputs(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "app.log"), "")
	path := filepath.Join(dir, "shipper.yaml")
	writeFile(t, path, "registry: "+dir+"\ninputs:\n  - {type: service, paths: [\""+dir+"/*.log\"]}\n  - {type: nginx, paths: [\""+dir+"/app.*\"]}\n")
	var stdout, stderr bytes.Buffer
	if code := run([]string{"check", path}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	want := filepath.Join(dir, "app.log") + " is matched by inputs[0] (type service) and inputs[1] (type nginx): only inputs[0] reads it"
	if !strings.Contains(stderr.String(), want) {
		t.Errorf("stderr %q\nwant the warning %q", stderr.String(), want)
	}
}
