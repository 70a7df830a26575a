package shipper

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap"
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
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	w := bufio.NewWriter(f)
	for i := range b.N {
		fmt.Fprintf(w, `{"@timestamp":"2026-11-25T10:00:00.000Z","level":"info","service":"checkout","msg":"order placed","id":"x%d","order_id":"A-0000042","user_id":"u-000042","http_path":"/api/v1/orders","duration_ms":12.5,"trace_id":"0123456789abcdef0123456789abcdef","span_id":"0123456789abcdef"}`+"\n", i)
	}
	if err := w.Flush(); err != nil {
		b.Fatal(err)
	}
	f.Close()
	fi, _ := os.Stat(path)
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
