package deliver

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"unicode/utf8"

	"github.com/sluicelog/sluice/parser"
)

// AppendDocument appends doc to buf as a JSON object, as encoding/json
// would write it except that dotted keys are written as nested objects
// ("log.level": "info" as "log": {"level": "info"}, inside objects too),
// keys are in their order by path (nested objects' own members: map order)
// and strings are not HTML-escaped (Elasticsearch needs neither). One
// shape, as Filebeat writes: ingest pipelines, Painless (ctx.log.level),
// jq and other readers of _source find every field by its path. It is
// several times faster than encoding/json: documents hold only the types
// the parsers and enrichers produce, and those are written without
// reflection. Other types fall back to encoding/json. Invalid UTF-8 is
// replaced by U+FFFD; NaN and infinities are an error, as in encoding/json.
//
// Where two values claim one path (a service's "http": {...} object beside
// the http.request.id the parser set, or "host.name" beside "host":
// {"name": ...}), objects are merged, and two values of one field become a
// list of both, which Elasticsearch indexes as it indexed the two before;
// a value where an object goes (a string "a" beside "a.b") keeps the
// other's dotted key, as before, for the conflict retry to move aside.
func AppendDocument(buf []byte, doc *parser.Doc) ([]byte, error) {
	fields := doc.Fields()
	p := plans.get(fields)
	if p.merge {
		// A key with an empty name ("a..b"): merged as a tree, the rare
		// way.
		root := make(node, len(fields))
		for i := range fields {
			root.insert(fields[i].Key, fields[i].Value)
		}
		return appendMembers(append(buf, '{'), root)
	}
	var err error
	for k := range p.steps {
		st := &p.steps[k]
		buf = append(buf, st.before...)
		f := &fields[st.field]
		if st.group >= 0 {
			buf, err = appendGroup(buf, fields, f, &p.groups[st.group])
		} else {
			buf, err = appendValue(buf, f.Value)
		}
		if err != nil {
			return buf, fmt.Errorf("field %s: %w", f.Key, err)
		}
	}
	return append(buf, p.end...), nil
}

// appendGroup writes the value of a field that has fields under its path:
// an object merged with them, or, for another value (which Elasticsearch
// rejects beside them), the value and then the fields under their dotted
// names, as they were before, for the conflict retry to move aside.
func appendGroup(buf []byte, fields []parser.Field, f *parser.Field, group *planGroup) ([]byte, error) {
	if m, ok := f.Value.(map[string]any); ok {
		n := toNode(m)
		for _, g := range group.fields {
			n.insert(g.rel, fields[g.field].Value)
		}
		return appendMembers(append(buf, '{'), n)
	}
	buf, err := appendValue(buf, f.Value)
	for _, g := range group.fields {
		if err != nil {
			break
		}
		buf = append(buf, ',')
		buf = append(appendString(buf, group.name+"."+g.rel), ':')
		buf, err = appendValue(buf, fields[g.field].Value)
	}
	return buf, err
}

// A plan is how to write the documents of one list of keys: the fields in
// path order, each with the text before its value (commas, the objects
// closed and opened, its name). Documents of one type mostly have the
// same keys in the same order, so that the keys are sorted and split once
// per list, not once per document.
type plan struct {
	keys   []planKey // the keys, in the document's order
	steps  []planStep
	groups []planGroup
	end    []byte // what closes the document
	merge  bool   // a key cannot be split: no steps
}

// planKey is a key as a plan knows it: by its hash (Field.KeyHash, 63
// bits of a hash seeded at random when the process starts) and length,
// which are cheaper to compare than the key and as sure (two keys with one
// hash: a chance in 2^63).
type planKey struct {
	hash uint64
	n    int
}

type planStep struct {
	before []byte
	field  int32 // position in the document
	// group, if not -1, is the plan's group of the fields under this
	// one's path ("log.level" under a "log" object), to merge with its
	// value. (Kept aside: a small step is faster to walk.)
	group int32
}

// planGroup is the group of fields under one field's path; name is that
// field's last name.
type planGroup struct {
	name   string
	fields []groupField
}

// groupField is a field whose value goes into another's object.
type groupField struct {
	field int32
	rel   string // the key under the other's path: "level"
}

// maxPlans bounds planCache: past it, it starts over.
const maxPlans = 4096

// planCache holds the plans of the key lists seen, by a hash of the list.
// The aggregator's decoding goroutine is its main user, and holds the lock
// for a lookup.
type planCache struct {
	// last is the plan last used: documents come in batches of one type.
	last  atomic.Pointer[plan]
	mu    sync.Mutex
	plans map[uint64]*plan
}

// plans are the plans of every document encoded: a cache, shared as the
// documents' keys are (the same few lists in the whole process).
var plans = &planCache{}

// get returns the plan for documents with fields' keys.
func (c *planCache) get(fields []parser.Field) *plan {
	// The hash, and whether the keys are the last plan's, in one pass.
	last := c.last.Load()
	same := last != nil && len(last.keys) == len(fields)
	h := uint64(len(fields))
	for i := range fields {
		kh := fields[i].KeyHash()
		h = (h ^ kh) * keysPrime
		if same {
			k := &last.keys[i]
			same = kh == k.hash && len(fields[i].Key) == k.n
		}
	}
	if same {
		return last
	}
	c.mu.Lock()
	p := c.plans[h]
	c.mu.Unlock()
	if p != nil && p.of(fields) {
		c.last.Store(p)
		return p
	}
	p = newPlan(fields)
	c.last.Store(p)
	c.mu.Lock()
	if c.plans == nil || len(c.plans) >= maxPlans {
		c.plans = make(map[uint64]*plan)
	}
	c.plans[h] = p
	c.mu.Unlock()
	return p
}

// keysHash returns a hash of the list of fields' keys, as get computes it.
func keysHash(fields []parser.Field) uint64 {
	h := uint64(len(fields))
	for i := range fields {
		h = (h ^ fields[i].KeyHash()) * keysPrime
	}
	return h
}

// keysPrime is FNV's 64-bit prime.
const keysPrime = 0x100000001b3

// of reports whether p is the plan of fields' keys.
func (p *plan) of(fields []parser.Field) bool {
	if len(fields) != len(p.keys) {
		return false
	}
	for i := range fields {
		if k := &p.keys[i]; fields[i].KeyHash() != k.hash || len(fields[i].Key) != k.n {
			return false
		}
	}
	return true
}

// newPlan makes the plan of fields' keys.
func newPlan(fields []parser.Field) *plan {
	p := &plan{keys: make([]planKey, len(fields))}
	order := make([]int32, len(fields))
	for i := range fields {
		p.keys[i] = planKey{fields[i].KeyHash(), len(fields[i].Key)}
		order[i] = int32(i)
	}
	// By path: the keys of one object are next to each other, and a key
	// just before the keys it is the object of ("a" before "a.b").
	slices.SortFunc(order, func(i, j int32) int { return comparePaths(fields[i].Key, fields[j].Key) })
	if !p.write(fields, order) {
		return &plan{keys: p.keys, merge: true}
	}
	return p
}

// comparePaths orders dotted keys by path: as strings, but with the dot
// before every other byte, so that "a.b" sorts before "a-c" and a path's
// keys are never separated by another's.
func comparePaths(a, b string) int {
	i := commonPrefix(a, b)
	switch {
	case i == min(len(a), len(b)):
		return len(a) - len(b)
	case a[i] == '.':
		return -1
	case b[i] == '.':
		return 1
	}
	return int(a[i]) - int(b[i])
}

// splitPath returns the object path and the last name of a dotted key:
// "http.request.id" is "http.request" and "id". A key with an empty name
// in it ("a..b", ".a", "a.") is one name, written as it is.
func splitPath(key string) (parent, name string) {
	i := strings.LastIndexByte(key, '.')
	if i < 0 || !splittable(key) {
		return "", key
	}
	return key[:i], key[i+1:]
}

func splittable(key string) bool {
	return len(key) > 0 && key[0] != '.' && key[len(key)-1] != '.' && !strings.Contains(key, "..")
}

// write makes p's steps for the fields, in order (sorted by
// comparePaths), opening and closing objects as the paths change; a key
// followed by keys under its path takes them into its step's group. It
// returns false if a key cannot be split.
func (p *plan) write(fields []parser.Field, order []int32) bool {
	var text []byte // all the steps' text, one allocation
	at := make([]int, 0, len(order)+1)
	text = append(text, '{')
	open := ""                      // the path of the innermost open object; "" the root
	first := true                   // the innermost open object has no member yet
	var groups map[int][]groupField // by position in order
	for j := 0; j < len(order); j++ {
		f := &fields[order[j]]
		key := f.Key
		// Keys under this one's path ("a.b", "a.c" after "a") follow it:
		// its group.
		for j+1 < len(order) {
			k := fields[order[j+1]].Key
			if len(k) <= len(key) || k[len(key)] != '.' || k[:len(key)] != key {
				break
			}
			if groups == nil {
				groups = make(map[int][]groupField)
			}
			// Copied, as the name below: a key may be part of a record's
			// buffer, which a plan must not keep.
			groups[len(at)] = append(groups[len(at)], groupField{order[j+1], strings.Clone(k[len(key)+1:])})
			order = slices.Delete(order, j+1, j+2)
		}
		parent, name := splitPath(key)
		if parent == "" && strings.IndexByte(key, '.') >= 0 {
			return false // "a..b": written whole, it could come between "a.b" and "a.c"
		}
		if parent != open {
			common := commonPath(open, parent)
			for len(open) > len(common) { // close to the common path
				text = append(text, '}')
				open = open[:max(strings.LastIndexByte(open, '.'), 0)]
				first = false
			}
			rest := parent[len(common):]
			if len(common) > 0 && len(rest) > 0 {
				rest = rest[1:] // the dot after common
			}
			for len(rest) > 0 { // open the rest of parent
				seg, more, _ := strings.Cut(rest, ".")
				if !first {
					text = append(text, ',')
				}
				text = appendName(text, seg, f.PlainKey())
				text = append(text, '{')
				first = true
				rest = more
			}
			open = parent
		}
		if !first {
			text = append(text, ',')
		}
		first = false
		text = appendName(text, name, f.PlainKey())
		at = append(at, len(text))
	}
	for open != "" {
		text = append(text, '}')
		open = open[:max(strings.LastIndexByte(open, '.'), 0)]
	}
	text = append(text, '}')
	p.steps = make([]planStep, len(order))
	from := 0
	for k, i := range order {
		p.steps[k] = planStep{field: i, before: text[from:at[k]:at[k]], group: -1}
		if g := groups[k]; g != nil {
			_, name := splitPath(fields[i].Key)
			p.steps[k].group = int32(len(p.groups))
			p.groups = append(p.groups, planGroup{strings.Clone(name), g})
		}
		from = at[k]
	}
	p.end = text[from:]
	return true
}

// commonPath returns the longest path both a and b are in (or are): a
// prefix of both that ends at a dot or at their end.
func commonPath(a, b string) string {
	i := commonPrefix(a, b)
	if (i == len(a) || a[i] == '.') && (i == len(b) || b[i] == '.') {
		return a[:i]
	}
	return a[:max(strings.LastIndexByte(a[:i], '.'), 0)]
}

// commonPrefix returns the length of the longest common prefix of a and b.
func commonPrefix(a, b string) int {
	n := min(len(a), len(b))
	i := 0
	for i < n && a[i] == b[i] {
		i++
	}
	return i
}

// appendName writes an object member's name and the colon.
func appendName(buf []byte, name string, plain bool) []byte {
	if plain { // most keys: no need to look for escapes
		buf = append(buf, '"')
		buf = append(buf, name...)
		return append(buf, '"', ':')
	}
	return append(appendString(buf, name), ':')
}

// node is an object appendDocument builds when values must be merged: its
// own, unlike a document's map[string]any, which it must not change. Its
// names have no dots, except for a value kept under its dotted key where
// another value holds the path.
type node map[string]any

// insert sets the dotted key in n to v, merging objects.
func (n node) insert(key string, v any) {
	if splittable(key) {
		for {
			seg, rest, ok := strings.Cut(key, ".")
			if !ok {
				break
			}
			switch c := n[seg].(type) {
			case nil:
				if _, taken := n[seg]; taken {
					n[key] = merge(n[key], v) // a null holds seg
					return
				}
				child := make(node)
				n[seg] = child
				n = child
			case node:
				n = c
			case map[string]any:
				child := toNode(c)
				n[seg] = child
				n = child
			default: // a value holds seg: key stays dotted
				n[key] = merge(n[key], v)
				return
			}
			key = rest
		}
	}
	if old, ok := n[key]; ok {
		n[key] = merge(old, v)
		return
	}
	n[key] = v
}

// toNode returns m as a node, its dotted keys split.
func toNode(m map[string]any) node {
	n := make(node, len(m))
	for k, v := range m {
		n.insert(k, v)
	}
	return n
}

// merge returns what old and v become on one path: one object with the
// members of both if both are objects, else a list of both (nil for old:
// v), as Elasticsearch indexes two values of one field.
func merge(old, v any) any {
	if old == nil {
		return v
	}
	if on, ok := asNode(old); ok {
		if m, ok := v.(map[string]any); ok {
			for k, e := range m {
				on.insert(k, e)
			}
			return on
		}
		if vn, ok := v.(node); ok {
			for k, e := range vn {
				on.insert(k, e)
			}
			return on
		}
	}
	list := asList(old)
	return append(list, asList(v)...)
}

func asNode(v any) (node, bool) {
	switch m := v.(type) {
	case node:
		return m, true
	case map[string]any:
		return toNode(m), true
	}
	return nil, false
}

func asList(v any) []any {
	switch l := v.(type) {
	case []any:
		return slices.Clone(l)
	case []string:
		out := make([]any, len(l))
		for i, s := range l {
			out[i] = s
		}
		return out
	case []float64:
		out := make([]any, len(l))
		for i, f := range l {
			out[i] = f
		}
		return out
	}
	return []any{v}
}

// appendObject writes a document's object m, its dotted keys as nested
// objects.
func appendObject(buf []byte, m map[string]any) ([]byte, error) {
	if len(m) == 2 {
		// A geo point, in every nginx document with GeoIP: two lookups
		// are much cheaper than walking a map.
		if lat, ok := m["lat"]; ok {
			if lon, ok := m["lon"]; ok {
				return appendPoint(buf, lat, lon)
			}
		}
	}
	for k := range m {
		if strings.IndexByte(k, '.') >= 0 {
			return appendMembers(append(buf, '{'), toNode(m))
		}
	}
	return appendMembers(append(buf, '{'), m)
}

// appendMembers writes the members of an object whose '{' is written, and
// the '}'.
func appendMembers[M ~map[string]any](buf []byte, m M) ([]byte, error) {
	first := true
	for k, v := range m {
		if !first {
			buf = append(buf, ',')
		}
		first = false
		buf = appendString(buf, k)
		buf = append(buf, ':')
		var err error
		if buf, err = appendValue(buf, v); err != nil {
			return buf, fmt.Errorf("field %s: %w", k, err)
		}
	}
	return append(buf, '}'), nil
}

// appendPoint writes {"lat":lat,"lon":lon}.
func appendPoint(buf []byte, lat, lon any) ([]byte, error) {
	buf = append(buf, `{"lat":`...)
	var err error
	if buf, err = appendValue(buf, lat); err != nil {
		return buf, fmt.Errorf("field lat: %w", err)
	}
	buf = append(buf, `,"lon":`...)
	if buf, err = appendValue(buf, lon); err != nil {
		return buf, fmt.Errorf("field lon: %w", err)
	}
	return append(buf, '}'), nil
}

func appendValue(buf []byte, v any) ([]byte, error) {
	switch v := v.(type) {
	case string:
		return appendString(buf, v), nil
	case int64:
		return strconv.AppendInt(buf, v, 10), nil
	case int:
		return strconv.AppendInt(buf, int64(v), 10), nil
	case float64:
		return appendFloat(buf, v)
	case bool:
		return strconv.AppendBool(buf, v), nil
	case nil:
		return append(buf, "null"...), nil
	case []string:
		buf = append(buf, '[')
		for i, s := range v {
			if i > 0 {
				buf = append(buf, ',')
			}
			buf = appendString(buf, s)
		}
		return append(buf, ']'), nil
	case []float64:
		buf = append(buf, '[')
		for i, f := range v {
			if i > 0 {
				buf = append(buf, ',')
			}
			var err error
			if buf, err = appendFloat(buf, f); err != nil {
				return buf, err
			}
		}
		return append(buf, ']'), nil
	case []any:
		buf = append(buf, '[')
		for i, e := range v {
			if i > 0 {
				buf = append(buf, ',')
			}
			var err error
			if buf, err = appendValue(buf, e); err != nil {
				return buf, err
			}
		}
		return append(buf, ']'), nil
	case map[string]any:
		return appendObject(buf, v)
	case node:
		return appendMembers(append(buf, '{'), v)
	default:
		b, err := json.Marshal(v)
		return append(buf, b...), err
	}
}

// appendFloat writes f as encoding/json does.
func appendFloat(buf []byte, f float64) ([]byte, error) {
	if b, ok := appendDecimal(buf, f); ok {
		return b, nil
	}
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return buf, fmt.Errorf("unsupported value %v", f)
	}
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	buf = strconv.AppendFloat(buf, f, format, -1, 64)
	if format == 'e' { // 1e-07 -> 1e-7
		if n := len(buf); n >= 4 && buf[n-4] == 'e' && buf[n-3] == '-' && buf[n-2] == '0' {
			buf[n-2] = buf[n-1]
			buf = buf[:n-1]
		}
	}
	return buf, nil
}

// Numbers appendDecimal writes: n/decimalScale for an integer n, below
// maxDecimal, where a float64's spacing (at most 2^-23) is well under
// 1/decimalScale.
const (
	decimalDigits = 6
	decimalScale  = 1e6
	maxDecimal    = 1e9
)

// appendDecimal writes f as encoding/json does if f is n/1e6 for an
// integer n, as nginx's times (0.123), coordinates (51.5142) and most
// measured values are, without strconv's search for the shortest
// representation: the decimal n/1e6, trailing zeros dropped, is that
// shortest representation, since f is the float64 nearest to it and no
// other decimal of as few digits is within f's spacing. ok is false for
// other numbers, 0 (which may be -0) and numbers of maxDecimal or more.
func appendDecimal(buf []byte, f float64) ([]byte, bool) {
	if !(f > -maxDecimal && f < maxDecimal) || f == 0 {
		return buf, false
	}
	n := math.Round(f * decimalScale)
	if n/decimalScale != f { // n/1e6 is the float64 nearest to the decimal n/1e6
		return buf, false
	}
	m := int64(n)
	if m < 0 {
		buf = append(buf, '-')
		m = -m
	}
	buf = strconv.AppendInt(buf, m/decimalScale, 10)
	frac := m % decimalScale
	if frac == 0 {
		return buf, true
	}
	var digits [1 + decimalDigits]byte
	digits[0] = '.'
	for i := decimalDigits; i > 0; i-- {
		digits[i] = byte('0' + frac%10)
		frac /= 10
	}
	end := len(digits)
	for digits[end-1] == '0' {
		end--
	}
	return append(buf, digits[:end]...), true
}

const hexDigits = "0123456789abcdef"

const (
	ones  = 0x0101010101010101
	highs = 0x8080808080808080
)

// hasZeroByte reports whether any byte of x is 0.
func hasZeroByte(x uint64) bool { return (x-ones)&^x&highs != 0 }

// plainWord reports whether the eight bytes in x are all plain: ASCII, not
// a control character, a quote or a backslash.
func plainWord(x uint64) bool {
	return x&highs == 0 && // ASCII
		(x-0x20*ones)&highs == 0 && // no byte below 0x20 (no borrow, as all are < 0x80)
		!hasZeroByte(x^('"'*ones)) &&
		!hasZeroByte(x^('\\'*ones))
}

// plain holds the bytes a JSON string holds as they are: printable ASCII
// other than the quote and the backslash.
var plain = func() (t [256]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// appendString writes s as a JSON string.
func appendString(buf []byte, s string) []byte {
	// Most strings are plain throughout: checked eight bytes at a time,
	// the tail as the last eight bytes when there are that many, and
	// copied whole.
	i := 0
	for i+8 <= len(s) && plainWord(binary.LittleEndian.Uint64([]byte(s[i:i+8]))) {
		i += 8
	}
	if i < len(s) && i+8 > len(s) {
		if len(s) >= 8 && plainWord(binary.LittleEndian.Uint64([]byte(s[len(s)-8:]))) {
			i = len(s)
		}
		for i < len(s) && plain[s[i]] {
			i++
		}
	}
	if i == len(s) {
		buf = append(buf, '"')
		buf = append(buf, s...)
		return append(buf, '"')
	}
	return appendEscaped(buf, s, i)
}

// appendEscaped writes s as a JSON string; its first i bytes are plain.
func appendEscaped(buf []byte, s string, i int) []byte {
	buf = append(buf, '"')
	start := 0
	for i < len(s) {
		// Eight plain bytes at a time: the common case.
		for i+8 <= len(s) && plainWord(binary.LittleEndian.Uint64([]byte(s[i:i+8]))) {
			i += 8
		}
		if i >= len(s) {
			break
		}
		c := s[i]
		if plain[c] {
			i++
			continue
		}
		if c >= utf8.RuneSelf {
			r, size := utf8.DecodeRuneInString(s[i:])
			switch {
			case r == utf8.RuneError && size == 1:
				buf = append(buf, s[start:i]...)
				buf = append(buf, `\ufffd`...)
			case r == '\u2028' || r == '\u2029': // valid JSON, but not valid JavaScript
				buf = append(buf, s[start:i]...)
				buf = append(buf, `\u202`...)
				buf = append(buf, hexDigits[r&0xf])
			default:
				i += size
				continue
			}
			i += size
			start = i
			continue
		}
		buf = append(buf, s[start:i]...)
		switch c {
		case '"', '\\':
			buf = append(buf, '\\', c)
		case '\n':
			buf = append(buf, '\\', 'n')
		case '\r':
			buf = append(buf, '\\', 'r')
		case '\t':
			buf = append(buf, '\\', 't')
		case '\b':
			buf = append(buf, '\\', 'b')
		case '\f':
			buf = append(buf, '\\', 'f')
		default:
			buf = append(buf, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
		}
		i++
		start = i
	}
	buf = append(buf, s[start:]...)
	return append(buf, '"')
}
