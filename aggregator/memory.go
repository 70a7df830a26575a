package aggregator

import (
	"fmt"
	"os"
	"strings"

	"github.com/sluicelog/sluice/geoip"
	"github.com/sluicelog/sluice/internal/config"
)

// DefaultMemoryLimit is memory_limit's default: under 200 MiB of RSS with
// the GeoLite2 City database, at the throughput of the defaults before
// there was a limit (benchmarks/RESULTS.md).
const DefaultMemoryLimit = 192 << 20

// Memory is how memory_limit is divided. Everything the aggregator holds
// in proportion to its work derives from one number:
//
//	heap    = memory_limit - GeoIP databases - runtimeOverhead
//	working = heap / 2 (the collector lets the heap grow to twice what
//	          is live before it collects; heap is its soft limit)
//
// and working is shared: a quarter for Kafka fetches (FetchBytes, of
// which two may be buffered, and each holds about eight times its
// compressed size once decompressed into records), half for the records
// of uncommitted polls (Budget) with their documents (a record costs
// about its size again in bookkeeping, and its encoded document about
// four times its size until delivered), and a quarter for the bodies of
// bulk requests ((workers+1) x bulk_bytes: those in flight and the one
// being filled). The documents waiting for a failing index (WaitLimit)
// and the GeoIP cache take a sixteenth each, from the slack of the
// others: while documents wait, fewer requests are in flight. Explicit
// keys are kept; a combination that cannot fit is refused by Validate.
type Memory struct {
	// Limit is memory_limit.
	Limit int64
	// Databases is the GeoIP databases' size: their files, loaded into
	// memory outside the Go heap.
	Databases int64
	// GoLimit is the Go runtime's soft memory limit (debug.SetMemoryLimit).
	GoLimit int64
	// Working is the memory the work in flight may hold.
	Working int64
	// FetchBytes is the most a Kafka fetch returns (compressed), and the
	// most of one partition in it.
	FetchBytes int
	// Budget is the bytes of uncommitted records above which the poll
	// loop waits; WaitLimit those of records waiting for a failing index
	// above which their partitions are paused.
	Budget, WaitLimit int
}

const (
	// runtimeOverhead is RSS outside the Go runtime's accounting: the
	// binary's text and data, and the C library's.
	runtimeOverhead = 16 << 20
	// fetchCost is what a buffered fetch holds per byte it fetched:
	// two fetches, each decompressed into records (logs compress about
	// 5x), with the records' bookkeeping.
	fetchCost = 16
	// recordCost is what an uncommitted record holds per byte of it: its
	// bookkeeping, and its encoded document until delivered.
	recordCost = 6
	// cacheEntryBytes is about what one GeoIP cache entry holds.
	cacheEntryBytes = 512
	// maxFetchBytes is the fetch size before memory_limit: larger
	// fetches were no faster.
	maxFetchBytes = 2 << 20
	// defaultBulkBytes is elasticsearch.bulk_bytes at most, by default:
	// larger requests were no faster.
	defaultBulkBytes = 5 << 20
)

// geoipBytes is the size of the configured GeoIP databases' files; a file
// that cannot be read counts 0 (GeoIP reports it).
func geoipBytes(c geoip.Config) int64 {
	var n int64
	for _, p := range []string{c.City, c.ASN} {
		if p == "" {
			continue
		}
		if fi, err := os.Stat(p); err == nil {
			n += fi.Size()
		}
	}
	return n
}

// setMemoryDefaults fills memory_limit and what derives from it that is
// not set: elasticsearch.bulk_bytes and geoip.cache_size. Before the
// other defaults, so that a zero still means "not set".
func (c *Config) setMemoryDefaults() {
	if c.MemoryLimit == 0 {
		c.MemoryLimit = DefaultMemoryLimit
	}
	working := workingBytes(int64(c.MemoryLimit), geoipBytes(c.GeoIP))
	if working <= 0 {
		return // Validate says why
	}
	workers := c.Elasticsearch.Workers
	if workers == 0 {
		workers = 4
	}
	if c.Elasticsearch.BulkBytes == 0 {
		bb := min(defaultBulkBytes, working/4/int64(workers+1))
		c.Elasticsearch.BulkBytes = max(int(bb)&^(64<<10-1), 64<<10)
	}
	if c.GeoIP.CacheSize == 0 && c.GeoIP.Enabled() {
		c.GeoIP.CacheSize = max(int(min(geoip.DefaultCacheSize, working/16/cacheEntryBytes)), 1)
	}
}

// workingBytes is the memory the work in flight may hold under limit,
// besides databases.
func workingBytes(limit, databases int64) int64 {
	return (limit - databases - runtimeOverhead) / 2
}

// Memory is how memory_limit divides under c's settings. Call SetDefaults
// first.
func (c *Config) Memory() Memory {
	m := Memory{Limit: int64(c.MemoryLimit), Databases: geoipBytes(c.GeoIP)}
	m.GoLimit = m.Limit - m.Databases - runtimeOverhead
	m.Working = m.GoLimit / 2
	es := c.Elasticsearch
	m.FetchBytes = int(max(min(maxFetchBytes, m.Working/4/fetchCost), 64<<10))
	// The poll loop needs records for every worker's request, the one
	// being filled and one more: (workers+2) x bulk_bytes of records is
	// plenty, as a document is larger than its record (about four times
	// in benchmarks/aggregate.sh: Budget is about what they need).
	m.Budget = int(max(min(int64((es.Workers+2)*es.BulkBytes), m.Working/2/recordCost), 64<<10))
	m.WaitLimit = int(max(min(int64(m.Budget), m.Working/16/recordCost), 64<<10))
	return m
}

// need is what c's settings hold at most in flight, besides the waiting
// room and the GeoIP cache (from the others' slack), with the keys that
// take more than their share named.
func (m Memory) need(c *Config) (int64, []string) {
	es := c.Elasticsearch
	requests := int64(es.Workers+1) * int64(es.BulkBytes)
	var keys []string
	if requests > m.Working/4 {
		keys = append(keys, fmt.Sprintf("(elasticsearch.workers (%d) + 1) × elasticsearch.bulk_bytes (%s)", es.Workers, config.Bytes(es.BulkBytes)))
	}
	need := requests + int64(m.FetchBytes)*fetchCost + int64(m.Budget)*recordCost
	if cache := int64(c.GeoIP.CacheSize) * cacheEntryBytes; c.GeoIP.Enabled() && cache > m.Working/16 {
		keys = append(keys, fmt.Sprintf("geoip.cache_size (%d)", c.GeoIP.CacheSize))
		need += cache - m.Working/16
	}
	return need, keys
}

// validateMemory refuses a memory_limit too small for the GeoIP databases,
// or explicit settings that do not fit in it.
func (c *Config) validateMemory() error {
	m := c.Memory()
	if m.Working < 8<<20 {
		least := (m.Databases + runtimeOverhead + 16<<20 + 1<<20 - 1) &^ (1<<20 - 1)
		return config.Errorf("memory_limit", "%s leaves %d MiB for the work in flight after the GeoIP databases (%d MiB) and %d MiB of runtime: too little; raise it to at least %s",
			config.Bytes(m.Limit), max(m.Working, 0)>>20, m.Databases>>20, runtimeOverhead>>20, config.Bytes(least))
	}
	need, keys := m.need(c)
	if need <= m.Working || len(keys) == 0 {
		return nil
	}
	// The smallest limit, in steps of 8 MiB, under which these settings fit.
	fit := *c
	for fit.MemoryLimit = c.MemoryLimit; ; fit.MemoryLimit += 8 << 20 {
		if n, _ := fit.Memory().need(&fit); n <= fit.Memory().Working {
			break
		}
	}
	return config.Errorf("memory_limit", "%s does not fit %s: %d MiB of work in flight, %d MiB available after the GeoIP databases and the collector's headroom; raise memory_limit to %s, or lower those keys, or remove them to have them derived from memory_limit",
		config.Bytes(m.Limit), strings.Join(keys, " and "), need>>20, m.Working>>20, fit.MemoryLimit)
}
