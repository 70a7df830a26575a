package aggregator

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sluicelog/sluice/internal/config"
)

// cityOf makes a stand-in GeoIP database file of size bytes (sparse): the
// memory plan only reads its size.
func cityOf(t *testing.T, size int64) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "city.mmdb")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	f.Close()
	return p
}

// With the defaults and GeoLite2 City's size, everything in flight fits in
// memory_limit's working share, and the Go runtime's limit leaves the
// database and the runtime's own memory out.
func TestMemoryDefaultsFit(t *testing.T) {
	var c Config
	c.GeoIP.City = cityOf(t, 59<<20)
	c.SetDefaults()
	if err := c.validateMemory(); err != nil {
		t.Fatal(err)
	}
	m := c.Memory()
	t.Logf("plan: %+v; bulk_bytes %d, workers %d, cache %d", m, c.Elasticsearch.BulkBytes, c.Elasticsearch.Workers, c.GeoIP.CacheSize)
	if c.MemoryLimit != DefaultMemoryLimit || m.GoLimit != DefaultMemoryLimit-59<<20-runtimeOverhead {
		t.Errorf("memory_limit %d, Go limit %d", c.MemoryLimit, m.GoLimit)
	}
	if need, _ := m.need(&c); need > m.Working {
		t.Errorf("the defaults need %d bytes of %d", need, m.Working)
	}
	if c.Elasticsearch.BulkBytes > 5<<20 || c.Elasticsearch.BulkBytes < 1<<20 {
		t.Errorf("derived bulk_bytes %d", c.Elasticsearch.BulkBytes)
	}
	cc := c.ConsumeConfig()
	if cc.Budget != m.Budget || cc.WaitLimit != m.WaitLimit || m.Budget > (c.Elasticsearch.Workers+2)*c.Elasticsearch.BulkBytes {
		t.Errorf("consume budget %d / %d, plan %+v", cc.Budget, cc.WaitLimit, m)
	}
	// SetDefaults again (sluice aggregate's preflight and New both call
	// it): the derived values now look explicit, and still fit.
	again := c
	again.SetDefaults()
	if again.Memory() != m || again.validateMemory() != nil {
		t.Errorf("defaults twice: %+v", again.Memory())
	}
}

// A larger memory_limit gives the defaults of before it existed, and
// explicit keys are kept.
func TestMemoryLargeLimitAndExplicitKeys(t *testing.T) {
	c := Config{MemoryLimit: 1 << 30}
	c.SetDefaults()
	if c.Elasticsearch.BulkBytes != 5<<20 || c.Memory().FetchBytes != 2<<20 || c.Memory().Budget != 6*5<<20 {
		t.Errorf("1GiB: bulk_bytes %d, plan %+v", c.Elasticsearch.BulkBytes, c.Memory())
	}
	c = Config{}
	c.Elasticsearch.BulkBytes = 1 << 20
	c.Elasticsearch.Workers = 8
	c.SetDefaults()
	if err := c.validateMemory(); err != nil || c.Elasticsearch.BulkBytes != 1<<20 || c.Elasticsearch.Workers != 8 {
		t.Errorf("explicit keys: bulk_bytes %d, workers %d, %v", c.Elasticsearch.BulkBytes, c.Elasticsearch.Workers, err)
	}
}

// Explicit settings that cannot fit are refused at start, with the keys
// named and the memory_limit under which they would fit, which then
// validates.
func TestMemoryMisfitRejected(t *testing.T) {
	var c Config
	c.GeoIP.City = cityOf(t, 59<<20)
	c.Elasticsearch.Workers = 16
	c.Elasticsearch.BulkBytes = 8 << 20
	c.SetDefaults()
	err := c.validateMemory()
	if err == nil {
		t.Fatal("16 workers of 8 MiB accepted in 192 MiB")
	}
	msg := err.Error()
	t.Log(msg)
	for _, key := range []string{"memory_limit", "elasticsearch.workers (16)", "elasticsearch.bulk_bytes (8MiB)"} {
		if !strings.Contains(msg, key) {
			t.Errorf("message does not name %s", key)
		}
	}
	_, fit, ok := strings.Cut(msg, "raise memory_limit to ")
	if !ok {
		t.Fatal("no limit proposed")
	}
	limit, err := config.ParseBytes(strings.Fields(fit)[0][:len(strings.Fields(fit)[0])-1])
	if err != nil {
		t.Fatal(err)
	}
	c.MemoryLimit = limit
	if err := c.validateMemory(); err != nil {
		t.Errorf("the proposed %s: %v", limit, err)
	}

	c = Config{MemoryLimit: 64 << 20}
	c.GeoIP.City = cityOf(t, 59<<20)
	c.SetDefaults()
	if err := c.validateMemory(); err == nil || !strings.Contains(err.Error(), "memory_limit: 64MiB leaves") {
		t.Errorf("64 MiB beside a 59 MiB database: %v", err)
	}
}
