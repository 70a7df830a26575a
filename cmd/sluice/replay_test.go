package main

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicelog/sluice/internal/event"
)

// TestReplayIdleTimeoutFlag replays a topic whose last offset is a
// transaction's commit marker, which no consumer is given: with
// -idle-timeout the command ends, says how many records it replayed, and
// exits 1 naming the partition and the offset it reached. Before, it
// waited for ever.
func TestReplayIdleTimeoutFlag(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test needs Kafka and Elasticsearch")
	}
	p := newPipeline(t)
	topic := p.prefix + "-tx"
	p.stack.CreateTopic(t, topic, 1)
	var recs []*kgo.Record
	for i := range 5 {
		ev := event.Event{Type: "service", Node: "n1", Path: "/var/log/app.log", FileID: "tx", Offset: int64(i * 100),
			ReadTime: time.Now(), Fields: map[string]string{"service": "checkout", "environment": "prod"},
			Line: []byte(fmt.Sprintf(`{"msg":"tx","id":"%d"}`, i))}
		recs = append(recs, ev.Record(topic, event.EncodeFields(ev.Fields)))
	}
	p.stack.ProduceTransaction(t, topic, recs...)
	var stdout, stderr strings.Builder
	start := time.Now()
	code := run([]string{"replay", "-c", p.aggCfg, "-topic", topic, "-idle-timeout", "2s"}, &stdout, &stderr)
	if code != 1 {
		t.Fatalf("sluice replay exited %d, want 1: %s%s", code, stdout.String(), stderr.String())
	}
	if took := time.Since(start); took > 30*time.Second {
		t.Errorf("replay took %s to give up", took)
	}
	if !strings.Contains(stdout.String(), "replayed 5 records") {
		t.Errorf("stdout %q does not say the 5 records replayed", stdout.String())
	}
	if !strings.Contains(stderr.String(), "for 2s; stopped before the end of partition 0 (read to offset 5 of 6)") {
		t.Errorf("stderr %q does not say what was not reached", stderr.String())
	}
	if n := p.stack.WaitCount(t, p.indexPattern, 5, 30*time.Second); n != 5 {
		t.Errorf("%d documents indexed, want 5", n)
	}
}
