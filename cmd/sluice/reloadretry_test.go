package main

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/sluicelog/sluice/internal/telemetry"
)

type idleComponent struct{}

func (idleComponent) Run(ctx context.Context) error { <-ctx.Done(); return nil }
func (idleComponent) AddChecks(*telemetry.Server)   {}

// TestReloadWatchRetriesFailedPreflight: with reload.watch, a new
// configuration whose Kafka or Elasticsearch did not answer at the
// ConfigMap's change is tried again until it starts. The file will not
// change again to ask for it, and a pod gets no SIGHUP: without a retry
// the pod ran its old configuration until restarted.
func TestReloadWatchRetriesFailedPreflight(t *testing.T) {
	old := preflightRetry
	preflightRetry = 100 * time.Millisecond
	t.Cleanup(func() { preflightRetry = old })
	path := filepath.Join(t.TempDir(), "sluice.yaml")
	if err := os.WriteFile(path, []byte("new: content\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var tries atomic.Int32
	load := func(string) (role, error) {
		return role{watch: true, preflight: func(context.Context, *zap.Logger) error {
			if tries.Add(1) < 3 {
				return errors.New("kafka.brokers [kafka-new:9092]: no broker answered")
			}
			return nil
		}}, nil
	}
	cur := role{watch: true}
	reloads := make(chan reloadRequest, 1)
	h, err := loadHashed(path, load)
	if err != nil {
		t.Fatal(err)
	}
	reloads <- reloadRequest{trigger: "configuration file changed", hash: &h.hash}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	got, err := runUntilReload(ctx, idleComponent{}, reloads, path, load, cur, zaptest.NewLogger(t), newReloadMetrics(prometheus.NewRegistry()))
	if err != nil || got == nil {
		t.Fatalf("runUntilReload = %v, %v after %d preflights, want the new configuration once its preflight passed", got, err, tries.Load())
	}
	if n := tries.Load(); n != 3 {
		t.Fatalf("%d preflights, want 3", n)
	}
}
