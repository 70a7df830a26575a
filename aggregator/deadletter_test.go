package aggregator

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap/zaptest"

	"github.com/sluicelog/sluice/aggregator/deliver"
	"github.com/sluicelog/sluice/internal/event"
	"github.com/sluicelog/sluice/internal/testenv"
)

// TestOversizeDeadLetters writes dead letters larger than Kafka's default
// 1 MiB into the real Kafka: into the dead-letter topic the aggregator
// creates they arrive whole; into one made beforehand with a 64 KiB
// max.message.bytes, the one over it arrives cut to fit and flagged
// truncated, and a small one beside it whole. Before, such a dead letter
// was refused forever and held up its partition's commits.
func TestOversizeDeadLetters(t *testing.T) {
	stack := testenv.Kafka(t) // kfake under -short
	tests := []struct {
		name     string
		preMade  string // max.message.bytes of a topic made beforehand; "" to let the aggregator make it
		big      int
		wantBig  func(n int) bool
		wantFlag bool
	}{
		{"topic the aggregator makes", "", 3 << 20, func(n int) bool { return n == 3<<20 }, false},
		{"topic made beforehand with 64 KiB", "65536", 200 << 10, func(n int) bool { return n < 64<<10 && n > 32<<10 }, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			topic := testenv.Name(t, "dead")
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			if tt.preMade != "" {
				resp, err := kadm.NewClient(stack.Client(t)).CreateTopic(ctx, 1, 1, map[string]*string{"max.message.bytes": &tt.preMade}, topic)
				if err == nil {
					err = resp.Err
				}
				if err != nil {
					t.Fatal(err)
				}
			}
			var cfg Config
			cfg.SetDefaults()
			cfg.Kafka.Brokers = []string{stack.Broker}
			cfg.Kafka.DeadLetterTopic = topic
			a, err := newAggregator(cfg, prometheus.NewRegistry(), zaptest.NewLogger(t), false)
			if err != nil {
				t.Fatal(err)
			}
			defer a.client.Close()
			if err := a.dead.Prepare(ctx); err != nil {
				t.Fatal(err)
			}
			source := func(value string) *kgo.Record {
				return &kgo.Record{Topic: "logs-service", Value: []byte(value),
					Headers: []kgo.RecordHeader{{Key: event.HeaderType, Value: []byte("service")}}}
			}
			dead := []deliver.DeadLetter{
				{Record: source(incompressible(tt.big)), Status: 400, Reason: "too many fields", Index: "logs"},
				{Record: source("small"), Status: 400, Reason: "too many fields", Index: "logs"},
			}
			if err := a.dead.Write(ctx, dead); err != nil {
				t.Fatal(err)
			}
			got := stack.ReadTopic(t, topic, 2, 30*time.Second)
			sizes := map[bool]*kgo.Record{}
			for _, r := range got {
				sizes[string(r.Value) == "small"] = r
			}
			big, small := sizes[false], sizes[true]
			if big == nil || small == nil {
				t.Fatalf("got %d dead letters, want the big and the small one", len(got))
			}
			if !tt.wantBig(len(big.Value)) || flagged(big) != tt.wantFlag {
				t.Errorf("the %d-byte dead letter arrived with %d bytes, flagged truncated: %v", tt.big, len(big.Value), flagged(big))
			}
			if flagged(small) {
				t.Errorf("the small dead letter was flagged truncated")
			}
		})
	}
}

// incompressible returns n bytes of hex digits of random bytes: the
// client's compression cannot hide their size from the broker.
func incompressible(n int) string {
	b := make([]byte, (n+1)/2)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)[:n]
}

// flagged reports whether r's flags header holds truncated.
func flagged(r *kgo.Record) bool {
	for _, h := range r.Headers {
		if h.Key == event.HeaderFlags {
			return strings.Contains(","+string(h.Value)+",", ","+event.FlagTruncated+",")
		}
	}
	return false
}
