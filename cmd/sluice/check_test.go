package main

import (
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
			kind, err := check(path)
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
