package shipper

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"go.uber.org/zap/zaptest"

	"github.com/sluicelog/sluice/internal/event"
)

// createOnly indexes events as Elasticsearch's action: create does: the
// first document with an id wins, later ones are conflicts. It returns
// the documents' lines by id.
func createOnly(events []event.Event) map[string]string {
	docs := map[string]string{}
	for _, ev := range events {
		if _, ok := docs[ev.DocID()]; !ok {
			docs[ev.DocID()] = string(ev.Line)
		}
	}
	return docs
}

// copyDir copies the regular files of dir from to a new dir to.
func copyDir(t *testing.T, from, to string) {
	t.Helper()
	if err := os.MkdirAll(to, 0o750); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(from)
	if err != nil {
		t.Fatal(err)
	}
	for _, de := range entries {
		if !de.Type().IsRegular() {
			continue
		}
		data, err := os.ReadFile(filepath.Join(from, de.Name()))
		if errors.Is(err, os.ErrNotExist) {
			continue // a registry write's temporary file, gone since
		}
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(to, de.Name()), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// TestUnterminatedLineCompletedAfterLostAck: a final line is shipped
// unterminated and acknowledged, the shipper dies before the registry
// records it, the app finishes the line, and the restarted shipper reads
// the whole line from the same offset. The whole line must be a document
// of its own: under action: create the partial one must not hide it.
func TestUnterminatedLineCompletedAfterLostAck(t *testing.T) {
	l := newLifecycle(t, func(c *Config) { c.UnterminatedLineAfter = 200 * time.Millisecond })
	writeLines(t, l.path("app.log"), "u", 0, 10)
	l.start()
	l.pub.waitFor(t, 10, 10*time.Second)
	l.stop()
	saved := filepath.Join(l.dir, "registry-before")
	copyDir(t, l.cfg.Registry, saved)

	l.start()
	appendTo(t, l.path("app.log"), "line id=partial begins")
	got := l.pub.waitFor(t, 11, 10*time.Second)
	if !got[10].HasFlag(event.FlagUnterminated) {
		t.Fatalf("partial line flags = %v, want unterminated", got[10].Flags)
	}
	l.stop()
	// The crash: the registry write that recorded the partial line is lost.
	if err := os.RemoveAll(l.cfg.Registry); err != nil {
		t.Fatal(err)
	}
	copyDir(t, saved, l.cfg.Registry)
	appendTo(t, l.path("app.log"), " and ends here\n")

	l.start()
	got = l.pub.waitFor(t, 12, 10*time.Second)
	whole := "line id=partial begins and ends here"
	if string(got[11].Line) != whole {
		t.Fatalf("after the restart shipped %q, want %q", got[11].Line, whole)
	}
	found := false
	for _, line := range createOnly(got) {
		found = found || line == whole
	}
	if !found {
		t.Fatalf("the completed line is in no document: it has the id of the partial one")
	}
}

func appendTo(t *testing.T, path, s string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(s); err != nil {
		t.Fatal(err)
	}
}

// startShipper runs a shipper over cfg into pub until the returned stop is
// called; stop returns Run's error.
func startShipper(t *testing.T, cfg Config, pub Publisher) (*Shipper, func() error) {
	t.Helper()
	sh, err := New(cfg, prometheus.NewRegistry(), zaptest.NewLogger(t), WithPublisher(pub))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- sh.Run(ctx) }()
	var once sync.Once
	var runErr error
	stop := func() error {
		once.Do(func() {
			cancel()
			runErr = <-done
		})
		return runErr
	}
	t.Cleanup(func() { stop() })
	return sh, stop
}

// TestIdentitySurvivesLostRegistry: the registry cannot be written (a full
// disk) while a new file of 5,000 lines is shipped; after a restart the
// file is read again from its start, and every line must get the document
// id it had, so that the index holds it once.
func TestIdentitySurvivesLostRegistry(t *testing.T) {
	const n = 5000
	l := newLifecycle(t, nil)
	writeLines(t, l.path("old.log"), "o", 0, 10)
	_, stop := startShipper(t, l.cfg, l.pub)
	l.pub.waitFor(t, 10, 10*time.Second)
	if err := stop(); err != nil { // old.log is in the registry
		t.Fatal(err)
	}
	_, stop = startShipper(t, l.cfg, l.pub)
	// The disk fills: no registry write succeeds from now on (a file where
	// the directory was fails them even for root).
	aside := l.cfg.Registry + ".aside"
	if err := os.Rename(l.cfg.Registry, aside); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(l.cfg.Registry, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	writeLines(t, l.path("app.log"), "a", 0, n)
	first := l.pub.waitFor(t, 10+n, 10*time.Second)
	if err := stop(); err == nil {
		t.Fatal("the registry was written on a full disk")
	}
	if err := os.Remove(l.cfg.Registry); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(aside, l.cfg.Registry); err != nil {
		t.Fatal(err)
	}

	ids := map[string]string{}
	for _, ev := range first[10:] {
		ids[ev.DocID()] = string(ev.Line)
	}
	again := &collectingPublisher{}
	_, stop = startShipper(t, l.cfg, again)
	got := again.waitFor(t, n, 10*time.Second)
	time.Sleep(200 * time.Millisecond) // anything more would come now
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	got = again.shipped()
	if len(got) != n {
		t.Fatalf("after the restart %d lines shipped, want the %d never recorded", len(got), n)
	}
	for _, ev := range got {
		if line, ok := ids[ev.DocID()]; !ok || line != string(ev.Line) {
			t.Fatalf("line at offset %d (%q) got a new document id after the restart: it would be indexed twice", ev.Offset, ev.Line)
		}
	}
}

// TestScanDoesNotWaitForRegistry: discovering new files writes nothing to
// the registry, so a slow or failing disk never delays discovery (files
// that live between two scans were lost while each new file waited for an
// fsync).
func TestScanDoesNotWaitForRegistry(t *testing.T) {
	l := newLifecycle(t, func(c *Config) { c.RegistryFlush = time.Hour })
	for i := range 20 {
		writeLines(t, l.path(fmt.Sprintf("f%d.log", i)), fmt.Sprintf("f%d-", i), 0, 3)
	}
	sh, err := New(l.cfg, prometheus.NewRegistry(), zaptest.NewLogger(t), WithPublisher(l.pub))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer func() {
		cancel()
		sh.wg.Wait()
	}()
	writes := func() uint64 {
		var m dto.Metric
		if err := sh.metrics.registryWrite.Write(&m); err != nil {
			t.Fatal(err)
		}
		return m.GetHistogram().GetSampleCount()
	}
	sh.scan(ctx)
	l.pub.waitFor(t, 60, 10*time.Second)
	// Before its first line is produced, each file's sent horizon must be
	// on disk (horizon.go): the harvesters asking together share writes.
	if c := writes(); c > 5 {
		t.Fatalf("shipping 20 new files wrote the registry %d times; their sent horizons should share writes", c)
	}
}

// TestFrequentTruncationCorruptsNoLine truncates a file very often, each
// time writing new lines again past where the shipper had read (as an app
// writing fast under a frequent copytruncate does): every line shipped must
// be one that was written, byte for byte, never the end of one glued to the
// start of another, and a line is shipped twice only if it was written
// twice.
func TestFrequentTruncationCorruptsNoLine(t *testing.T) {
	l := newLifecycle(t, nil)
	path := l.path("app.log")
	if err := os.WriteFile(path, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	l.start()
	waitUntil(t, "the empty file to be open", func() bool { return l.sh.openFiles() == 1 })
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	written := map[string]bool{}
	next := 0
	deadline := time.Now().Add(2 * time.Second)
	for round := 0; time.Now().Before(deadline); round++ {
		if err := f.Truncate(0); err != nil {
			t.Fatal(err)
		}
		var b []byte
		for range 1 + round%40 {
			line := fmt.Sprintf("line id=t%d round %d", next, round)
			written[line] = true
			b = append(b, line...)
			b = append(b, '\n')
			next++
		}
		if _, err := f.Write(b); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Duration(round%3) * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond)
	seen := map[string]int{}
	first := map[string]event.Event{}
	for _, ev := range l.pub.shipped() {
		line := string(ev.Line)
		if !written[line] {
			t.Errorf("corrupted line shipped at offset %d: %q", ev.Offset, line)
		}
		if seen[line]++; seen[line] == 2 {
			f := first[line]
			t.Errorf("line shipped twice: %q (file %s offset %d %v, then file %s offset %d %v)", line, f.FileID, f.Offset, f.Flags, ev.FileID, ev.Offset, ev.Flags)
		}
		first[line] = ev
	}
	t.Logf("%d lines written in truncated rounds, %d shipped", next, len(seen))
}

// TestFileIDFromFirstLine: a file is named by its first line (its first
// fingerprintSize bytes if longer), whatever was read after it, so that
// it gets the same id at any restart; other content gets another id.
func TestFileIDFromFirstLine(t *testing.T) {
	di := devIno{Dev: 1, Ino: 2}
	first := "2026-12-06T04:00:00Z first line\n"
	id := fileID(di, []byte(first))
	if got := fileID(di, []byte(first+"second line\n")); got != id {
		t.Errorf("more bytes after the first line changed the id: %s, %s", id, got)
	}
	for _, other := range []string{"2026-12-06T04:00:01Z first line\n", "2026-12-06T04:00:00Z first"} {
		if fileID(di, []byte(other)) == id {
			t.Errorf("%q has the id of %q", other, first)
		}
	}
	if fileID(devIno{Dev: 1, Ino: 3}, []byte(first)) == id {
		t.Error("another inode has the same id")
	}
	long := strings.Repeat("x", 3*fingerprintSize)
	if fileID(di, []byte(long[:fingerprintSize])) != fileID(di, []byte(long)) {
		t.Error("a first line longer than the fingerprint is not named by its first fingerprintSize bytes")
	}
}

// TestOldFileIDKept: an entry written by an older version keeps its id:
// the lines after its offset are shipped under it.
func TestOldFileIDKept(t *testing.T) {
	l := newLifecycle(t, nil)
	writeLines(t, l.path("app.log"), "k", 0, 20)
	f, err := os.Open(l.path("app.log"))
	if err != nil {
		t.Fatal(err)
	}
	fi, _ := f.Stat()
	di, _ := statDevIno(fi)
	head, _ := readHead(f, fingerprintSize)
	f.Close()
	firstTen := int64(10 * len("line id=k0 some padding to make the line a realistic length for a log line\n"))
	reg, _, err := openRegistry(l.cfg.Registry)
	if err != nil {
		t.Fatal(err)
	}
	old := fmt.Sprintf("%x-%x-%x", di.Dev, di.Ino, time.Now().UnixNano())
	reg.put(registryEntry{ID: old, Path: l.path("app.log"), Type: "service", DevIno: di, Fingerprint: fingerprintOf(head), Offset: firstTen})
	if err := reg.flush(); err != nil {
		t.Fatal(err)
	}
	l.start()
	got := l.pub.waitFor(t, 10, 10*time.Second)
	for _, ev := range got {
		if ev.FileID != old {
			t.Fatalf("line at %d shipped under %s, want the entry's id %s", ev.Offset, ev.FileID, old)
		}
	}
}
