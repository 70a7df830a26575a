package shipper

import (
	"os"
	"path/filepath"
	"testing"
)

func TestRegistryRoundTrip(t *testing.T) {
	dir := t.TempDir()
	r, recovered, err := openRegistry(dir)
	if err != nil || recovered != nil {
		t.Fatalf("open: %v, %v", err, recovered)
	}
	r.put(registryEntry{ID: "a", Path: "/x", DevIno: devIno{1, 2}, Offset: 10})
	r.advance("a", 42)
	r.advance("a", 30) // never backwards
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

func TestRegistryRecoversFromBackup(t *testing.T) {
	tests := []struct {
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
		{"missing", os.Remove},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			r, _, _ := openRegistry(dir)
			r.put(registryEntry{ID: "a", Offset: 5})
			if err := r.flush(); err != nil {
				t.Fatal(err)
			}
			r.advance("a", 9) // second write: the first becomes the backup
			if err := r.flush(); err != nil {
				t.Fatal(err)
			}
			if err := tt.corrupt(filepath.Join(dir, registryName)); err != nil {
				t.Fatal(err)
			}
			r2, recovered, err := openRegistry(dir)
			if err != nil {
				t.Fatalf("open: %v", err)
			}
			if recovered == nil {
				t.Fatal("recovery not reported")
			}
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
