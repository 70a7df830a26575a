package shipper

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap"
)

// TestQuietFilesCPU measures the shipper's CPU with 1,000 open files that
// get nothing, after their first lines are shipped (issue 17's quiet case:
// under 0.02 of a core). It logs the figure; SLUICE_QUIET_PROFILE=file
// writes a CPU profile of the quiet seconds.
func TestQuietFilesCPU(t *testing.T) {
	if testing.Short() {
		t.Skip("measures for 5 s")
	}
	dir := t.TempDir()
	const files = 1000
	for f := range files {
		line := fmt.Sprintf(`{"file":%d,"msg":"%s"}`+"\n", f, strings.Repeat("x", 200))
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("app-%04d.log", f)), []byte(line), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cfg := Config{Node: "test", Registry: filepath.Join(dir, "registry"),
		Inputs: []InputConfig{{Type: "service", Paths: []string{filepath.Join(dir, "*.log")}}}}
	pub := &nullPublisher{}
	sh, err := New(cfg, prometheus.NewRegistry(), zap.NewNop(), WithPublisher(pub))
	if err != nil {
		t.Fatal(err)
	}
	runShipper(t, sh)
	deadline := time.Now().Add(60 * time.Second)
	for pub.n.Load() < files || testutil.ToFloat64(sh.metrics.filesOpen) < files {
		if time.Now().After(deadline) {
			t.Fatalf("%d lines shipped, %v files open", pub.n.Load(), testutil.ToFloat64(sh.metrics.filesOpen))
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(3 * time.Second) // first registry writes, harvesters' polls backed off
	if path := os.Getenv("SLUICE_QUIET_PROFILE"); path != "" {
		f, err := os.Create(path)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			t.Fatal(err)
		}
		defer pprof.StopCPUProfile()
	}
	start, cpu0 := time.Now(), cpuTime()
	time.Sleep(5 * time.Second)
	cores := (cpuTime() - cpu0).Seconds() / time.Since(start).Seconds()
	t.Logf("%d quiet open files: %.3f of a core", files, cores)
}
