package shipper

import (
	"testing"
	"time"
)

// TestSpreadOverProducers ships one busy file through two producers with
// spread partitioning: every line arrives once, over several partitions.
func TestSpreadOverProducers(t *testing.T) {
	h := newHarness(t, func(c *Config) {
		c.Kafka.Partitions = 6
		c.Kafka.Producers = 2
		c.Kafka.Partitioning = PartitionSpread
	})
	const total = 30000
	writeLines(t, h.path("app.log"), "s", 0, total)
	h.start()
	recs := h.records(total, time.Minute)
	if dups := h.assertIDs(recs, "s", total); dups != 0 {
		t.Errorf("%d duplicates without any failure", dups)
	}
	partitions := map[int32]int{}
	for _, r := range recs {
		partitions[r.Partition]++
	}
	if len(partitions) < 2 {
		t.Errorf("records in partitions %v; spread should use several", partitions)
	}
}
