package geoip

import (
	"fmt"
	"net/netip"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

func addrN(i int) netip.Addr {
	return netip.AddrFrom4([4]byte{81, byte(i >> 16), byte(i >> 8), byte(i)})
}

func TestCacheShards(t *testing.T) {
	tests := []struct{ size, shards, perGen int }{
		{0, 1, 0},
		{1, 1, 1},
		{4, 1, 2},
		{1000, 1, 500},
		{1024, 2, 256},
		{10000, 16, 312},
		{1 << 20, 16, 1 << 15},
	}
	for _, tt := range tests {
		c := newCache(tt.size)
		if len(c.shards) != tt.shards || c.shards[0].max != tt.perGen {
			t.Errorf("newCache(%d): %d shards of %d per generation, want %d of %d",
				tt.size, len(c.shards), c.shards[0].max, tt.shards, tt.perGen)
		}
	}
}

func TestCacheGenerations(t *testing.T) {
	c := newCache(4) // one shard, two generations of 2
	r := &Result{CityName: "x"}
	c.put(addrN(1), r)
	c.put(addrN(2), nil) // negative results are cached too
	if got, ok := c.get(addrN(1)); !ok || got != r {
		t.Errorf("get(1) = %v, %v", got, ok)
	}
	if got, ok := c.get(addrN(2)); !ok || got != nil {
		t.Errorf("get(2) = %v, %v; want a cached miss", got, ok)
	}
	c.put(addrN(3), r) // 1 and 2 move to the previous generation
	if _, ok := c.get(addrN(1)); !ok {
		t.Error("1 was dropped, though in the previous generation")
	}
	// Reading 1 carried it into the current generation (3, 1); the next
	// insertion retires 2, which has not been used since.
	c.put(addrN(4), r)
	c.put(addrN(5), r)
	if _, ok := c.get(addrN(2)); ok {
		t.Error("2 is still cached after two generations unused")
	}
	for _, i := range []int{1, 4, 5} {
		if _, ok := c.get(addrN(i)); !ok {
			t.Errorf("%d was dropped", i)
		}
	}
	if n := c.len(); n > 4 {
		t.Errorf("cache holds %d entries, more than its size 4", n)
	}
}

func TestCacheBounded(t *testing.T) {
	for _, size := range []int{0, 3, 1000, 10000} {
		c := newCache(size)
		for i := range 5 * size {
			c.put(addrN(i), nil)
		}
		if n := c.len(); n > size {
			t.Errorf("cache of size %d holds %d entries", size, n)
		}
		if size > 0 {
			if _, ok := c.get(addrN(5*size - 1)); !ok {
				t.Errorf("cache of size %d lost the latest entry", size)
			}
		}
	}
}

func TestCacheConcurrent(t *testing.T) {
	c := newCache(512)
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := range 2000 {
				a := addrN(i % 700)
				if r, ok := c.get(a); ok && r != nil && r.CityName != fmt.Sprint(i%700) {
					t.Errorf("worker %d: %s -> %q", w, a, r.CityName)
					return
				}
				c.put(a, &Result{CityName: fmt.Sprint(i % 700)})
			}
		})
	}
	wg.Wait()
}

func TestEnricherCache(t *testing.T) {
	city, _ := testDBs(t)
	e, _ := open(t, Config{City: city, CacheSize: 100})
	hit, miss := netip.MustParseAddr("81.2.69.3"), netip.MustParseAddr("8.8.4.4")
	for range 3 {
		if r, ok := e.Lookup(hit); !ok || r.CityName != "London" {
			t.Fatalf("Lookup(%s) = %+v, %v", hit, r, ok)
		}
		if _, ok := e.Lookup(miss); ok {
			t.Fatalf("Lookup(%s) found something", miss)
		}
		e.Lookup(netip.MustParseAddr("10.0.0.1")) // skipped: never cached
	}
	checks := []struct {
		name string
		got  float64
		want float64
	}{
		{"cache_hits_total", testutil.ToFloat64(e.m.cacheHits), 4},
		{`lookups_total{result="hit"}`, testutil.ToFloat64(e.m.hits), 3},
		{`lookups_total{result="miss"}`, testutil.ToFloat64(e.m.misses), 3},
		{`lookups_total{result="skipped"}`, testutil.ToFloat64(e.m.skipped), 3},
		{`lookups_total{result="error"}`, testutil.ToFloat64(e.m.errors), 0},
		{"cache entries", float64(e.gen.Load().cache.len()), 2},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
}
