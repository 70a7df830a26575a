package event

import (
	"sync"
	"sync/atomic"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Block is memory an Encoder builds records in: the bytes of their values
// and header values, the Record structs and their header lists. Records
// cost a fraction of an allocation this way, and a Block from a BlockPool
// is used again once every holder released it, so that shipping a file
// makes almost no garbage for the collector.
//
// A Block counts its holders: the Encoder building in it is one; whoever
// keeps its records until they are acknowledged holds it too (Hold) and
// releases it afterwards (Release). Nothing may touch a record or its bytes
// after releasing the block they were built in.
type Block struct {
	arena   []byte
	recs    []kgo.Record
	headers []kgo.RecordHeader
	// usedRecs and usedHeaders are how many of recs and headers are taken.
	usedRecs, usedHeaders int
	refs                  atomic.Int32
	pool                  *sync.Pool // nil: not recycled
	class                 int
}

// Block size classes: a block of class k holds classRecords[k] records and
// their bytes, about recordBytes each. An Encoder starts small and takes a
// larger block each time one fills, so that a quiet file holds a few KiB
// and a busy one fills a block per few hundred lines.
var classRecords = [...]int{4, 16, 64, 256}

const (
	// recordBytes is the arena a block keeps per record: a ~300-byte line
	// and its header values.
	recordBytes = 384
	// headersPerRecord is the header slots a block keeps per record: the
	// five static ones, offset, time and fields.
	headersPerRecord = 8
	// maxArenaValue is the longest value built in a block; a longer one
	// gets an allocation of its own.
	maxArenaValue = 16 << 10
)

func arenaBytes(class int) int { return classRecords[class] * recordBytes }

// BlockPool recycles Blocks. The zero value is not ready; use NewBlockPool.
// It is safe for concurrent use.
type BlockPool struct {
	classes [len(classRecords)]sync.Pool
}

// NewBlockPool returns an empty pool.
func NewBlockPool() *BlockPool {
	p := &BlockPool{}
	for k := range p.classes {
		p.classes[k].New = func() any { return newBlock(k, 0, 0) }
	}
	return p
}

// newBlock makes a block of class k, its arena at least arena bytes and
// its header list at least headers long.
func newBlock(k, arena, headers int) *Block {
	n := classRecords[k]
	return &Block{
		arena:   make([]byte, 0, max(arenaBytes(k), arena)),
		recs:    make([]kgo.Record, n),
		headers: make([]kgo.RecordHeader, max(n*headersPerRecord, headers)),
		class:   k,
	}
}

// get returns a block of class k held once, from the pool when there is one.
func (p *BlockPool) get(k int) *Block {
	var b *Block
	if p == nil {
		b = newBlock(k, 0, 0)
	} else {
		b = p.classes[k].Get().(*Block)
		b.pool = &p.classes[k]
	}
	b.refs.Store(1)
	return b
}

// Hold adds a holder: the block is not used again before a matching Release.
func (b *Block) Hold() { b.refs.Add(1) }

// Release drops a holder. The last one returns the block to its pool.
func (b *Block) Release() {
	n := b.refs.Add(-1)
	if n < 0 {
		panic("event: Block released more often than held")
	}
	if n == 0 && b.pool != nil {
		b.arena = b.arena[:0]
		b.usedRecs, b.usedHeaders = 0, 0
		b.pool.Put(b)
	}
}

// fits reports whether the block has room for a record with arena bytes
// and headers header slots.
func (b *Block) fits(arena, headers int) bool {
	return b.usedRecs < len(b.recs) && len(b.headers)-b.usedHeaders >= headers && cap(b.arena)-len(b.arena) >= arena
}

// record returns a free record and n free header slots; the block must
// have room (fits).
func (b *Block) record(n int) (*kgo.Record, []kgo.RecordHeader) {
	r := &b.recs[b.usedRecs]
	b.usedRecs++
	h := b.headers[b.usedHeaders : b.usedHeaders : b.usedHeaders+n]
	b.usedHeaders += n
	return r, h
}

// alloc returns n bytes of the arena, capped so that appending to them
// cannot overwrite what follows; the block must have room (fits).
func (b *Block) alloc(n int) []byte {
	start := len(b.arena)
	b.arena = b.arena[:start+n]
	return b.arena[start : start+n : start+n]
}
