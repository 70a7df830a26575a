package shipper

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap"
)

// TestQuietFilesHoldLittleMemory opens many files that each got a few lines
// and then nothing, as a node's container logs mostly are, with the default
// max_line_bytes (1 MiB): once their lines are shipped, each open file
// holds a few KiB of heap, not a read buffer sized for the longest line nor
// a block of records.
func TestQuietFilesHoldLittleMemory(t *testing.T) {
	dir := t.TempDir()
	const files = 300
	for f := range files {
		line := fmt.Sprintf(`{"file":%d,"msg":"%s"}`+"\n", f, strings.Repeat("x", 200))
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("app-%03d.log", f)), []byte(strings.Repeat(line, 3)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cfg := Config{
		Node: "test", Registry: filepath.Join(dir, "registry"),
		Inputs:       []InputConfig{{Type: "service", Paths: []string{filepath.Join(dir, "*.log")}}},
		ScanInterval: 50 * time.Millisecond,
	}
	pub := &nullPublisher{}
	before := liveHeap()
	sh, err := New(cfg, prometheus.NewRegistry(), zap.NewNop(), WithPublisher(pub))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- sh.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	deadline := time.Now().Add(30 * time.Second)
	for pub.n.Load() < 3*files || testutil.ToFloat64(sh.metrics.filesOpen) < files {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d lines shipped, %v files open", pub.n.Load(), 3*files, testutil.ToFloat64(sh.metrics.filesOpen))
		}
		time.Sleep(10 * time.Millisecond)
	}
	// Once every harvester has found nothing more to read (and its file's
	// sent horizon is on disk), the heap settles: the least of a few
	// readings over up to 3 s, so a busy machine's slow goroutines are not
	// taken for memory held.
	perFile := int64(1 << 62)
	for end := time.Now().Add(3 * time.Second); time.Now().Before(end) && perFile > 32<<10; {
		time.Sleep(200 * time.Millisecond)
		perFile = min(perFile, (liveHeap()-before)/files)
	}
	t.Logf("%d open files hold %d KiB of heap each", files, perFile>>10)
	if perFile > 32<<10 {
		t.Errorf("each quiet open file holds %d KiB of heap, want under 32 KiB", perFile>>10)
	}
}

// liveHeap is the heap in use after a collection.
func liveHeap() int64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapAlloc)
}

// TestManyBusyFilesHoldLittleMemory: 1,000 files each with a backlog,
// shipped into a destination slower than reading (a Kafka-like publisher
// at 20 MB/s), as on a node whose Kafka is the bottleneck. The files wait
// their turns for the in-flight budget holding no read buffer and no
// record block (turn.go): the live heap stays about 20-40 MiB, where a
// read buffer and a record block per waiting file made it 90-100 MiB.
func TestManyBusyFilesHoldLittleMemory(t *testing.T) {
	dir := t.TempDir()
	const files, lines = 1000, 200
	for f := range files {
		line := fmt.Sprintf(`{"file":%d,"msg":"%s"}`+"\n", f, strings.Repeat("x", 220))
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("app-%04d.log", f)), []byte(strings.Repeat(line, lines)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cfg := Config{Node: "test", Registry: filepath.Join(dir, "registry"),
		Inputs: []InputConfig{{Type: "service", Paths: []string{filepath.Join(dir, "*.log")}}}}
	k := newKafkaLike(20e6, 20*time.Millisecond)
	defer k.stop()
	before := liveHeap()
	sh, err := New(cfg, prometheus.NewRegistry(), zap.NewNop(), WithPublisher(k))
	if err != nil {
		t.Fatal(err)
	}
	runShipper(t, sh)
	acked := sh.metrics.linesAcked.WithLabelValues("service")
	deadline := time.Now().Add(30 * time.Second)
	for testutil.ToFloat64(acked) < files*lines/10 || testutil.ToFloat64(sh.metrics.filesOpen) < files {
		if time.Now().After(deadline) {
			t.Fatalf("%v lines acknowledged, %v files open", testutil.ToFloat64(acked), testutil.ToFloat64(sh.metrics.filesOpen))
		}
		time.Sleep(50 * time.Millisecond)
	}
	// The median of a few readings: the first lines of 1,000 new files
	// leave garbage (and blocks in their pool) for a collection or two.
	var heaps []int64
	for range 7 {
		heaps = append(heaps, liveHeap()-before)
		time.Sleep(150 * time.Millisecond)
	}
	slices.Sort(heaps)
	most := heaps[len(heaps)/2]
	t.Logf("%d busy files behind a slow destination: live heap %d MiB (median; %d to %d MiB), %.0f of %d lines acknowledged",
		files, most>>20, heaps[0]>>20, heaps[len(heaps)-1]>>20, testutil.ToFloat64(acked), files*lines)
	if most > 48<<20 {
		t.Errorf("live heap %d MiB with 1,000 busy files, want under 48 MiB", most>>20)
	}
}
