package main

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/sluicelog/sluice/aggregator"
	"github.com/sluicelog/sluice/internal/kafkaclient"
)

// TestPreflightRefusesWhatCannotStart: a reload's preflight fails, with the
// key to look at, for a Kafka or an Elasticsearch that does not answer and
// for a registry or a file that cannot be written.
func TestPreflightRefusesWhatCannotStart(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	dead := "127.0.0.1:" + strings.Split(freeAddr(t), ":")[1] // nothing listens there
	start := time.Now()
	if err := kafkaAnswers(ctx, []string{dead}, &kafkaclient.Config{}, zap.NewNop()); err == nil || !strings.Contains(err.Error(), "kafka.brokers") {
		t.Errorf("kafka at %s: %v, want kafka.brokers named", dead, err)
	}
	if took := time.Since(start); took > 6*time.Second {
		t.Errorf("the Kafka preflight took %v, past its context", took)
	}
	var agg aggregator.Config
	agg.Elasticsearch.Addresses = []string{"http://" + dead}
	agg.SetDefaults()
	es := agg.Elasticsearch
	ctx2, cancel2 := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel2()
	if err := templateInstalls(ctx2, es); err == nil || !strings.Contains(err.Error(), "elasticsearch") {
		t.Errorf("elasticsearch at %s: %v", dead, err)
	}
	off := false
	es.Template = &off
	if err := templateInstalls(ctx2, es); err != nil {
		t.Errorf("with elasticsearch.template off, nothing is installed, yet: %v", err)
	}
	if err := writableDir("registry", "/proc/sluice-no-registry"); err == nil || !strings.HasPrefix(err.Error(), "registry: ") {
		t.Errorf("registry under /proc: %v", err)
	}
	if err := writableDir("registry", filepath.Join(t.TempDir(), "new")); err != nil {
		t.Errorf("a new registry directory: %v", err)
	}
	if err := appendable("output.file.path", "/proc/sluice-no-output/docs.ndjson"); err == nil || !strings.HasPrefix(err.Error(), "output.file.path: ") {
		t.Errorf("output under /proc: %v", err)
	}
}
