package shipper

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap"

	"github.com/sluicelog/sluice/internal/event"
)

// TestCutToFit checks how a record refused as too large for its topic is
// cut: under the topic's limit with its headers, flagged truncated once,
// its other headers kept; a record already under the limit (its batch was
// refused, not it) is not cut.
func TestCutToFit(t *testing.T) {
	const limit = 8 << 10
	p := &producer{cfg: KafkaConfig{BatchBytes: 1 << 20}, log: zap.NewNop(),
		metrics: newMetrics(prometheus.NewRegistry()), topics: map[string]int32{"small": limit}}
	base := []kgo.RecordHeader{{Key: event.HeaderType, Value: []byte("service")}, {Key: event.HeaderOffset, Value: []byte("42")}}
	tests := []struct {
		name      string
		topic     string
		value     int
		flags     string // "" for no flags header
		cut       bool
		wantFlags string
	}{
		{"over the limit", "small", 20 << 10, "", true, "truncated"},
		{"over, with other flags", "small", 20 << 10, "unterminated", true, "unterminated,truncated"},
		{"over, already cut at max_line_bytes", "small", 20 << 10, "truncated", true, "truncated"},
		{"under the limit", "small", 4 << 10, "", false, ""},
		{"topic at kafka.batch_bytes", "big", 20 << 10, "", false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			headers := append([]kgo.RecordHeader(nil), base...)
			if tt.flags != "" {
				headers = append(headers, kgo.RecordHeader{Key: event.HeaderFlags, Value: []byte(tt.flags)})
			}
			r := &kgo.Record{Topic: tt.topic, Key: []byte("file-1"), Value: []byte(strings.Repeat("x", tt.value)), Headers: headers}
			got, ok := p.cutToFit(r)
			if ok != tt.cut {
				t.Fatalf("cut = %v, want %v", ok, tt.cut)
			}
			if !ok {
				return
			}
			size := len(got.Key) + len(got.Value)
			var flags string
			for _, h := range got.Headers {
				size += len(h.Key) + len(h.Value)
				if h.Key == event.HeaderFlags {
					flags = string(h.Value)
				}
			}
			if size > limit-512 || len(got.Value) < limit/2 {
				t.Errorf("cut record is %d bytes (value %d), want under the %d limit and most of it", size, len(got.Value), limit)
			}
			if flags != tt.wantFlags {
				t.Errorf("flags %q, want %q", flags, tt.wantFlags)
			}
			if len(got.Headers) < len(base) || string(got.Headers[1].Value) != "42" {
				t.Errorf("headers %v lost the originals", got.Headers)
			}
			if string(r.Headers[len(r.Headers)-1].Value) != tt.flags && tt.flags != "" {
				t.Errorf("the refused record's own flags header changed to %q", r.Headers[len(r.Headers)-1].Value)
			}
		})
	}
	if got := testutil.ToFloat64(p.metrics.linesCut.WithLabelValues("service")); got != 2 {
		t.Errorf("sluice_shipper_lines_truncated_total = %v, want 2 (a line already cut is counted once)", got)
	}
}
