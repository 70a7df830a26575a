package useragent

// lru maps user agent strings to their Agent, holding at most max: adding
// to a full cache drops the least recently used entry. Entries are kept in
// one slice, linked by position into a ring in order of use (head is the
// most recent), so that the cache allocates nothing once full.
type lru struct {
	max     int
	index   map[string]int32 // position in entries
	entries []lruEntry
	head    int32 // most recently used; -1 while empty
}

type lruEntry struct {
	key        string
	agent      *Agent
	prev, next int32 // prev is more recent, next less; the ring closes at head
}

func newLRU(max int) *lru {
	return &lru{max: max, index: make(map[string]int32, max), head: -1}
}

// get returns the Agent of key and marks it most recently used.
func (c *lru) get(key string) (*Agent, bool) {
	i, ok := c.index[key]
	if !ok {
		return nil, false
	}
	c.touch(i)
	return c.entries[i].agent, true
}

// add stores the Agent of key, which is not in the cache.
func (c *lru) add(key string, a *Agent) {
	if len(c.entries) < c.max {
		i := int32(len(c.entries))
		c.entries = append(c.entries, lruEntry{key: key, agent: a, prev: i, next: i})
		c.index[key] = i
		c.link(i)
		return
	}
	// Full: the least recently used entry, the head's prev, is reused and
	// becomes the head.
	i := c.entries[c.head].prev
	e := &c.entries[i]
	delete(c.index, e.key)
	e.key, e.agent = key, a
	c.index[key] = i
	c.head = i
}

// touch makes entry i the most recently used.
func (c *lru) touch(i int32) {
	if i == c.head {
		return
	}
	e := &c.entries[i]
	c.entries[e.prev].next = e.next
	c.entries[e.next].prev = e.prev
	c.link(i)
}

// link puts the unlinked entry i at the head of the ring.
func (c *lru) link(i int32) {
	e := &c.entries[i]
	if c.head < 0 {
		e.prev, e.next, c.head = i, i, i
		return
	}
	h := &c.entries[c.head]
	tail := h.prev
	e.next, e.prev = c.head, tail
	c.entries[tail].next = i
	h.prev = i
	c.head = i
}

// len returns the number of entries.
func (c *lru) len() int { return len(c.entries) }
