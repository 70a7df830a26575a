// Package records makes realistic records, and keeps dead letters, for the
// aggregator's tests and benchmarks.
package records

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicelog/sluice/aggregator/deliver"
	"github.com/sluicelog/sluice/internal/event"
)

// Of encodes n lines of kind as the shipper would put them on
// Kafka, with the fields of the environment/customer/service layout.
func Of(kind string, n int) []*kgo.Record {
	r := rand.New(rand.NewPCG(1, 2))
	fields := map[string]string{"environment": "prod", "customer": "acme", "service": "checkout"}
	if kind == "nginx" {
		fields = map[string]string{"environment": "prod", "service": "edge"}
	}
	ev := event.Event{
		Type: kind, Node: "node-1", Path: "/var/log/app/prod/acme/checkout/app.log",
		FileID: "2049-1234567-1764064800000000000", ReadTime: time.Now(), Fields: fields,
	}
	enc := event.NewEncoder("logs-"+kind, &ev, event.EncodeFields(fields))
	// Clients from a few thousand public addresses: repeated, as real
	// traffic is, so the GeoIP cache sees hits and misses.
	clients := make([]string, 3000)
	for i := range clients {
		clients[i] = fmt.Sprintf("%d.%d.%d.%d", 2+r.IntN(200), r.IntN(256), r.IntN(256), 1+r.IntN(254))
	}
	agents := []string{
		"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36",
		"Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
		"curl/8.5.0",
	}
	paths := []string{"/api/v1/orders", "/api/v1/cart", "/api/v1/users/me", "/static/app.js", "/api/v1/search?q=shoes&page=2"}
	t := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	recs := make([]*kgo.Record, n)
	for i := range recs {
		t = t.Add(time.Duration(r.IntN(50)) * time.Millisecond)
		var line string
		switch kind {
		case "nginx":
			rt := r.Float64() * 0.5
			line = fmt.Sprintf(`10.0.0.7 - - [%s] "GET %s HTTP/1.1" %d %d "https://shop.example.com/" "%s" %.3f %.3f "%s, 10.0.0.7"`,
				t.Format("02/Jan/2006:15:04:05 -0700"), paths[r.IntN(len(paths))], []int{200, 200, 200, 201, 304, 404, 500}[r.IntN(7)],
				r.IntN(50000), agents[r.IntN(len(agents))], rt, rt*0.9, clients[r.IntN(len(clients))])
		default:
			line = fmt.Sprintf(`{"@timestamp":"%s","level":"info","msg":"order placed","id":"x%d","order_id":"A-%07d","user_id":"u-%06d","http_path":"%s","duration_ms":%.1f,"trace_id":"%016x%016x","span_id":"%016x"}`,
				t.Format("2006-01-02T15:04:05.000Z07:00"), i, r.IntN(10_000_000), r.IntN(1_000_000), paths[r.IntN(len(paths))],
				r.Float64()*250, r.Uint64(), r.Uint64(), r.Uint64())
		}
		ev.Offset += int64(len(line) + 1)
		ev.Line = []byte(line)
		recs[i] = enc.Record(&ev)
	}
	return recs
}

// Service is the record of a service line at offset, of service checkout
// in environment prod.
func Service(offset int64, line string) *kgo.Record {
	ev := event.Event{Type: "service", Node: "n1", Path: "/var/log/app.log", FileID: "1-2-3", Offset: offset,
		ReadTime: time.Unix(1764064800, 0), Fields: map[string]string{"service": "checkout", "environment": "prod"},
		Line: []byte(line)}
	return ev.Record("logs-service", event.EncodeFields(ev.Fields))
}

// DeadLetters keeps dead letters in memory (a deliver.DeadLetters).
type DeadLetters struct {
	mu   sync.Mutex
	dead []deliver.DeadLetter
}

// Write keeps dead.
func (m *DeadLetters) Write(_ context.Context, dead []deliver.DeadLetter) error {
	m.mu.Lock()
	m.dead = append(m.dead, dead...)
	m.mu.Unlock()
	return nil
}

// Letters returns the dead letters kept.
func (m *DeadLetters) Letters() []deliver.DeadLetter {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]deliver.DeadLetter(nil), m.dead...)
}
