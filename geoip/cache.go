package geoip

import (
	"net/netip"
	"sync"
)

// cache remembers lookups, found or not. It keeps two generations: when the
// current one is full it becomes the previous one and a new one starts, and
// a hit in the previous one is carried over. That approximates LRU at the
// cost of one map lookup more on a miss, without per-entry bookkeeping.
type cache struct {
	mu        sync.Mutex
	max       int
	cur, prev map[netip.Addr]Result
}

func newCache(size int) *cache {
	return &cache{max: max(size/2, 1), cur: map[netip.Addr]Result{}}
}

func (c *cache) get(a netip.Addr) (Result, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if r, ok := c.cur[a]; ok {
		return r, true
	}
	if r, ok := c.prev[a]; ok {
		c.putLocked(a, r)
		return r, true
	}
	return Result{}, false
}

func (c *cache) put(a netip.Addr, r Result) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.putLocked(a, r)
}

func (c *cache) putLocked(a netip.Addr, r Result) {
	if len(c.cur) >= c.max {
		c.prev, c.cur = c.cur, make(map[netip.Addr]Result, c.max)
	}
	c.cur[a] = r
}
