package shipper

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap"
)

func TestRegistryRoundTrip(t *testing.T) {
	dir := t.TempDir()
	r, recovered, err := openRegistry(dir)
	if err != nil || recovered != nil {
		t.Fatalf("open: %v, %v", err, recovered)
	}
	r.put(registryEntry{ID: "a", Path: "/x", DevIno: devIno{1, 2}, Offset: 10})
	r.advance("a", 42, lineCheck{})
	r.advance("a", 30, lineCheck{}) // never backwards
	if err := r.flush(); err != nil {
		t.Fatal(err)
	}
	r2, _, err := openRegistry(dir)
	if err != nil {
		t.Fatal(err)
	}
	e, ok := r2.get("a")
	if !ok || e.Offset != 42 || e.Path != "/x" {
		t.Fatalf("reloaded entry = %+v, %v", e, ok)
	}
}

// registryCorruptions are the ways a registry file goes bad.
var registryCorruptions = []struct {
	name    string
	corrupt func(path string) error
}{
	{"torn write", func(p string) error {
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(p, data[:len(data)/2], 0o600)
	}},
	{"flipped byte", func(p string) error {
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		i := len(data) - 20
		data[i] ^= 0x01
		return os.WriteFile(p, data, 0o600)
	}},
	{"garbage", func(p string) error { return os.WriteFile(p, []byte("{garbage"), 0o600) }},
	{"missing", os.Remove},
}

// writeTwice writes a registry in dir holding file "a" at offset 5, then
// at 9: the first write, at 5, becomes the backup.
func writeTwice(t *testing.T, dir string) {
	t.Helper()
	r, _, err := openRegistry(dir)
	if err != nil {
		t.Fatal(err)
	}
	r.put(registryEntry{ID: "a", Offset: 5})
	if err := r.flush(); err != nil {
		t.Fatal(err)
	}
	r.advance("a", 9, lineCheck{})
	if err := r.flush(); err != nil {
		t.Fatal(err)
	}
}

// corruptAndOpen corrupts the registry file in dir and opens the registry,
// which must report that it recovered from the backup.
func corruptAndOpen(t *testing.T, dir string, corrupt func(path string) error) *registry {
	t.Helper()
	if err := corrupt(filepath.Join(dir, registryName)); err != nil {
		t.Fatal(err)
	}
	r, recovered, err := openRegistry(dir)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	if recovered == nil {
		t.Fatal("recovery not reported")
	}
	return r
}

func TestRegistryRecoversFromBackup(t *testing.T) {
	for _, tt := range registryCorruptions {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			writeTwice(t, dir)
			r2 := corruptAndOpen(t, dir, tt.corrupt)
			if e, ok := r2.get("a"); !ok || e.Offset != 5 {
				t.Fatalf("recovered entry = %+v, %v; want the backup's offset 5", e, ok)
			}
		})
	}
}

func TestRegistryBothCorruptFailsClearly(t *testing.T) {
	dir := t.TempDir()
	for _, n := range []string{registryName, registryBackup} {
		if err := os.WriteFile(filepath.Join(dir, n), []byte("{garbage"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := openRegistry(dir); err == nil {
		t.Fatal("opening a registry whose copies are both corrupt succeeded")
	}
}

// flushLoop and newGeneration flush concurrently. Whatever the interleaving,
// an entry put before a flush returned must be on disk once it returns: an
// older snapshot renamed in last, or a flush that returns because another
// one has the entry but has not written it yet, would lose it in a crash.
func TestRegistryConcurrentFlushKeepsEntries(t *testing.T) {
	const rounds, flushers = 50, 4
	dir := t.TempDir()
	r, _, err := openRegistry(dir)
	if err != nil {
		t.Fatal(err)
	}
	// Enough entries that encoding takes a while, as on a busy node.
	for i := range 100 {
		r.put(registryEntry{ID: fmt.Sprintf("base-%d", i), Path: "/x"})
	}
	onDisk := func() map[string]bool {
		entries, err := readRegistryFile(filepath.Join(dir, registryName))
		if err != nil {
			t.Error(err)
			return nil
		}
		ids := make(map[string]bool, len(entries))
		for _, e := range entries {
			ids[e.ID] = true
		}
		return ids
	}
	var put []string
	for round := range rounds {
		r.advance("base-0", int64(round+1), lineCheck{}) // what flushLoop finds dirty
		ids := make([]string, flushers)
		var wg sync.WaitGroup
		for i := range flushers {
			ids[i] = fmt.Sprintf("gen-%d-%d", round, i)
			wg.Go(func() {
				if i%2 == 0 { // flushLoop: flush only
					if err := r.flush(); err != nil {
						t.Error(err)
					}
				}
				// newGeneration: put, then flush.
				r.put(registryEntry{ID: ids[i], Path: "/y"})
				if err := r.flush(); err != nil {
					t.Error(err)
				}
				if !onDisk()[ids[i]] {
					t.Errorf("round %d: %s missing on disk after its flush returned", round, ids[i])
				}
			})
		}
		wg.Wait()
		put = append(put, ids...)
		got := onDisk()
		for _, id := range put {
			if !got[id] {
				t.Fatalf("round %d: %s missing on disk after all flushes returned", round, id)
			}
		}
	}
}

// After a recovery the main file is the corrupt one: the next flush must not
// make it the backup, or a second corruption would leave nothing to recover.
func TestRegistryRecoveryKeepsGoodBackup(t *testing.T) {
	for _, tt := range registryCorruptions {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			main := filepath.Join(dir, registryName)
			writeTwice(t, dir)
			if err := tt.corrupt(main); err != nil {
				t.Fatal(err)
			}
			r2, recovered, err := openRegistry(dir)
			if err != nil || recovered == nil {
				t.Fatalf("first recovery: %v, recovered %v", err, recovered)
			}
			r2.put(registryEntry{ID: "b", Offset: 7})
			if err := r2.flush(); err != nil {
				t.Fatal(err)
			}
			if _, err := readRegistryFile(filepath.Join(dir, registryBackup)); err != nil {
				t.Errorf("backup after the first flush since recovery: %v", err)
			}
			if err := tt.corrupt(main); err != nil {
				t.Fatal(err)
			}
			r3, recovered, err := openRegistry(dir)
			if err != nil || recovered == nil {
				t.Fatalf("second recovery: %v, recovered %v", err, recovered)
			}
			if e, ok := r3.get("a"); !ok || e.Offset != 5 {
				t.Fatalf("recovered entry = %+v, %v; want the backup's offset 5", e, ok)
			}
		})
	}
}

// A backup link left behind by a crash between link and rename must not
// stop every later write from keeping a backup.
func TestRegistryBackupAfterStaleLink(t *testing.T) {
	dir := t.TempDir()
	r, _, _ := openRegistry(dir)
	r.put(registryEntry{ID: "a", Offset: 5})
	if err := r.flush(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, registryBackup+".new"), []byte("stale"), 0o600); err != nil {
		t.Fatal(err)
	}
	r.advance("a", 9, lineCheck{})
	if err := r.flush(); err != nil {
		t.Fatal(err)
	}
	entries, err := readRegistryFile(filepath.Join(dir, registryBackup))
	if err != nil || len(entries) != 1 || entries[0].Offset != 5 {
		t.Fatalf("backup = %v, %v; want the previous write, offset 5", entries, err)
	}
}

func TestShipperCountsRegistryRecoveries(t *testing.T) {
	tests := []struct {
		name        string
		corruptMain bool
		want        float64
	}{
		{"clean", false, 0},
		{"corrupt main file", true, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			r, _, _ := openRegistry(dir)
			r.put(registryEntry{ID: "a", Offset: 5})
			if err := r.flush(); err != nil {
				t.Fatal(err)
			}
			r.advance("a", 9, lineCheck{}) // the first write becomes the backup
			if err := r.flush(); err != nil {
				t.Fatal(err)
			}
			if tt.corruptMain {
				if err := os.WriteFile(filepath.Join(dir, registryName), []byte("{garbage"), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			cfg := Config{
				Node: "test", Registry: dir, ScanInterval: time.Second,
				Inputs: []InputConfig{{Type: "service", Paths: []string{filepath.Join(t.TempDir(), "*.log")}}},
			}
			sh, err := New(cfg, prometheus.NewRegistry(), zap.NewNop(), WithPublisher(&nullPublisher{}))
			if err != nil {
				t.Fatal(err)
			}
			if got := testutil.ToFloat64(sh.metrics.registryRecoveries); got != tt.want {
				t.Fatalf("sluice_shipper_registry_recoveries_total = %v, want %v", got, tt.want)
			}
		})
	}
}
