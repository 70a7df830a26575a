package shipper

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
)

// largeRegistry writes a registry of n entries for files in dir/dNN/, of
// which the first live exist (a line each), and returns the config.
func largeRegistry(tb testing.TB, n, live int) Config {
	dir := tb.TempDir()
	reg, _, err := openRegistry(filepath.Join(dir, "registry"))
	if err != nil {
		tb.Fatal(err)
	}
	snap := make([]registryEntry, 0, n)
	for i := range n {
		sub := filepath.Join(dir, fmt.Sprintf("d%02d", i%100))
		path := filepath.Join(sub, fmt.Sprintf("app-%06d.log", i))
		di := devIno{Dev: 2049, Ino: uint64(10_000_000 + i)}
		line := fmt.Sprintf("first line of file %d\n", i)
		if i < live {
			if err := os.MkdirAll(sub, 0o755); err != nil {
				tb.Fatal(err)
			}
			if err := os.WriteFile(path, []byte(line), 0o644); err != nil {
				tb.Fatal(err)
			}
			fi, err := os.Stat(path)
			if err != nil {
				tb.Fatal(err)
			}
			di, _ = statDevIno(fi)
		}
		snap = append(snap, registryEntry{ID: fileID(di, []byte(line)), Path: path, Type: "service", DevIno: di,
			Fingerprint: fingerprintOf([]byte(line)), Offset: int64(len(line)), Updated: time.Now(), Sent: int64(len(line)) + sentStep})
	}
	if err := reg.write(snap, nil); err != nil {
		tb.Fatal(err)
	}
	return Config{Node: "test", Registry: filepath.Join(dir, "registry"),
		Inputs: []InputConfig{{Type: "service", Paths: []string{filepath.Join(dir, "d*", "*.log")}}}}
}

// startUp is what a shipper does before it reads: load the registry, find
// the files renamed while it was stopped, and the first scan.
func startUp(tb testing.TB, cfg Config) *Shipper {
	t0 := time.Now()
	sh, err := New(cfg, prometheus.NewRegistry(), zap.NewNop(), WithPublisher(&nullPublisher{}))
	if err != nil {
		tb.Fatal(err)
	}
	t1 := time.Now()
	ctx, cancel := context.WithCancel(context.Background())
	sh.resumeRenamed()
	t2 := time.Now()
	sh.scan(ctx)
	t3 := time.Now()
	cancel()
	sh.wg.Wait()
	tb.Logf("New %v, resumeRenamed %v, scan %v, harvesters' end %v", t1.Sub(t0), t2.Sub(t1), t3.Sub(t2), time.Since(t3))
	return sh
}

// TestStartupLargeRegistry: a node's registry of 100,000 files (1,000 of
// them still there, the rest gone but not yet forgotten by clean_after)
// is loaded and the first scan done in under a second (issue 17; 3 s
// here, for a loaded test machine: BenchmarkStartupLargeRegistry measures).
func TestStartupLargeRegistry(t *testing.T) {
	if testing.Short() {
		t.Skip("writes 100,000 registry entries")
	}
	cfg := largeRegistry(t, 100_000, 1000)
	start, cpu0 := time.Now(), cpuTime()
	sh := startUp(t, cfg)
	took := time.Since(start)
	t.Logf("start-up with 100,000 registry entries: %v, %v of CPU (the machine's load shows in the difference)", took, cpuTime()-cpu0)
	if n := len(sh.registry.snapshot()); n != 100_000 {
		t.Fatalf("%d entries loaded", n)
	}
	if took > 3*time.Second {
		t.Errorf("start-up took %v, want under 1 s", took)
	}
}

func BenchmarkStartupLargeRegistry(b *testing.B) {
	cfg := largeRegistry(b, 100_000, 1000)
	b.ResetTimer()
	for range b.N {
		startUp(b, cfg)
	}
}

// cpuTime is the process's user and system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// TestRegistryEncodesOnlyChanged: a flush encodes the entries that changed
// since the last one and reuses the others' JSON; the file holds every
// entry as it is now.
func TestRegistryEncodesOnlyChanged(t *testing.T) {
	dir := t.TempDir()
	r, _, err := openRegistry(dir)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 100 {
		r.put(registryEntry{ID: fmt.Sprintf("f%d", i), Path: fmt.Sprintf("/logs/f%d.log", i), DevIno: devIno{Dev: 1, Ino: uint64(i)}, Offset: 10})
	}
	if err := r.flush(); err != nil {
		t.Fatal(err)
	}
	if len(r.encoded) != 100 {
		t.Fatalf("%d entries' JSON kept after a flush, want 100", len(r.encoded))
	}
	r.advance("f7", 99, lineCheck{})
	r.remove("f8")
	if _, ok := r.encoded["f7"]; ok || len(r.encoded) != 98 {
		t.Fatalf("changed entries' JSON kept: %d", len(r.encoded))
	}
	if err := r.flush(); err != nil {
		t.Fatal(err)
	}
	entries, err := readRegistryFile(filepath.Join(dir, registryName))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int64{}
	for _, e := range entries {
		got[e.ID] = e.Offset
	}
	if len(got) != 99 || got["f7"] != 99 || got["f1"] != 10 {
		t.Fatalf("registry file holds %d entries, f7 at %d, f1 at %d; want 99, 99, 10", len(got), got["f7"], got["f1"])
	}
}

// BenchmarkRegistryFlushLarge: a registry of 100,000 entries written
// after 10 of them moved, as every registry_flush on a node that keeps
// many files' entries for clean_after.
func BenchmarkRegistryFlushLarge(b *testing.B) {
	r, _, err := openRegistry(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	for i := range 100_000 {
		r.put(registryEntry{ID: fmt.Sprintf("f%d", i), Path: fmt.Sprintf("/var/log/containers/pod-%d_ns_app.log", i), DevIno: devIno{Dev: 2049, Ino: uint64(i)},
			Fingerprint: fingerprint{Len: 1024, Hash: "0123456789abcdef0123456789abcdef"}, Offset: 10})
	}
	if err := r.flush(); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for n := range b.N {
		for i := range 10 {
			r.advance(fmt.Sprintf("f%d", i*1000), int64(11+n), lineCheck{})
		}
		if err := r.flush(); err != nil {
			b.Fatal(err)
		}
	}
}
