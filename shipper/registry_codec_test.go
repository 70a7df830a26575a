package shipper

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// replacedRegistry writes a registry in dir holding files "a" and "b" and
// two generations a truncation replaced, flushed twice (the first write, "a"
// at 5 and one replaced generation, becomes the backup), and returns it.
func replacedRegistry(t *testing.T, dir string) *registry {
	t.Helper()
	r, _, err := openRegistry(dir)
	if err != nil {
		t.Fatal(err)
	}
	r.put(registryEntry{ID: "a", Path: "/x/a.log", DevIno: devIno{1, 2}, Offset: 5})
	r.put(registryEntry{ID: "b", Path: "/x/b.log", DevIno: devIno{1, 3}, Offset: 7})
	r.addReplaced(registryEntry{ID: "old1", Path: "/x/a.log", DevIno: devIno{1, 2}, Offset: 100,
		Fingerprint: fingerprint{Len: 12, Hash: "h1"}}, time.Hour, 10)
	if err := r.flush(); err != nil {
		t.Fatal(err)
	}
	r.advance("a", 9, lineCheck{})
	r.addReplaced(registryEntry{ID: "old2", Path: "/x/b.log", DevIno: devIno{1, 3}, Offset: 200,
		Fingerprint: fingerprint{Len: 20, Hash: "h2"}}, time.Hour, 10)
	if err := r.flush(); err != nil {
		t.Fatal(err)
	}
	return r
}

// replacedIDs returns the ids and offsets of r's replaced generations.
func replacedIDs(r *registry) string {
	var s []string
	for _, e := range r.replacedSince(time.Time{}) {
		s = append(s, fmt.Sprintf("%s@%d/%d", e.ID, e.Offset, e.Fingerprint.Len))
	}
	return fmt.Sprint(s)
}

// TestRegistryReplacedRoundTrip: the generations a truncation replaced
// (copies.go) are written by the codec that encodes only changed entries,
// in the layout read in one pass, and read back with the entries, also
// after a flush that encoded only the entry that changed.
func TestRegistryReplacedRoundTrip(t *testing.T) {
	dir := t.TempDir()
	r := replacedRegistry(t, dir)
	want := replacedIDs(r)
	if want != "[old1@100/12 old2@200/20]" {
		t.Fatalf("replaced before the write = %s", want)
	}
	data, err := os.ReadFile(filepath.Join(dir, registryName))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := splitRegistry(data); !ok {
		t.Fatalf("registry with replaced generations not in the one-pass layout:\n%s", data)
	}
	for round := range 2 {
		r2, recovered, err := openRegistry(dir)
		if err != nil || recovered != nil {
			t.Fatalf("round %d: open: %v, %v", round, err, recovered)
		}
		if got := replacedIDs(r2); got != want {
			t.Fatalf("round %d: replaced after reload = %s, want %s", round, got, want)
		}
		if e, ok := r2.get("a"); !ok || e.Offset != 9+int64(round) || e.Path != "/x/a.log" {
			t.Fatalf("round %d: entry a = %+v, %v", round, e, ok)
		}
		if e, ok := r2.get("b"); !ok || e.Offset != 7 {
			t.Fatalf("round %d: entry b = %+v, %v", round, e, ok)
		}
		// A flush of the reloaded registry with only "a" changed: "b"
		// is encoded again from what was loaded, the replaced kept.
		r2.advance("a", 10, lineCheck{})
		if err := r2.flush(); err != nil {
			t.Fatal(err)
		}
	}
}

// TestRegistryCorruptReplacedFallsBack: the checksum covers the replaced
// generations, so a registry file whose replaced list is damaged is
// refused and the backup loaded, as for damaged entries.
func TestRegistryCorruptReplacedFallsBack(t *testing.T) {
	corruptions := append([]struct {
		name    string
		corrupt func(path string) error
	}{{"replaced offset changed", func(p string) error {
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		changed := bytes.Replace(data, []byte(`"offset":200`), []byte(`"offset":900`), 1)
		if bytes.Equal(changed, data) {
			return fmt.Errorf("no replaced offset 200 in %s", data)
		}
		return os.WriteFile(p, changed, 0o600)
	}}}, registryCorruptions...)
	for _, tt := range corruptions {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			replacedRegistry(t, dir)
			r2 := corruptAndOpen(t, dir, tt.corrupt)
			if e, ok := r2.get("a"); !ok || e.Offset != 5 {
				t.Fatalf("recovered entry = %+v, %v; want the backup's offset 5", e, ok)
			}
			if got := replacedIDs(r2); got != "[old1@100/12]" {
				t.Fatalf("recovered replaced = %s, want the backup's [old1@100/12]", got)
			}
		})
	}
}

// TestRegistryOlderLayoutsLoad: registry files as Sluice wrote them before
// the replaced generations went into the one-pass layout still load: one
// line of encoding/json with the replaced after the entries (and without
// any), and the one-pass layout without replaced generations.
func TestRegistryOlderLayoutsLoad(t *testing.T) {
	a := json.RawMessage(`{"id":"a","path":"/x/a.log","type":"service","dev_ino":{"dev":1,"ino":2},"fingerprint":{"len":4,"hash":"ha"},"offset":42,"updated":"2026-12-01T10:00:00Z"}`)
	b := json.RawMessage(`{"id":"b","path":"/x/b.log","type":"service","dev_ino":{"dev":1,"ino":3},"fingerprint":{"len":4,"hash":"hb"},"offset":7,"updated":"2026-12-01T10:00:00Z"}`)
	old := json.RawMessage(`{"id":"old","path":"/x/a.log","type":"service","dev_ino":{"dev":1,"ino":2},"fingerprint":{"len":9,"hash":"ho"},"offset":300,"updated":"2026-12-01T09:00:00Z"}`)
	oneLine := func(replaced []json.RawMessage) []byte {
		f := registryFile{Version: 1, Written: time.Now().UTC(), Entries: []json.RawMessage{a, b}, Replaced: replaced}
		f.Checksum = entriesChecksum(f.Entries, f.Replaced)
		data, err := json.Marshal(f)
		if err != nil {
			t.Fatal(err)
		}
		return data
	}
	onePass := []byte(fmt.Sprintf("{\"version\":1,\"written\":\"2026-12-01T10:00:01Z\",\"checksum\":%d,\"entries\":[\n%s,\n%s\n]}\n",
		entriesChecksum([]json.RawMessage{a, b}), a, b))
	for _, tt := range []struct {
		name     string
		data     []byte
		replaced string
	}{
		{"one line with replaced", oneLine([]json.RawMessage{old}), "[old@300/9]"},
		{"one line", oneLine(nil), "[]"},
		{"one pass without replaced", onePass, "[]"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, registryName), tt.data, 0o600); err != nil {
				t.Fatal(err)
			}
			r, recovered, err := openRegistry(dir)
			if err != nil || recovered != nil {
				t.Fatalf("open: %v, %v", err, recovered)
			}
			if e, ok := r.get("a"); !ok || e.Offset != 42 || e.Fingerprint.Hash != "ha" {
				t.Fatalf("entry a = %+v, %v", e, ok)
			}
			if e, ok := r.get("b"); !ok || e.Offset != 7 {
				t.Fatalf("entry b = %+v, %v", e, ok)
			}
			if got := replacedIDs(r); got != tt.replaced {
				t.Fatalf("replaced = %s, want %s", got, tt.replaced)
			}
			if len(r.atDevIno(devIno{1, 2})) != 1 {
				t.Fatal("entry a not indexed by where its file lives")
			}
		})
	}
}

// TestRegistryStreamsReachTheFile: a stream's acknowledged end
// (setStreams) is a change the next flush writes, though the entry's
// JSON was kept from the flush before (encodeChanged).
func TestRegistryStreamsReachTheFile(t *testing.T) {
	dir := t.TempDir()
	r, _, err := openRegistry(dir)
	if err != nil {
		t.Fatal(err)
	}
	r.put(registryEntry{ID: "a", Path: "/x/a.log", DevIno: devIno{1, 2}, Offset: 5})
	for range 2 { // the second keeps the entry's JSON
		if err := r.flush(); err != nil {
			t.Fatal(err)
		}
		r.advance("a", 9, lineCheck{})
	}
	r.setStreams("a", map[string]int64{"stdout": 9, "stderr": 4})
	if err := r.flush(); err != nil {
		t.Fatal(err)
	}
	r2, _, err := openRegistry(dir)
	if err != nil {
		t.Fatal(err)
	}
	if e, _ := r2.get("a"); e.Streams["stdout"] != 9 || e.Streams["stderr"] != 4 {
		t.Fatalf("reloaded streams %v, want stdout 9, stderr 4", e.Streams)
	}
}

// TestRegistryMarksRoundTrip: the line marks (registryEntry.Marks) of an
// entry and of a replaced generation are written by the codec and read
// back in the one-pass layout, and an advance that changes the entry's
// mark is written though the entry's JSON was kept from the flush before
// (encodeChanged): a stale mark would make a copy of the file look like
// another file after a restart, or another file like its copy.
func TestRegistryMarksRoundTrip(t *testing.T) {
	dir := t.TempDir()
	r, _, err := openRegistry(dir)
	if err != nil {
		t.Fatal(err)
	}
	r.put(registryEntry{ID: "a", Path: "/x/a.log", DevIno: devIno{1, 2}, Offset: 5})
	replacedMarks := []lineCheck{{End: 300, Len: 40, Sum: 7}, {End: 260, Len: 256, Sum: 8}}
	r.addReplaced(registryEntry{ID: "old", Path: "/x/a.log", DevIno: devIno{1, 2}, Offset: 300,
		Fingerprint: fingerprint{Len: 9, Hash: "ho"}, Marks: replacedMarks}, time.Hour, 10)
	reload := func(step string) registryEntry {
		t.Helper()
		if err := r.flush(); err != nil {
			t.Fatal(err)
		}
		data, err := os.ReadFile(filepath.Join(dir, registryName))
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := splitRegistry(data); !ok {
			t.Fatalf("%s: registry not in the one-pass layout:\n%s", step, data)
		}
		r2, recovered, err := openRegistry(dir)
		if err != nil || recovered != nil {
			t.Fatalf("%s: open: %v, %v", step, err, recovered)
		}
		rep := r2.replacedSince(time.Time{})
		if len(rep) != 1 || !slices.Equal(rep[0].Marks, replacedMarks) {
			t.Fatalf("%s: replaced after reload = %+v, want marks %v", step, rep, replacedMarks)
		}
		e, ok := r2.get("a")
		if !ok {
			t.Fatalf("%s: entry a lost", step)
		}
		return e
	}
	first := lineCheck{End: 9, Len: 4, Sum: 77}
	r.advance("a", 9, first)
	if e := reload("first advance"); e.Offset != 9 || !slices.Equal(e.Marks, []lineCheck{first}) {
		t.Fatalf("first advance: reloaded %d %v, want 9 %v", e.Offset, e.Marks, first)
	}
	if e := reload("unchanged"); !slices.Equal(e.Marks, []lineCheck{first}) { // keeps a's JSON
		t.Fatalf("unchanged: reloaded marks %v, want %v", e.Marks, first)
	}
	second := lineCheck{End: 12, Len: 3, Sum: 88}
	r.advance("a", 12, second)
	if e := reload("second advance"); e.Offset != 12 || !slices.Equal(e.Marks, []lineCheck{second}) {
		t.Fatalf("second advance: reloaded %d %v, want 12 %v", e.Offset, e.Marks, second)
	}
	// A mark not of the line at the new offset (the line's bytes were
	// let go of before it was summed) clears the old one.
	r.advance("a", 20, lineCheck{})
	if e := reload("advance without a mark"); e.Offset != 20 || len(e.Marks) != 0 {
		t.Fatalf("advance without a mark: reloaded %d %v, want 20 and no marks", e.Offset, e.Marks)
	}
}
