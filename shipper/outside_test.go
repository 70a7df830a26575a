package shipper

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sluicelog/sluice/internal/event"
)

// TestWaitingFileRenamedOutOfGlobsIsRead: a file waits for max_open_files
// and is renamed out of the globs meanwhile; it is still read once a slot
// is free.
func TestWaitingFileRenamedOutOfGlobsIsRead(t *testing.T) {
	l := newLifecycle(t, func(c *Config) { c.MaxOpenFiles = 1 })
	pub := &heldPublisher{}
	writeLines(t, l.path("a.log"), "a", 0, 10)
	_, stop := startShipper(t, l.cfg, pub)
	pub.waitFor(t, 10, 10*time.Second) // a.log holds the slot: its lines are not acknowledged
	writeLines(t, l.path("b.log"), "b", 0, 10)
	time.Sleep(300 * time.Millisecond) // b.log waits
	if err := os.Rename(l.path("b.log"), l.path("b.log.1")); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond) // scans that no longer find it
	pub.release()
	got := pub.waitFor(t, 20, 10*time.Second)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	assertOnce(t, got, "b", 10)
}

// TestRenamedWhileStoppedWaitsForSlot: at start, a file renamed out of the
// globs while the shipper was stopped is read even when the first scan
// takes every max_open_files slot: it waits its turn.
func TestRenamedWhileStoppedWaitsForSlot(t *testing.T) {
	l := newLifecycle(t, func(c *Config) { c.MaxOpenFiles = 1 })
	writeLines(t, l.path("a.log"), "a", 0, 10)
	writeLines(t, l.path("b.log"), "b", 0, 10)
	_, stop := startShipper(t, l.cfg, l.pub)
	l.pub.waitFor(t, 20, 10*time.Second)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	writeLines(t, l.path("a.log"), "a", 10, 20)
	writeLines(t, l.path("b.log"), "b", 10, 20)
	if err := os.Rename(l.path("b.log"), l.path("b.log.1")); err != nil {
		t.Fatal(err)
	}
	_, stop = startShipper(t, l.cfg, l.pub)
	got := l.pub.waitFor(t, 40, 10*time.Second)
	time.Sleep(200 * time.Millisecond)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	got = l.pub.shipped()
	assertOnce(t, got, "a", 20)
	assertOnce(t, got, "b", 20)
}

// rotatingWriter writes numbered lines to a log and rotates it by rename,
// as an app with logrotate does: after the rename the app writes a few
// more lines to the old file before it opens the new one.
type rotatingWriter struct {
	t       *testing.T
	path    string
	f       *os.File
	w       *bufio.Writer
	next    int
	rotated int
	want    map[string]bool
}

func newRotatingWriter(t *testing.T, path string) *rotatingWriter {
	rw := &rotatingWriter{t: t, path: path, want: map[string]bool{}}
	rw.open()
	return rw
}

func (rw *rotatingWriter) open() {
	f, err := os.OpenFile(rw.path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		rw.t.Fatal(err)
	}
	rw.f, rw.w = f, bufio.NewWriter(f)
}

func (rw *rotatingWriter) write(n int) {
	for range n {
		line := fmt.Sprintf("line id=r%d file %d padding padding padding", rw.next, rw.rotated)
		rw.want[line] = true
		rw.w.WriteString(line)
		rw.w.WriteByte('\n')
		rw.next++
	}
	if err := rw.w.Flush(); err != nil {
		rw.t.Fatal(err)
	}
}

func (rw *rotatingWriter) rotate() {
	rw.rotated++
	if err := os.Rename(rw.path, fmt.Sprintf("%s.%d", rw.path, rw.rotated)); err != nil {
		rw.t.Fatal(err)
	}
	rw.write(3) // late writes to the renamed file
	rw.f.Close()
	rw.open()
}

func (rw *rotatingWriter) close() { rw.f.Close() }

// TestRotationAndRestartLoseNothing rotates a log by rename 30 times while
// 50,000 lines are written at full speed, with a restart of the shipper in
// the middle (and a rotation while it is stopped), for a glob matching
// only the live file and for one matching the rotated files too: every
// line is shipped exactly once, byte for byte.
func TestRotationAndRestartLoseNothing(t *testing.T) {
	for _, glob := range []string{"app.log", "app.log*"} {
		t.Run(glob, func(t *testing.T) {
			l, rw := rotateWithRestart(t, glob, false)
			assertExactly(t, l.pub.shipped(), rw.want)
		})
	}
}

// TestRotationAndCrashLoseNothing is TestRotationAndRestartLoseNothing
// with a crash instead of a stop: the registry is as it was on disk some
// time before. Lines after it are shipped again, each under the document
// id it had, so that the index holds every line once.
func TestRotationAndCrashLoseNothing(t *testing.T) {
	for _, glob := range []string{"app.log", "app.log*"} {
		t.Run(glob, func(t *testing.T) {
			l, rw := rotateWithRestart(t, glob, true)
			got := l.pub.shipped()
			ids := map[string]string{}
			for _, ev := range got {
				line := string(ev.Line)
				if !rw.want[line] {
					t.Fatalf("shipped a line never written: %q", line)
				}
				if id, ok := ids[line]; ok && id != ev.DocID() {
					t.Fatalf("%q shipped again under another document id", line)
				}
				ids[line] = ev.DocID()
			}
			if len(ids) != len(rw.want) {
				missing := map[string]int{}
				for line := range rw.want {
					if _, ok := ids[line]; !ok {
						missing[strings.Fields(line)[3]]++
					}
				}
				t.Fatalf("%d of %d lines shipped; missing by file: %v", len(ids), len(rw.want), missing)
			}
		})
	}
}

// rotateWithRestart writes 50,000 lines to app.log in a directory watched
// with glob, rotating it by rename 30 times, and stops and starts the
// shipper in the middle, with a rotation while it is stopped. With crash,
// the registry is then put back as it was on disk before the stop, once
// it knew the live file. It returns when every line was shipped, or 10 s.
func rotateWithRestart(t *testing.T, glob string, crash bool) (*lifecycle, *rotatingWriter) {
	l := newLifecycle(t, func(c *Config) {
		c.Inputs[0].Paths = []string{filepath.Join(filepath.Dir(c.Inputs[0].Paths[0]), glob)}
		c.ScanInterval = 200 * time.Millisecond
	})
	rw := newRotatingWriter(t, l.path("app.log"))
	t.Cleanup(rw.close)
	sh, stop := startShipper(t, l.cfg, l.pub)
	// A file that lives and leaves the globs before the shipper watches
	// its directory cannot be known: write once it does.
	waitReading(t, sh, rw.path)
	const rotations, perFile = 30, 50000 / 30
	for i := range rotations {
		rw.write(perFile)
		if i != rotations/2 {
			rw.rotate()
			continue
		}
		// A file that lives, leaves the globs and is never seen again
		// while the shipper is stopped cannot be known: stop once the
		// live one was seen.
		waitReading(t, sh, rw.path)
		saved := filepath.Join(t.TempDir(), "registry")
		if crash {
			waitOnDisk(t, l.cfg.Registry, rw.path)
			copyDir(t, l.cfg.Registry, saved)
		}
		if err := stop(); err != nil {
			t.Fatal(err)
		}
		if crash {
			if err := os.RemoveAll(l.cfg.Registry); err != nil {
				t.Fatal(err)
			}
			copyDir(t, saved, l.cfg.Registry)
		}
		rw.write(100)
		rw.rotate()
		rw.write(100)
		sh, stop = startShipper(t, l.cfg, l.pub)
		waitReading(t, sh, rw.path)
	}
	rw.write(perFile)
	distinct := func() int {
		seen := map[string]bool{}
		for _, ev := range l.pub.shipped() {
			seen[string(ev.Line)] = true
		}
		return len(seen)
	}
	deadline := time.Now().Add(10 * time.Second)
	for distinct() < len(rw.want) && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond) // anything more would come now
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	return l, rw
}

// waitOnDisk waits until the registry written in dir knows every file in
// the directory of path: a crash loses the files renamed out of the globs
// that the registry did not know yet.
func waitOnDisk(t *testing.T, dir, path string) {
	t.Helper()
	waitUntil(t, "the files to be in the registry on disk", func() bool {
		entries, err := readRegistryFile(filepath.Join(dir, registryName))
		if err != nil {
			return false
		}
		known := map[devIno]bool{}
		for _, e := range entries {
			known[e.DevIno] = true
		}
		for di := range filesByDevIno(filepath.Dir(path)) {
			if !known[di] {
				return false
			}
		}
		return true
	})
}

// assertExactly checks that events carry each of want once, and nothing
// else.
func assertExactly(t *testing.T, events []event.Event, want map[string]bool) {
	t.Helper()
	seen := map[string]int{}
	for _, ev := range events {
		line := string(ev.Line)
		seen[line]++
		if !want[line] {
			t.Errorf("shipped a line never written: %q", line)
		} else if seen[line] == 2 {
			t.Errorf("shipped twice: %q", line)
		}
	}
	missing := 0
	for line := range want {
		if seen[line] == 0 {
			if missing++; missing <= 5 {
				t.Errorf("never shipped: %q", line)
			}
		}
	}
	if missing > 0 {
		t.Errorf("%d of %d lines never shipped", missing, len(want))
	}
}

// waitReading waits until sh reads the file now at path.
func waitReading(t *testing.T, sh *Shipper, path string) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	di, _ := statDevIno(fi)
	waitUntil(t, path+" to be read", func() bool {
		sh.mu.Lock()
		defer sh.mu.Unlock()
		return sh.harvesters[di] != nil
	})
}

// TestCopytruncateCopyNotReadAgain: with a glob that matches the copies
// copytruncate leaves (app.log*), a copy is recognised by its first bytes
// and read only from where the original was read to: the lines the
// original had not been read for yet are shipped from it, none twice.
func TestCopytruncateCopyNotReadAgain(t *testing.T) {
	l := newLifecycle(t, func(c *Config) {
		c.Inputs[0].Paths = []string{filepath.Join(filepath.Dir(c.Inputs[0].Paths[0]), "app.log*")}
	})
	writeLines(t, l.path("app.log"), "c", 0, 1000)
	_, stop := startShipper(t, l.cfg, l.pub)
	l.pub.waitFor(t, 1000, 10*time.Second)
	writeLines(t, l.path("app.log"), "c", 1000, 1100) // read or not before the copy
	copyFile(t, l.path("app.log"), l.path("app.log.1"))
	if err := os.Truncate(l.path("app.log"), 0); err != nil {
		t.Fatal(err)
	}
	writeLines(t, l.path("app.log"), "c", 1100, 1200)
	l.pub.waitFor(t, 1200, 10*time.Second)
	time.Sleep(500 * time.Millisecond) // anything more would come now
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	got := l.pub.shipped()
	assertOnce(t, got, "c", 1200)
	if len(got) != 1200 {
		t.Errorf("%d lines shipped, want 1200", len(got))
	}
}

// TestCopySeenShortIsNotReadAgain: cp opens the copy, then fills it; a
// scan may find it holding its first line but less than the fingerprint of
// the file it copies. It must wait to grow and be recognised as a copy, not
// be read from its start as a new file (which shipped every line again).
func TestCopySeenShortIsNotReadAgain(t *testing.T) {
	l := newLifecycle(t, func(c *Config) {
		c.Inputs[0].Paths = []string{filepath.Join(filepath.Dir(c.Inputs[0].Paths[0]), "app.log*")}
	})
	writeLines(t, l.path("app.log"), "c", 0, 1000)
	_, stop := startShipper(t, l.cfg, l.pub)
	l.pub.waitFor(t, 1000, 10*time.Second)
	data, err := os.ReadFile(l.path("app.log"))
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(l.path("app.log.1"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(data[:200]); err != nil { // a first line, not a fingerprint's worth
		t.Fatal(err)
	}
	time.Sleep(time.Second) // found by a scan and the notification
	if _, err := f.Write(data[200:]); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(l.path("app.log"), 0); err != nil {
		t.Fatal(err)
	}
	writeLines(t, l.path("app.log"), "c", 1000, 1100)
	l.pub.waitFor(t, 1100, 10*time.Second)
	time.Sleep(time.Second) // anything more would come now
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	got := l.pub.shipped()
	assertOnce(t, got, "c", 1100)
	if len(got) != 1100 {
		t.Errorf("%d lines shipped, want 1100", len(got))
	}
}

// TestAlikeFilesAreBothReadWhole: two files that start with the same bytes
// (the same lines in two services' logs, a banner) are not a copy and its
// original unless the original is truncated: both are read whole.
func TestAlikeFilesAreBothReadWhole(t *testing.T) {
	l := newLifecycle(t, nil)
	writeLines(t, l.path("a.log"), "x", 0, 100)
	_, stop := startShipper(t, l.cfg, l.pub)
	l.pub.waitFor(t, 100, 10*time.Second)
	writeLines(t, l.path("b.log"), "x", 0, 100) // the same lines, another file
	l.pub.waitFor(t, 200, 15*time.Second)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if got := len(l.pub.shipped()); got != 200 {
		t.Errorf("%d lines shipped, want 200: both files whole", got)
	}
}
