package parser

import (
	"bytes"
	"encoding/json"
	"hash/maphash"
	"iter"
	"maps"
	"slices"
)

// Doc is one Elasticsearch document under construction: fields keyed by
// ECS names in dotted form ("source.ip"), with values of the types the
// package documentation lists. Setting a field that is there replaces its
// value. Fields are kept in the order they were first set, except that
// deleting one may move the last field into its place; the order means
// nothing to Elasticsearch.
//
// A Doc is a slice of fields with a hash index, not a map: building,
// reading and encoding documents is much of what the aggregator does, and
// a slice is cheaper to fill, walk and reuse. The zero Doc is empty and
// ready to use. A Doc is not safe for concurrent use.
type Doc struct {
	fields []Field
	// index finds fields by key once there have been more than
	// linearFields (before that, comparing keys in turn is faster than
	// hashing). It is open addressing with linear probing: each used slot
	// holds a field's position plus one, 0 marks a free slot. Its length
	// is a power of two at least twice the number of fields.
	index   []int32
	indexed bool
	// values holds values stored by StringValue, IntValue and so on; nil
	// until one is.
	values *values
}

// Field is a field of a Doc.
type Field struct {
	Key   string
	Value any
	hash  uint64 // of Key (see Key), set while the Doc is indexed
}

// KeyHash returns a hash of the key, the same for equal keys in any
// document of the process: the one the document's index holds, if it has
// one, so that callers keeping their own tables of keys need not hash
// again.
func (f *Field) KeyHash() uint64 {
	if h := f.hash &^ plainBit; h != 0 {
		return h
	}
	return f.hashKey() // out of line, so that KeyHash is inlined
}

//go:noinline
func (f *Field) hashKey() uint64 { return hashOf(f.Key) }

// PlainKey reports that the key is known to be written in JSON as it is,
// between quotes: printable ASCII without quotes or backslashes. False
// means unknown.
func (f *Field) PlainKey() bool { return f.hash&plainBit != 0 }

// seed is the seed of the keys' hashes: random, so that crafted keys
// cannot collide on purpose.
var seed = maphash.MakeSeed()

// Key is a document key with its hash: setting or getting a field by Key
// does not hash the key again, which the keys a program uses for every
// document are worth.
type Key struct {
	name string
	hash uint64
}

// The top bit of a Key's hash marks a plain key (see Field.PlainKey); it
// is left out when hashes are compared, so that a key hashed by hashOf
// matches.
const plainBit = 1 << 63

// NewKey returns the Key of name.
func NewKey(name string) Key {
	h := hashOf(name)
	if plainJSON(name) {
		h |= plainBit
	}
	return Key{name, h}
}

// plainJSON reports whether s is printable ASCII without quotes or
// backslashes.
func plainJSON(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}

// String returns the key's name.
func (k Key) String() string { return k.name }

func hashOf(key string) uint64 { return maphash.String(seed, key) &^ plainBit }

// linearFields is the number of fields up to which a Doc finds a field by
// comparing keys in turn.
const linearFields = 8

// NewDoc returns an empty document with room for n fields.
func NewDoc(n int) *Doc {
	return &Doc{fields: make([]Field, 0, n)}
}

// DocOf returns a document with the fields of m, in the order of their
// keys.
func DocOf(m map[string]any) *Doc {
	d := NewDoc(len(m))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		d.Set(k, m[k])
	}
	return d
}

// Len returns the number of fields.
func (d *Doc) Len() int { return len(d.fields) }

// Fields returns the fields, in order. The slice is the document's own:
// it must not be changed, and is valid only until the document changes.
func (d *Doc) Fields() []Field { return d.fields }

// All yields the fields, in order. The document must not change meanwhile.
func (d *Doc) All() iter.Seq2[string, any] {
	return func(yield func(string, any) bool) {
		for _, f := range d.fields {
			if !yield(f.Key, f.Value) {
				return
			}
		}
	}
}

// Get returns the value of the field key and whether there is one.
func (d *Doc) Get(key string) (any, bool) {
	if !d.indexed {
		return d.getKey(Key{name: key})
	}
	return d.getKey(NewKey(key))
}

// GetKey is Get with a Key.
func (d *Doc) GetKey(k Key) (any, bool) { return d.getKey(k) }

func (d *Doc) getKey(k Key) (any, bool) {
	if i := d.find(k); i >= 0 {
		return d.fields[i].Value, true
	}
	return nil, false
}

// Has reports whether there is a field key.
func (d *Doc) Has(key string) bool {
	if !d.indexed {
		return d.find(Key{name: key}) >= 0
	}
	return d.find(NewKey(key)) >= 0
}

// HasKey is Has with a Key.
func (d *Doc) HasKey(k Key) bool { return d.find(k) >= 0 }

// Set sets the field key to v.
func (d *Doc) Set(key string, v any) {
	if !d.indexed {
		d.setLinear(key, v)
		return
	}
	d.setIndexed(NewKey(key), v)
}

// SetKey is Set with a Key.
func (d *Doc) SetKey(k Key, v any) {
	if !d.indexed {
		d.setLinear(k.name, v)
		return
	}
	d.setIndexed(k, v)
}

func (d *Doc) setLinear(key string, v any) {
	for i := range d.fields {
		if d.fields[i].Key == key {
			d.fields[i].Value = v
			return
		}
	}
	d.add(key, v, 0)
	if len(d.fields) > linearFields {
		d.reindex()
	}
}

// add appends a field. Its members are stored one by one: appending a
// Field built on the stack copies it with wide loads that wait for the
// narrow stores that built it (no store forwarding), a stall as long as the
// rest of Set.
func (d *Doc) add(key string, v any, hash uint64) {
	n := len(d.fields)
	if n < cap(d.fields) {
		d.fields = d.fields[:n+1]
	} else {
		d.fields = append(d.fields, Field{})
	}
	f := &d.fields[n]
	f.Key, f.Value, f.hash = key, v, hash
}

func (d *Doc) setIndexed(k Key, v any) {
	slot, found := d.slot(k)
	if found {
		d.fields[d.index[slot]-1].Value = v
		return
	}
	d.add(k.name, v, k.hash)
	if 2*len(d.fields) > len(d.index) {
		d.reindex()
		return
	}
	d.index[slot] = int32(len(d.fields))
}

// Delete removes the field key and reports whether there was one.
func (d *Doc) Delete(key string) bool {
	if !d.indexed {
		return d.delete(Key{name: key})
	}
	return d.delete(NewKey(key))
}

// DeleteKey is Delete with a Key.
func (d *Doc) DeleteKey(k Key) bool { return d.delete(k) }

func (d *Doc) delete(k Key) bool {
	key := k.name
	last := len(d.fields) - 1
	if !d.indexed {
		for i := range d.fields {
			if d.fields[i].Key == key {
				copy(d.fields[i:], d.fields[i+1:])
				d.fields[last] = Field{}
				d.fields = d.fields[:last]
				return true
			}
		}
		return false
	}
	slot, found := d.slot(k)
	if !found {
		return false
	}
	i := int(d.index[slot] - 1)
	d.unindex(slot)
	if i != last {
		// The last field takes the deleted one's place.
		moved, _ := d.slot(Key{d.fields[last].Key, d.fields[last].hash})
		d.index[moved] = int32(i + 1)
		d.fields[i] = d.fields[last]
	}
	d.fields[last] = Field{}
	d.fields = d.fields[:last]
	return true
}

// Reset removes every field, keeping the memory for reuse. A document
// that was indexed stays indexed: reused documents mostly grow as large as
// before, and hashing from the first field saves indexing the first ones
// twice.
func (d *Doc) Reset() {
	clear(d.fields)
	d.fields = d.fields[:0]
	d.values = nil // the values may outlive the document
	if d.indexed {
		clear(d.index)
	}
}

// Clone returns a copy of d. Values are shared, not copied.
func (d *Doc) Clone() *Doc {
	c := NewDoc(len(d.fields))
	for _, f := range d.fields {
		c.Set(f.Key, f.Value)
	}
	return c
}

// Map returns the fields as a map.
func (d *Doc) Map() map[string]any {
	m := make(map[string]any, len(d.fields))
	for _, f := range d.fields {
		m[f.Key] = f.Value
	}
	return m
}

// MarshalJSON encodes d as a JSON object with its keys sorted, as
// encoding/json encodes a map. It leaves HTML characters as they are: an
// encoder escapes them in what it writes unless told not to.
func (d *Doc) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(d.Map()); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

// String formats d as a map, with its keys sorted.
func (d *Doc) String() string {
	b, err := d.MarshalJSON()
	if err != nil {
		return "<" + err.Error() + ">"
	}
	return string(b)
}

// find returns the position of the field k, or -1. k's hash is needed
// only if d is indexed.
func (d *Doc) find(k Key) int {
	if !d.indexed {
		for i := range d.fields {
			if d.fields[i].Key == k.name {
				return i
			}
		}
		return -1
	}
	slot, found := d.slot(k)
	if !found {
		return -1
	}
	return int(d.index[slot] - 1)
}

// home is the index slot where the search for a key of hash h starts.
func (d *Doc) home(h uint64) int {
	return int(h & uint64(len(d.index)-1))
}

// slot returns the index slot of the field k and true, or the free slot
// where it would go and false.
func (d *Doc) slot(k Key) (int, bool) {
	mask := len(d.index) - 1
	for s := d.home(k.hash); ; s = (s + 1) & mask {
		p := d.index[s]
		if p == 0 {
			return s, false
		}
		if f := &d.fields[p-1]; (f.hash^k.hash)&^plainBit == 0 && f.Key == k.name {
			return s, true
		}
	}
}

// unindex frees the index slot s, moving back the entries after it that
// would otherwise no longer be found (deletion in linear probing).
func (d *Doc) unindex(s int) {
	mask := len(d.index) - 1
	for next := (s + 1) & mask; d.index[next] != 0; next = (next + 1) & mask {
		home := d.home(d.fields[d.index[next]-1].hash)
		// The entry at next may move to s unless its home lies cyclically
		// in (s, next].
		if (next > s && (home <= s || home > next)) || (next < s && home <= s && home > next) {
			d.index[s] = d.index[next]
			s = next
		}
	}
	d.index[s] = 0
}

// reindex builds the index for the fields, with room for as many again,
// at least as large as the last one: a document reused after Reset mostly
// grows as large as the last.
func (d *Doc) reindex() {
	size := max(16, len(d.index))
	for size < 4*len(d.fields) {
		size *= 2
	}
	if cap(d.index) >= size {
		d.index = d.index[:size]
		clear(d.index)
	} else {
		d.index = make([]int32, size)
	}
	if !d.indexed {
		for i := range d.fields {
			d.fields[i].hash = hashOf(d.fields[i].Key)
		}
		d.indexed = true
	}
	mask := size - 1
	for i := range d.fields {
		s := d.home(d.fields[i].hash)
		for d.index[s] != 0 {
			s = (s + 1) & mask
		}
		d.index[s] = int32(i + 1)
	}
}
