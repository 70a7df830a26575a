package main

import (
	"context"
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"go.uber.org/zap"
)

// configMap is a directory laid out as the kubelet lays out a ConfigMap
// volume: each version in a timestamped directory, ..data a symlink to the
// current one, and each key a symlink to ..data/KEY.
type configMap struct {
	t       *testing.T
	dir     string
	current string // the timestamped directory ..data points to
}

// newConfigMap makes the volume with config.yaml holding content.
func newConfigMap(t *testing.T, content string) *configMap {
	m := &configMap{t: t, dir: t.TempDir()}
	m.update(content)
	if err := os.Symlink(filepath.Join("..data", "config.yaml"), filepath.Join(m.dir, "config.yaml")); err != nil {
		t.Fatal(err)
	}
	return m
}

func (m *configMap) path() string { return filepath.Join(m.dir, "config.yaml") }

// update writes content as the kubelet's atomic writer does: a new
// timestamped directory, a ..data_tmp symlink to it renamed over ..data
// (one atomic step), then the old directory removed.
func (m *configMap) update(content string) {
	t := m.t
	ts, err := os.MkdirTemp(m.dir, time.Now().UTC().Format("..2006_01_02_15_04_05."))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(ts, "config.yaml"), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	tmp := filepath.Join(m.dir, "..data_tmp")
	if err := os.Symlink(filepath.Base(ts), tmp); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(m.dir, "..data")); err != nil {
		t.Fatal(err)
	}
	if m.current != "" {
		if err := os.RemoveAll(m.current); err != nil {
			t.Fatal(err)
		}
	}
	m.current = ts
}

// TestWatchFileSeesAConfigMapSwap swaps a ConfigMap-style volume's
// content: the watch reports each new content once, through inotify (the
// poll is an hour), and nothing for a swap to the same content.
func TestWatchFileSeesAConfigMapSwap(t *testing.T) {
	m := newConfigMap(t, "a: 1\n")
	changes := make(chan [sha256.Size]byte, 10)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		watchFile(ctx, m.path(), sha256.Sum256([]byte("a: 1\n")), time.Hour, zap.NewNop(), func(h [sha256.Size]byte) { changes <- h })
	}()
	defer func() { cancel(); <-done }()
	time.Sleep(100 * time.Millisecond) // the watch is set

	expect := func(content string) {
		t.Helper()
		select {
		case h := <-changes:
			if h != sha256.Sum256([]byte(content)) {
				t.Fatalf("reported a change to other content than %q", content)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("the swap to %q was not seen", content)
		}
	}
	for i := 2; i <= 3; i++ {
		content := fmt.Sprintf("a: %d\n", i)
		m.update(content)
		expect(content)
	}
	m.update("a: 3\n") // the same content again: the kubelet resyncs
	select {
	case <-changes:
		t.Fatal("a swap to the same content was reported")
	case <-time.After(500 * time.Millisecond):
	}
}

// TestRunReloadsWhenTheConfigMapChanges runs `sluice run` with
// reload.watch from a ConfigMap-style volume and swaps its content as the
// kubelet does: the process reloads without a signal, and the new output
// receives the lines written afterwards.
func TestRunReloadsWhenTheConfigMapChanges(t *testing.T) {
	dir := t.TempDir()
	listen := freeAddr(t)
	first, second := filepath.Join(dir, "out", "first.ndjson"), filepath.Join(dir, "out", "second.ndjson")
	logPath := filepath.Join(dir, "logs", "app.log")
	content := func(out string) string {
		p := writeRunConfig(t, filepath.Join(dir, "render.yaml"), dir, listen,
			fmt.Sprintf("output:\n  file: {path: %s}\nreload:\n  watch: true", out), filepath.Join(dir, "logs", "*.log"))
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	m := newConfigMap(t, content(first))
	appendLines(t, logPath, serviceLines(0, 100, "checkout"))
	run := startSluice(t, "run", "-c", m.path())
	waitDocs(t, 100, time.Minute, first)

	m.update(content(second))
	waitMetric(t, listen, `sluice_config_reload_total{result="success"}`, 1)
	appendLines(t, logPath, serviceLines(100, 200, "checkout"))
	waitDocs(t, 100, time.Minute, second)
	run.stop()
	assertEachOnce(t, readRunDocs(t, first, second), "s", 200)
}
