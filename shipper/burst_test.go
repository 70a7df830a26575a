package shipper

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap"
)

// shufflingPublisher holds records and acknowledges them later, from
// another goroutine, in random order: as Kafka does across partitions and
// retries.
type shufflingPublisher struct {
	mu      sync.Mutex
	held    []heldRecord
	values  map[string]int
	maxHeld int
	// changed counts records whose value or headers changed between
	// Publish and their acknowledgement: memory used again too early.
	changed int
}

// heldRecord is a record waiting for its acknowledgement, and a copy of
// what it held when published.
type heldRecord struct {
	rec   *kgo.Record
	was   string
	acked func()
}

// recordText is a record's value and headers, for comparing.
func recordText(rec *kgo.Record) string {
	var b strings.Builder
	b.Write(rec.Value)
	for _, h := range rec.Headers {
		fmt.Fprintf(&b, "|%s=%s", h.Key, h.Value)
	}
	return b.String()
}

func (p *shufflingPublisher) Prepare(context.Context, string) error { return nil }
func (p *shufflingPublisher) Close(context.Context) error           { return nil }
func (p *shufflingPublisher) Publish(_ context.Context, rec *kgo.Record, acked func()) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.values[string(rec.Value)]++
	p.held = append(p.held, heldRecord{rec: rec, was: recordText(rec), acked: acked})
	p.maxHeld = max(p.maxHeld, len(p.held))
	return nil
}

// ackSome acknowledges up to n held records, chosen at random.
func (p *shufflingPublisher) ackSome(r *rand.Rand, n int) {
	p.mu.Lock()
	r.Shuffle(len(p.held), func(i, j int) { p.held[i], p.held[j] = p.held[j], p.held[i] })
	n = min(n, len(p.held))
	acks := p.held[:n]
	p.held = append([]heldRecord{}, p.held[n:]...)
	for _, h := range acks {
		if recordText(h.rec) != h.was {
			p.changed++
		}
	}
	p.mu.Unlock()
	for _, h := range acks {
		h.acked()
	}
}

// TestBurstsUnderTightBudget reads many files at once through a budget
// that holds only a few lines, with acknowledgements arriving late and out
// of order: every line is published once, the shipper never stalls (bursts
// give their budget back even when every file waits for budget), the
// in-flight bytes stay within the budget, no record changes before it is
// acknowledged (the memory records are built in is used again only after),
// and each file's registry offset ends at its end.
func TestBurstsUnderTightBudget(t *testing.T) {
	shipWithLateAcks(t, 8192+4*recordOverhead)
}

// TestRecordsIntactUntilAcknowledged is the same with a budget of many
// lines, so that many records wait for their acknowledgement while their
// file's reading goes on into new blocks: no record changes before it is
// acknowledged.
func TestRecordsIntactUntilAcknowledged(t *testing.T) {
	shipWithLateAcks(t, 1<<20)
}

// shipWithLateAcks ships 12 files through a shufflingPublisher under a
// budget of inFlight bytes and checks what TestBurstsUnderTightBudget
// names.
func shipWithLateAcks(t *testing.T, inFlight int64) {
	dir := t.TempDir()
	const files, lines = 12, 2000
	var paths []string
	for f := range files {
		path := filepath.Join(dir, fmt.Sprintf("app-%02d.log", f))
		var b strings.Builder
		for i := range lines {
			fmt.Fprintf(&b, `{"file":%d,"line":%d,"msg":"%s"}`+"\n", f, i, strings.Repeat("x", i%300))
		}
		if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, path)
	}
	cfg := Config{
		Node: "test", Registry: filepath.Join(dir, "registry"),
		Inputs:           []InputConfig{{Type: "service", Paths: []string{filepath.Join(dir, "*.log")}}},
		ScanInterval:     10 * time.Millisecond,
		MaxLineBytes:     4096,
		MaxInFlightBytes: inFlight,
	}
	pub := &shufflingPublisher{values: map[string]int{}}
	reg := prometheus.NewRegistry()
	sh, err := New(cfg, reg, zap.NewNop(), WithPublisher(pub))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- sh.Run(ctx) }()

	r := rand.New(rand.NewPCG(3, 4))
	deadline := time.Now().Add(60 * time.Second)
	peak := 0.0
	for {
		peak = max(peak, testutil.ToFloat64(sh.metrics.inFlightBytes))
		pub.ackSome(r, 8)
		pub.mu.Lock()
		published := len(pub.values)
		pub.mu.Unlock()
		if published == files*lines && testutil.ToFloat64(sh.metrics.inFlightBytes) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("stalled: %d of %d lines published, %v bytes in flight", published, files*lines, testutil.ToFloat64(sh.metrics.inFlightBytes))
		}
		time.Sleep(50 * time.Microsecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	for v, n := range pub.values {
		if n != 1 {
			t.Fatalf("line %s published %d times", v, n)
		}
	}
	if pub.changed > 0 {
		t.Errorf("%d records changed before they were acknowledged", pub.changed)
	}
	if peak > float64(cfg.MaxInFlightBytes) {
		t.Errorf("in-flight bytes peaked at %v, over the budget of %d", peak, cfg.MaxInFlightBytes)
	}
	reopened, _, err := openRegistry(cfg.Registry)
	if err != nil {
		t.Fatal(err)
	}
	ends := map[string]int64{}
	for _, path := range paths {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		ends[path] = fi.Size()
	}
	got := 0
	for _, e := range reopened.entries {
		if want, ok := ends[e.Path]; ok {
			got++
			if e.Offset != want {
				t.Errorf("%s: registry offset %d, want the file's end %d", e.Path, e.Offset, want)
			}
		}
	}
	if got != files {
		t.Errorf("registry holds %d of the %d files", got, files)
	}
}
