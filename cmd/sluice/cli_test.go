package main

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

// TestHelp: `sluice CMD --help`, `-h` and `sluice help CMD` print the
// command's description, flags and an example on standard output, exit 0.
func TestHelp(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"ship", "--help"}, []string{"Usage: sluice ship -c FILE", "Flags:", "-c string", "Example:\n  sluice ship -c"}},
		{[]string{"aggregate", "-h"}, []string{"Usage: sluice aggregate -c FILE", "consumer group", "Example:"}},
		{[]string{"help", "replay"}, []string{"Usage: sluice replay", "-topic string", "-from string", "Example:"}},
		{[]string{"help", "test"}, []string{"-update", "-dir string"}},
		{[]string{"help"}, []string{"Usage:", "sluice ship -c FILE"}},
	} {
		var stdout, stderr bytes.Buffer
		code := run(tc.args, &stdout, &stderr)
		if code != 0 || stderr.Len() > 0 {
			t.Errorf("%q: exit %d, stderr %q; want exit 0 and nothing on stderr", tc.args, code, stderr.String())
		}
		for _, w := range tc.want {
			if !strings.Contains(stdout.String(), w) {
				t.Errorf("%q: stdout lacks %q:\n%s", tc.args, w, stdout.String())
			}
		}
	}
	for _, args := range [][]string{{"help", "nope"}, {"ship", "-x"}} {
		var stdout, stderr bytes.Buffer
		if code := run(args, &stdout, &stderr); code != 2 || stderr.Len() == 0 {
			t.Errorf("%q: exit %d, stderr %q; want exit 2 with a message", args, code, stderr.String())
		}
	}
}

// TestSigtermWhileWaitingAtStart: an aggregator waiting at start for an
// Elasticsearch that does not answer stops on SIGTERM with exit 0, as at
// any other time.
func TestSigtermWhileWaitingAtStart(t *testing.T) {
	if testing.Short() {
		t.Skip("needs Kafka")
	}
	p := newPipeline(t)
	cfg := p.aggregatorConfig(t, "http://127.0.0.1:1", "127.0.0.1:0")
	agg := startSluice(t, "aggregate", "-c", cfg)
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(agg.out.String(), "retrying") && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	if !strings.Contains(agg.out.String(), "retrying") {
		t.Fatalf("the aggregator is not waiting for Elasticsearch:\n%s", agg.out.String())
	}
	agg.stop() // fails the test unless the exit is clean
	if strings.Contains(agg.out.String(), `"stacktrace"`) {
		t.Errorf("the log has Go stack traces:\n%s", tail(agg.out.String(), 10))
	}
}
