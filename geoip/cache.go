package geoip

import (
	"encoding/binary"
	"net/netip"
	"sync"
)

// A cache has up to maxShards shards, each with at least minShardEntries
// entries per generation, so that small caches stay close to their size.
const (
	maxShards       = 16
	minShardEntries = 256
)

// cache remembers lookup results, negative ones (nil) included. It is
// split into shards by address hash, each with its own lock, so that
// concurrent lookups rarely wait for each other.
type cache struct {
	shards []cacheShard
	mask   uint64
}

// cacheShard approximates LRU with two generations: when the current map
// is full it becomes the previous one and a new one starts; a hit in the
// previous generation is carried over to the current one. Entries not used
// for a generation are dropped wholesale, without per-entry bookkeeping.
type cacheShard struct {
	mu        sync.Mutex
	max       int // entries per generation
	cur, prev map[netip.Addr]*Result
	_         [64]byte // keeps shards' locks off each other's cache lines
}

// newCache returns a cache of about size entries; size 0 caches nothing.
func newCache(size int) *cache {
	n := 1
	for n < maxShards && size/(4*n) >= minShardEntries {
		n *= 2
	}
	c := &cache{shards: make([]cacheShard, n), mask: uint64(n - 1)}
	perGen := size / (2 * n) // the two generations hold size
	if size > 0 {
		perGen = max(perGen, 1)
	}
	for i := range c.shards {
		c.shards[i].max = perGen
	}
	return c
}

func (c *cache) shard(a netip.Addr) *cacheShard {
	b := a.As16()
	h := binary.LittleEndian.Uint64(b[:8])*0x9e3779b97f4a7c15 ^ binary.LittleEndian.Uint64(b[8:])
	h *= 0xff51afd7ed558ccd
	return &c.shards[(h^h>>32)&c.mask]
}

// get returns the cached result for a (nil: known to be absent) and
// whether there was one.
func (c *cache) get(a netip.Addr) (*Result, bool) {
	s := c.shard(a)
	s.mu.Lock()
	defer s.mu.Unlock()
	if r, ok := s.cur[a]; ok {
		return r, true
	}
	if r, ok := s.prev[a]; ok {
		s.putLocked(a, r)
		return r, true
	}
	return nil, false
}

func (c *cache) put(a netip.Addr, r *Result) {
	s := c.shard(a)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.putLocked(a, r)
}

func (s *cacheShard) putLocked(a netip.Addr, r *Result) {
	if s.max == 0 {
		return
	}
	if len(s.cur) >= s.max {
		s.prev, s.cur = s.cur, nil
	}
	if s.cur == nil {
		s.cur = make(map[netip.Addr]*Result, s.max)
	}
	s.cur[a] = r
}

// len returns the number of entries, for tests.
func (c *cache) len() int {
	n := 0
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		n += len(s.cur) + len(s.prev)
		s.mu.Unlock()
	}
	return n
}
