package parser

import (
	"strings"
	"unsafe"
)

// Storing a string, an int64 or a float64 in an interface allocates a copy
// of it (bar small integers and constants), and an nginx line has about
// ten such values. A document instead gathers them in one block, its
// values: the interfaces point into it. The block is the document's own
// until Reset, which lets it go rather than reuse it, since the values may
// outlive the document (a document's values are shared, not copied, by
// Clone, Map and whoever reads them). Nothing writes to a value once it
// is stored: Go never changes what an interface points to, and lists are
// handed out with no spare capacity.
type values struct {
	strs  [14]string
	words [10]uint64
	lists [1][]string
	ns    uint8
	nw    uint8
	nl    uint8
}

// eface is the layout of an interface{} (runtime.eface).
type eface struct {
	typ, data unsafe.Pointer
}

func typeOf(v any) unsafe.Pointer { return (*eface)(unsafe.Pointer(&v)).typ }

var (
	stringType  = typeOf("")
	int64Type   = typeOf(int64(0))
	float64Type = typeOf(float64(0))
	listType    = typeOf([]string(nil))
)

// box returns an interface of dynamic type typ holding the value at p,
// which must be of that type and never change.
func box(typ, p unsafe.Pointer) (v any) {
	e := (*eface)(unsafe.Pointer(&v))
	e.typ, e.data = typ, p
	return v
}

// vals returns the document's block of values, making one if need be.
func (d *Doc) vals() *values {
	if d.values == nil {
		d.values = new(values)
	}
	return d.values
}

// StringValue returns s as a value of d: an interface that does not allocate
// while d's block has room.
func (d *Doc) StringValue(s string) any {
	b := d.vals()
	if int(b.ns) == len(b.strs) {
		return s
	}
	p := &b.strs[b.ns]
	*p = s
	b.ns++
	return box(stringType, unsafe.Pointer(p))
}

// word returns the next free word of d's block of values, or nil when
// there is no block (a number is not worth one on its own: only
// StringValue makes it) or no free word left.
func (d *Doc) word() unsafe.Pointer {
	b := d.values
	if b == nil || int(b.nw) == len(b.words) {
		return nil
	}
	p := &b.words[b.nw]
	b.nw++
	return unsafe.Pointer(p)
}

// IntValue returns n as a value of d, as StringValue does, but only in a
// block made already by StringValue.
func (d *Doc) IntValue(n int64) any {
	p := d.word()
	if p == nil {
		return n
	}
	*(*int64)(p) = n
	return box(int64Type, p)
}

// FloatValue returns f as a value of d, as IntValue does.
func (d *Doc) FloatValue(f float64) any {
	p := d.word()
	if p == nil {
		return f
	}
	*(*float64)(p) = f
	return box(float64Type, p)
}

// listValue returns the items of v, split at commas and trimmed, empty
// ones left out, as a []string value of d, or nil if there are none.
func (d *Doc) listValue(v string) any {
	b := d.vals()
	n := strings.Count(v, ",") + 1
	if int(b.nl) == len(b.lists) || int(b.ns)+n > len(b.strs) {
		if list := splitList(v, make([]string, 0, n)); len(list) > 0 {
			return list
		}
		return nil
	}
	start := int(b.ns)
	list := splitList(v, b.strs[start:start:start+n])
	if len(list) == 0 {
		return nil
	}
	b.ns += uint8(len(list))
	p := &b.lists[b.nl]
	*p = list[:len(list):len(list)]
	b.nl++
	return box(listType, unsafe.Pointer(p))
}

// splitList appends to list the items of v, split at commas and trimmed,
// leaving out empty ones.
func splitList(v string, list []string) []string {
	for {
		item, rest, more := strings.Cut(v, ",")
		if item = strings.TrimSpace(item); item != "" {
			list = append(list, item)
		}
		if !more {
			return list
		}
		v = rest
	}
}
