package shipper

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap/zaptest"

	"github.com/sluicelog/sluice/internal/event"
	"github.com/sluicelog/sluice/internal/testenv"
)

// harness runs an in-process shipper against the real Kafka, on a topic of
// the test's own; under -short, the tests in onKfake run against kfake (an
// in-process Kafka), the others are skipped.
type harness struct {
	t     *testing.T
	stack *testenv.Stack
	dir   string
	topic string
	cfg   Config
	sh    *Shipper
	stop  func()
}

func newHarness(t *testing.T, adjust func(*Config)) *harness {
	t.Helper()
	if onKfake[t.Name()] {
		return newHarnessOn(t, testenv.Kafka(t), adjust)
	}
	return newHarnessOn(t, testenv.Start(t), adjust) // skips under -short
}

// newHarnessOn is newHarness on stack.
func newHarnessOn(t *testing.T, stack *testenv.Stack, adjust func(*Config)) *harness {
	t.Helper()
	dir := t.TempDir()
	h := &harness{t: t, stack: stack, dir: dir, topic: testenv.Name(t, "ship")}
	h.cfg = testConfig(dir)
	h.cfg.Kafka = KafkaConfig{Brokers: []string{stack.Broker}, Topic: h.topic, Partitions: 1}
	if adjust != nil {
		adjust(&h.cfg)
	}
	if err := os.MkdirAll(filepath.Join(dir, "logs"), 0o755); err != nil {
		t.Fatal(err)
	}
	return h
}

// onKfake are the harness's tests that also run on kfake under -short:
// produce and acknowledgement, rotation, and records over the topic's
// max.message.bytes cut to fit.
var onKfake = map[string]bool{
	"TestShipHeadersAndKey":                true,
	"TestRenameRotationWhileWriting":       true,
	"TestCopyTruncate":                     true,
	"TestShortFileAcrossRestart":           true,
	"TestOverlongLineIsCutAndFlagged":      true,
	"TestTopicWithSmallerMessageLimit":     true,
	"TestTopicLimitLoweredAfterStart":      true,
	"TestTopicLimitUnreadable":             true,
	"TestUnterminatedLineShippedAfterIdle": true,
}

// testConfig is the shipper configuration of the tests: dir/logs/*.log,
// registry in dir, short intervals.
func testConfig(dir string) Config {
	return Config{
		Node:                  "test-node",
		Registry:              filepath.Join(dir, "registry"),
		Inputs:                []InputConfig{{Type: "service", Paths: []string{filepath.Join(dir, "logs", "*.log")}}},
		ScanInterval:          100 * time.Millisecond,
		RegistryFlush:         100 * time.Millisecond,
		CloseRemovedAfter:     500 * time.Millisecond,
		UnterminatedLineAfter: 500 * time.Millisecond,
	}
}

func (h *harness) path(name string) string { return filepath.Join(h.dir, "logs", name) }

// start runs the shipper until stop is called or the test ends.
func (h *harness) start() {
	h.t.Helper()
	sh, err := New(h.cfg, prometheus.NewRegistry(), zaptest.NewLogger(h.t))
	if err != nil {
		h.t.Fatalf("New: %v", err)
	}
	h.sh = sh
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- sh.Run(ctx) }()
	stopped := false
	h.stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil {
			h.t.Errorf("shipper Run: %v", err)
		}
	}
	h.t.Cleanup(h.stop)
}

// waitOpen waits until the shipper has n files open.
func (h *harness) waitOpen(n int) {
	h.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for h.sh.openFiles() < n {
		if time.Now().After(deadline) {
			h.t.Fatalf("shipper has %d files open, want %d", h.sh.openFiles(), n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// records reads the topic until want records arrived.
func (h *harness) records(want int, timeout time.Duration) []*kgo.Record {
	return h.stack.ReadTopic(h.t, h.topic, want, timeout)
}

// assertIDs checks that every id line "id-<n>" for n in [0, n) arrived,
// and reports how many arrived more than once.
func (h *harness) assertIDs(recs []*kgo.Record, prefix string, n int) (dups int) {
	h.t.Helper()
	seen := map[string]int{}
	for _, r := range recs {
		seen[idOf(string(r.Value))]++
	}
	var missing []string
	for i := range n {
		id := fmt.Sprintf("%s%d", prefix, i)
		switch c := seen[id]; {
		case c == 0:
			missing = append(missing, id)
		case c > 1:
			dups += c - 1
		}
	}
	if len(missing) > 0 {
		h.t.Fatalf("%d of %d lines missing from Kafka, e.g. %v", len(missing), n, missing[:min(5, len(missing))])
	}
	return dups
}

// idOf extracts the id from a test line: the text after "id=" up to a space.
func idOf(line string) string {
	i := strings.Index(line, "id=")
	if i < 0 {
		return ""
	}
	rest := line[i+3:]
	if j := strings.IndexByte(rest, ' '); j >= 0 {
		rest = rest[:j]
	}
	return rest
}

func writeLines(t *testing.T, path, prefix string, from, to int) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	w := bufio.NewWriter(f)
	for i := from; i < to; i++ {
		fmt.Fprintf(w, "line id=%s%d some padding to make the line a realistic length for a log line\n", prefix, i)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestShipHeadersAndKey(t *testing.T) {
	h := newHarness(t, func(c *Config) {
		c.Inputs[0].Fields = map[string]string{"service": "checkout"}
	})
	writeLines(t, h.path("app.log"), "a", 0, 3)
	h.start()
	recs := h.records(3, 30*time.Second)
	h.assertIDs(recs, "a", 3)
	for i, r := range recs {
		ev, err := event.Decode(r)
		if err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
		if ev.Type != "service" || ev.Node != "test-node" || ev.Path != h.path("app.log") || ev.Fields["service"] != "checkout" {
			t.Errorf("record %d: unexpected metadata %+v", i, ev)
		}
		if string(r.Key) != ev.FileID || ev.FileID == "" {
			t.Errorf("record %d: key %q, file id %q", i, r.Key, ev.FileID)
		}
		if want := int64(i) * int64(len(recs[0].Value)+1); ev.Offset != want {
			t.Errorf("record %d: offset %d, want %d", i, ev.Offset, want)
		}
	}
}

func TestRenameRotationWhileWriting(t *testing.T) {
	h := newHarness(t, nil)
	h.cfg.Inputs[0].Paths = []string{h.path("app.log")} // rotated files are not matched
	h.start()
	// A writer at ~20k lines/s rotating every 2500 lines (~125ms), faster
	// than the 100ms scan interval can keep up with on its own.
	const total, perFile, chunk = 20000, 2500, 250
	for i := 0; i < total; i += perFile {
		for j := i; j < i+perFile; j += chunk {
			writeLines(t, h.path("app.log"), "r", j, j+chunk)
			time.Sleep(12 * time.Millisecond)
		}
		if err := os.Rename(h.path("app.log"), h.path(fmt.Sprintf("app.log.%d", i))); err != nil {
			t.Fatal(err)
		}
	}
	h.assertIDs(h.records(total, time.Minute), "r", total)
}

func TestCopyTruncate(t *testing.T) {
	h := newHarness(t, nil)
	h.start()
	writeLines(t, h.path("app.log"), "c", 0, 1000)
	h.records(1000, 30*time.Second)
	copyFile(t, h.path("app.log"), h.dir+"/app.log.1")
	if err := os.Truncate(h.path("app.log"), 0); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond) // the shipper notices the shrink
	writeLines(t, h.path("app.log"), "c", 1000, 1500)
	recs := h.records(1500, 30*time.Second)
	if dups := h.assertIDs(recs, "c", 1500); dups != 0 {
		t.Fatalf("%d duplicates after copytruncate", dups)
	}
	if got := testutil.ToFloat64(h.sh.metrics.truncations); got != 1 {
		t.Fatalf("truncations = %v, want 1", got)
	}
}

// TestTruncateInPlaceAndRegrow truncates a file and writes more than before
// before the shipper can see the file short: the fingerprint tells the new
// content from the old.
func TestTruncateInPlaceAndRegrow(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.ScanInterval = 2 * time.Second })
	writeLines(t, h.path("app.log"), "t", 0, 100)
	h.start()
	h.records(100, 30*time.Second)
	f, err := os.OpenFile(h.path("app.log"), os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		t.Fatal(err)
	}
	w := bufio.NewWriter(f)
	for i := 100; i < 400; i++ {
		fmt.Fprintf(w, "other content id=t%d\n", i)
	}
	w.Flush()
	f.Close()
	h.assertIDs(h.records(400, 30*time.Second), "t", 400)
}

func TestDeleteWhileUnread(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.MaxInFlightBytes = 4 << 20; c.MaxLineBytes = 64 << 10 })
	writeLines(t, h.path("app.log"), "d", 0, 200000)
	h.start()
	h.waitOpen(1)
	if err := os.Remove(h.path("app.log")); err != nil {
		t.Fatal(err)
	}
	h.assertIDs(h.records(200000, 2*time.Minute), "d", 200000)
	// The handle is released once the file is read and the grace passed.
	deadline := time.Now().Add(15 * time.Second)
	for h.sh.openFiles() > 0 {
		if time.Now().After(deadline) {
			t.Fatal("deleted file still open")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestInodeReuse(t *testing.T) {
	h := newHarness(t, nil)
	h.start()
	writeLines(t, h.path("app.log"), "x", 0, 50)
	h.records(50, 30*time.Second)
	ino := inode(t, h.path("app.log"))
	if err := os.Remove(h.path("app.log")); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for h.sh.openFiles() > 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	// A new, larger file; on most filesystems it gets the freed inode.
	writeLines(t, h.path("app.log"), "y", 0, 80)
	if inode(t, h.path("app.log")) != ino {
		t.Log("the filesystem did not reuse the inode; the test still checks the new file is read whole")
	}
	recs := h.records(130, 30*time.Second)
	h.assertIDs(recs, "y", 80)
}

func TestShortFileAcrossRestart(t *testing.T) {
	h := newHarness(t, nil)
	writeLines(t, h.path("app.log"), "s", 0, 1) // far shorter than the fingerprint
	h.start()
	h.records(1, 30*time.Second)
	h.stop()
	writeLines(t, h.path("app.log"), "s", 1, 40) // grows past the fingerprint size
	h.start()
	recs := h.records(40, 30*time.Second)
	time.Sleep(time.Second)
	recs = append(recs[:0], h.records(40, 2*time.Second)...)
	if dups := h.assertIDs(recs, "s", 40); dups != 0 || len(recs) != 40 {
		t.Fatalf("%d records with %d duplicates, want 40 and none", len(recs), dups)
	}
}

func TestOverlongLineIsCutAndFlagged(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.MaxLineBytes = 4096 })
	long := "line id=long " + strings.Repeat("x", 20000)
	if err := os.WriteFile(h.path("app.log"), []byte(long+"\nline id=after\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	h.start()
	recs := h.records(2, 30*time.Second)
	if len(recs) != 2 {
		t.Fatalf("got %d records, want 2", len(recs))
	}
	ev, _ := event.Decode(recs[0])
	if len(ev.Line) != 4096 || !ev.HasFlag(event.FlagTruncated) {
		t.Fatalf("long line: %d bytes, flags %v; want 4096 bytes flagged truncated", len(ev.Line), ev.Flags)
	}
	if got := string(recs[1].Value); got != "line id=after" {
		t.Fatalf("line after the long one = %q", got)
	}
}

// TestTopicWithSmallerMessageLimit ships into a topic made beforehand (by
// an operator) whose max.message.bytes, 64 KiB, is far below the
// shipper's batches and lines (1 MiB), uncompressed so that nothing hides
// the batch sizes: the small lines all arrive (batches are kept under the
// topic's limit), and a 200 KiB line arrives cut to fit and flagged
// truncated, with the lines after it, rather than being refused forever.
func TestTopicWithSmallerMessageLimit(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.Kafka.Compression = "none" })
	h.createTopic(65536)
	writeLines(t, h.path("app.log"), "a", 0, 3000)
	writeLongLine(t, h.path("app.log"), 200<<10)
	writeLines(t, h.path("app.log"), "b", 0, 3000)
	h.start()
	recs := h.records(6001, 60*time.Second)
	h.assertIDs(recs, "a", 3000)
	h.assertIDs(recs, "b", 3000)
	ev := lineWithID(t, recs, "long")
	if !ev.HasFlag(event.FlagTruncated) || len(ev.Line) >= 64<<10 || len(ev.Line) < 32<<10 {
		t.Fatalf("the 200 KiB line arrived with %d bytes, flags %v; want cut under the topic's 64 KiB, flagged truncated", len(ev.Line), ev.Flags)
	}
	if got := testutil.ToFloat64(h.sh.metrics.linesCut.WithLabelValues("service")); got != 1 {
		t.Errorf("sluice_shipper_lines_truncated_total = %v, want 1", got)
	}
}

func TestUnterminatedLineShippedAfterIdle(t *testing.T) {
	h := newHarness(t, nil)
	if err := os.WriteFile(h.path("app.log"), []byte("line id=u0\nline id=u1 no newline"), 0o644); err != nil {
		t.Fatal(err)
	}
	h.start()
	recs := h.records(2, 30*time.Second)
	h.assertIDs(recs, "u", 2)
	ev, _ := event.Decode(recs[1])
	if !ev.HasFlag(event.FlagUnterminated) {
		t.Fatalf("final line flags = %v, want unterminated", ev.Flags)
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	src, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst, err := os.Create(to)
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close()
	if _, err := io.Copy(dst, src); err != nil {
		t.Fatal(err)
	}
}

func inode(t *testing.T, path string) uint64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Sys().(*syscall.Stat_t).Ino
}

// TestCRIInterleavedAcrossRestart: a stderr line shipped and acknowledged
// while a stdout line waits for its final piece does not move the registry
// past that line's first piece, so that after a restart the stdout line is
// read again from its start and arrives whole.
func TestCRIInterleavedAcrossRestart(t *testing.T) {
	h := newHarness(t, func(c *Config) {
		c.Inputs[0].Format = FormatCRI
		c.UnterminatedLineAfter = time.Minute
	})
	first := "2026-11-25T10:00:00Z stdout P line id=k0 part one, \n"
	content := first + "2026-11-25T10:00:01Z stderr F line id=k1\n"
	if err := os.WriteFile(h.path("app.log"), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	h.start()
	if recs := h.records(1, 30*time.Second); len(recs) != 1 {
		t.Fatalf("got %d records, want the stderr line", len(recs))
	}
	time.Sleep(300 * time.Millisecond) // the ack reaches the registry
	h.stop()
	for _, e := range h.sh.registry.snapshot() {
		if e.Offset != 0 {
			t.Fatalf("registry at %d, past the stdout line still waiting at 0", e.Offset)
		}
	}
	f, err := os.OpenFile(h.path("app.log"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString("2026-11-25T10:00:02Z stdout F part two\n"); err != nil {
		t.Fatal(err)
	}
	f.Close()
	h.start()
	recs := h.records(3, 30*time.Second) // the stderr line again (same document id), the stdout line
	var whole int
	for _, r := range recs {
		ev, _ := event.Decode(r)
		switch string(ev.Line) {
		case "line id=k0 part one, part two":
			whole++
			if ev.Offset != 0 || ev.Stream != "stdout" {
				t.Errorf("stdout line at offset %d, stream %q", ev.Offset, ev.Stream)
			}
		case "line id=k1":
			if ev.Offset != int64(len(first)) {
				t.Errorf("stderr line at offset %d, want %d", ev.Offset, len(first))
			}
		default:
			t.Errorf("unexpected record %q", ev.Line)
		}
	}
	if whole != 1 {
		t.Fatalf("stdout line arrived whole %d times, want once: %d records", whole, len(recs))
	}
}

func TestCRIPartialLines(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.Inputs[0].Format = FormatCRI })
	id := strings.Repeat("0f", 32)
	name := "web-1_shop_nginx-" + id + ".log"
	content := "2026-11-25T10:00:00.000000001Z stdout P line id=k0 part one, \n" +
		"2026-11-25T10:00:00.000000002Z stdout F part two\n" +
		"2026-11-25T10:00:01Z stderr F line id=k1\n"
	if err := os.WriteFile(h.path(name), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	h.start()
	recs := h.records(2, 30*time.Second)
	if len(recs) != 2 {
		t.Fatalf("got %d records, want 2", len(recs))
	}
	ev, _ := event.Decode(recs[0])
	if string(ev.Line) != "line id=k0 part one, part two" || ev.Stream != "stdout" || ev.Offset != 0 ||
		ev.LogTime.UnixNano() != time.Date(2026, 11, 25, 10, 0, 0, 1, time.UTC).UnixNano() {
		t.Errorf("joined line = %q stream %q offset %d time %v", ev.Line, ev.Stream, ev.Offset, ev.LogTime)
	}
	if ev.Fields["kubernetes.pod.name"] != "web-1" || ev.Fields["kubernetes.namespace"] != "shop" || ev.Fields["container.name"] != "nginx" {
		t.Errorf("kubernetes fields = %v", ev.Fields)
	}
	ev1, _ := event.Decode(recs[1])
	if string(ev1.Line) != "line id=k1" || ev1.Stream != "stderr" {
		t.Errorf("second line = %q %q", ev1.Line, ev1.Stream)
	}
}
