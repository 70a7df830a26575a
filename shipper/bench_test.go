package shipper

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap"
	"golang.org/x/sync/semaphore"

	"github.com/sluicelog/sluice/internal/event"
	"github.com/sluicelog/sluice/internal/testenv"
)

// nullPublisher acknowledges every record at once.
type nullPublisher struct{ n atomic.Int64 }

func (p *nullPublisher) Prepare(context.Context, string) error { return nil }
func (p *nullPublisher) Close(context.Context) error           { return nil }
func (p *nullPublisher) Publish(_ context.Context, _ *kgo.Record, acked func()) error {
	acked()
	p.n.Add(1)
	return nil
}

// BenchmarkShipPath measures the shipper's own cost per line on the way to
// Kafka, without Kafka: read the line, build its record (headers and all),
// publish, take the acknowledgement and move the registry offset.
func BenchmarkShipPath(b *testing.B) {
	dir := b.TempDir()
	path := filepath.Join(dir, "app.log")
	fi := writeBenchLines(b, path, b.N, func(w io.Writer, i int) {
		fmt.Fprintf(w, `{"@timestamp":"2026-11-25T10:00:00.000Z","level":"info","service":"checkout","msg":"order placed","id":"x%d","order_id":"A-0000042","user_id":"u-000042","http_path":"/api/v1/orders","duration_ms":12.5,"trace_id":"0123456789abcdef0123456789abcdef","span_id":"0123456789abcdef"}`+"\n", i)
	})
	cfg := Config{
		Node: "bench", Registry: filepath.Join(dir, "registry"),
		Inputs:       []InputConfig{{Type: "service", Paths: []string{path}, Fields: map[string]string{"environment": "prod"}}},
		ScanInterval: 10 * time.Millisecond,
	}
	pub := &nullPublisher{}
	sh, err := New(cfg, prometheus.NewRegistry(), zap.NewNop(), WithPublisher(pub))
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(fi.Size() / int64(b.N))
	b.ReportAllocs()
	b.ResetTimer()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- sh.Run(ctx) }()
	for pub.n.Load() < int64(b.N) {
		time.Sleep(time.Millisecond)
	}
	b.StopTimer()
	cancel()
	if err := <-done; err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "lines/s")
}

// writeBenchLines writes n lines, each by line, to a new file at path.
func writeBenchLines(b *testing.B, path string, n int, line func(w io.Writer, i int)) os.FileInfo {
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	w := bufio.NewWriter(f)
	for i := range n {
		line(w, i)
	}
	if err := w.Flush(); err != nil {
		b.Fatal(err)
	}
	f.Close()
	fi, err := os.Stat(path)
	if err != nil {
		b.Fatal(err)
	}
	return fi
}

// BenchmarkProduce measures the produce path into the real Kafka (started
// like the integration tests' by internal/testenv): the lines of one file
// built into records by the encoder, produced by the shipper's producer with
// its defaults (zstd, acks from all in-sync replicas, idempotence, 1 MiB
// batches, linger 5 ms), acknowledged in bursts that hold their record
// blocks, as the harvester does; the clock stops at the last
// acknowledgement.
func BenchmarkProduce(b *testing.B) {
	stack := testenv.Start(b)
	cfg := Config{Kafka: KafkaConfig{Brokers: []string{stack.Broker}, Topic: testenv.Name(b, "produce"), Partitions: 1}}
	cfg.SetDefaults()
	log := zap.NewNop()
	p, err := newProducer(cfg.Kafka, 4<<20, log, newMetrics(prometheus.NewRegistry()))
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	defer p.Close(ctx)
	if err := p.Prepare(ctx, cfg.Kafka.Topic); err != nil {
		b.Fatal(err)
	}
	line := []byte(`{"@timestamp":"2026-11-25T10:00:00.000Z","level":"info","service":"checkout","msg":"order placed","order_id":"A-0000042","user_id":"u-000042","http_path":"/api/v1/orders","duration_ms":12.5,"trace_id":"0123456789abcdef0123456789abcdef","span_id":"0123456789abcdef"}`)
	ev := event.Event{Type: "service", Node: "bench", Path: "/var/log/app.log", FileID: "bench-file",
		ReadTime: time.Now(), Fields: map[string]string{"environment": "prod"}}
	enc := event.NewPooledEncoder(cfg.Kafka.Topic, &ev, event.EncodeFields(ev.Fields), event.NewBlockPool())
	// A burst of readBurst lines holds its blocks until its last ack, and
	// at most 4 MiB (the default budget) of bursts are in flight.
	const burstLines = readBurst
	inFlight := semaphore.NewWeighted(int64(4<<20/(burstLines*(len(line)+recordOverhead)) + 1))
	var wg sync.WaitGroup
	b.SetBytes(int64(len(line) + 1))
	b.ReportAllocs()
	b.ResetTimer()
	for start := 0; start < b.N; start += burstLines {
		if err := inFlight.Acquire(ctx, 1); err != nil {
			b.Fatal(err)
		}
		n := min(burstLines, b.N-start)
		var pending atomic.Int64
		pending.Store(1) // the burst is open
		var blocks []*event.Block
		acked := func() {
			if pending.Add(-1) == 0 {
				for _, blk := range blocks {
					blk.Release()
				}
				inFlight.Release(1)
				wg.Done()
			}
		}
		wg.Add(1)
		for i := range n {
			ev.Offset = int64(start+i) * int64(len(line)+1)
			ev.Line = line
			rec := enc.Record(&ev)
			if blk := enc.Block(); len(blocks) == 0 || blocks[len(blocks)-1] != blk {
				blk.Hold()
				blocks = append(blocks, blk)
			}
			pending.Add(1)
			if err := p.Publish(ctx, rec, acked); err != nil {
				b.Fatal(err)
			}
		}
		acked() // closed
	}
	wg.Wait()
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "lines/s")
}
