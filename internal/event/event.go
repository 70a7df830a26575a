// Package event defines Sluice's Kafka wire format: the record one log line
// travels in from the shipper to the aggregator.
//
// A record's value is the raw line, unchanged. Its key is the identity of the
// file the line came from, so every line of one file lands in one partition,
// in order. Metadata travels in headers:
//
//	sluice.v       wire format version ("1")
//	sluice.type    document type of the input (service, nginx, ...)
//	sluice.node    node name of the shipper
//	sluice.path    path of the source file
//	sluice.file    stable identity of the source file
//	sluice.offset  byte offset of the line's first byte in the file (decimal)
//	sluice.time    time the shipper read the line (Unix nanoseconds, decimal)
//	sluice.fields  static and path fields, a JSON object of strings
//	sluice.flags   comma-separated flags, e.g. "truncated"
//	sluice.stream  stdout or stderr, for container (CRI) logs
//	sluice.logtime time the container runtime logged the line (Unix ns), CRI
//
// Headers a decoder does not know are ignored, so the format can grow.
//
// With kubernetes.enabled, a container line's pod metadata travels in
// sluice.fields as dotted ECS names (kubernetes.namespace,
// kubernetes.labels.<key with dots as _>, container.image.name, ...), which
// the aggregator puts in the document as they are; fields whose names start
// with "sluice." (FieldNginxFormat) steer the aggregator and are not put in
// the document.
package event

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Version is the wire format version written in the sluice.v header.
const Version = "1"

// Header names.
const (
	HeaderVersion = "sluice.v"
	HeaderType    = "sluice.type"
	HeaderNode    = "sluice.node"
	HeaderPath    = "sluice.path"
	HeaderFile    = "sluice.file"
	HeaderOffset  = "sluice.offset"
	HeaderTime    = "sluice.time"
	HeaderFields  = "sluice.fields"
	HeaderFlags   = "sluice.flags"
	HeaderStream  = "sluice.stream"
	HeaderLogTime = "sluice.logtime"
)

// Flags a line may carry.
const (
	// FlagTruncated marks a line cut at the configured maximum length.
	FlagTruncated = "truncated"
	// FlagUnterminated marks a final line shipped without its newline after
	// the file stayed idle.
	FlagUnterminated = "unterminated"
	// FlagInvalidCRI marks a line of a container log that was not in the
	// CRI format; it is shipped as it is.
	FlagInvalidCRI = "invalid_cri"
	// FlagInvalidDocker marks a line of a Docker json-file log that was not
	// a json-file entry; it is shipped as it is.
	FlagInvalidDocker = "invalid_docker"
	// FlagNoPodMetadata marks a container line shipped without its pod's
	// metadata from the Kubernetes API: the pod was not in the shipper's
	// cache (not yet seen, or the API out of reach). It carries what its
	// file name gives.
	FlagNoPodMetadata = "no_pod_metadata"
	// FlagResent marks a line the shipper may have sent before: one it
	// reads again after a restart, between its registry offset and the
	// last offset it may have produced. Its document may already be
	// indexed, possibly under another index (a daily index named by a
	// read time on another day, a data stream's earlier write index): the
	// aggregator looks it up by id before writing it.
	FlagResent = "resent"
	// FlagMultiline marks an event joined from several lines (a stack
	// trace) by its input's multiline rule.
	FlagMultiline = "multiline"
	// FlagMultilineCut marks the parts of a multiline event cut at the
	// rule's max_lines or max_bytes: the part cut off is the next event.
	FlagMultilineCut = "multiline_cut"
)

// FieldNginxFormat is the field carrying a pod's sluice.io/nginx-format
// hint: the named format or log_format string its nginx lines are read
// with.
const FieldNginxFormat = "sluice.nginx_format"

// ErrMalformed is returned by Decode for records that are not Sluice events.
var ErrMalformed = errors.New("malformed sluice record")

// Event is one log line and where it came from.
type Event struct {
	Type     string
	Node     string
	Path     string
	FileID   string
	Offset   int64
	ReadTime time.Time
	// Fields are the input's static fields and the fields taken from the
	// path; they are shared between the events of one file and must not be
	// modified.
	Fields map[string]string
	Flags  []string
	// Stream and LogTime are set for container (CRI) logs.
	Stream  string
	LogTime time.Time
	Line    []byte
}

// HasFlag reports whether e carries flag.
func (e *Event) HasFlag(flag string) bool {
	for _, f := range e.Flags {
		if f == flag {
			return true
		}
	}
	return false
}

// Field returns the named event field: type, node, path or a static or path
// field. It is what topic and index templates are expanded over.
func (e *Event) Field(name string) (string, bool) {
	switch name {
	case "type":
		return e.Type, true
	case "node":
		return e.Node, true
	case "path":
		return e.Path, true
	}
	v, ok := e.Fields[name]
	return v, ok
}

// EncodeFields renders static and path fields as the sluice.fields header
// value. Shippers compute it once per file.
func EncodeFields(fields map[string]string) []byte {
	if len(fields) == 0 {
		return nil
	}
	b, _ := json.Marshal(fields) // map[string]string always marshals
	return b
}

// Record builds the Kafka record for e. fieldsHeader is EncodeFields(e.Fields).
func (e *Event) Record(topic string, fieldsHeader []byte) *kgo.Record {
	enc := NewEncoder(topic, e, fieldsHeader)
	enc.oneShot = true
	return enc.Record(e)
}

// Encoder builds the records of one file's lines. The headers that are the
// same for every line (version, type, node, path, file, fields) are encoded
// once; the key is the file id. Records are built in Blocks (see Block),
// from a BlockPool when the encoder has one. An Encoder is not safe for
// concurrent use.
type Encoder struct {
	topic  string
	key    []byte
	static []kgo.RecordHeader
	pool   *BlockPool // nil: blocks are not recycled
	cur    *Block     // the block records are built in; held by the encoder
	next   int        // the class of the next block
	// oneShot sizes the block for one record (Event.Record).
	oneShot bool
}

// NewEncoder returns an encoder for lines like e (its type, node, path,
// file id and fields) to topic, whose blocks are not recycled.
func NewEncoder(topic string, e *Event, fieldsHeader []byte) *Encoder {
	return NewPooledEncoder(topic, e, fieldsHeader, nil)
}

// NewPooledEncoder is NewEncoder with blocks from pool. Whoever keeps the
// records it builds holds their blocks (Block) until done with them.
func NewPooledEncoder(topic string, e *Event, fieldsHeader []byte, pool *BlockPool) *Encoder {
	static := []kgo.RecordHeader{
		{Key: HeaderVersion, Value: []byte(Version)},
		{Key: HeaderType, Value: []byte(e.Type)},
		{Key: HeaderNode, Value: []byte(e.Node)},
		{Key: HeaderPath, Value: []byte(e.Path)},
		{Key: HeaderFile, Value: []byte(e.FileID)},
	}
	if len(fieldsHeader) > 0 {
		static = append(static, kgo.RecordHeader{Key: HeaderFields, Value: fieldsHeader})
	}
	return &Encoder{topic: topic, key: []byte(e.FileID), static: static, pool: pool}
}

// maxIntLen is the longest decimal int64.
const maxIntLen = 20

// Record builds the record of e, which must share the encoder's file, in
// the current block (Block). The record gets its own copy of e.Line; its
// timestamp is the read time.
func (enc *Encoder) Record(e *Event) *kgo.Record {
	n := len(enc.static) + 2
	arena := 2 * maxIntLen
	if len(e.Flags) > 0 {
		n++
		arena += len(e.Flags) - 1
		for _, f := range e.Flags {
			arena += len(f)
		}
	}
	if e.Stream != "" {
		n++
		arena += len(e.Stream)
	}
	if !e.LogTime.IsZero() {
		n++
		arena += maxIntLen
	}
	inArena := len(e.Line) <= maxArenaValue
	if inArena {
		arena += len(e.Line)
	}
	if enc.cur == nil || !enc.cur.fits(arena, n) {
		enc.roll(arena, n)
	}
	b := enc.cur
	r, h := b.record(n)
	h = append(h, enc.static...)
	var value []byte
	if inArena {
		value = b.alloc(len(e.Line))
	} else {
		value = make([]byte, len(e.Line))
	}
	copy(value, e.Line)
	h = append(h,
		kgo.RecordHeader{Key: HeaderOffset, Value: b.appendInt(e.Offset)},
		kgo.RecordHeader{Key: HeaderTime, Value: b.appendInt(e.ReadTime.UnixNano())},
	)
	if len(e.Flags) > 0 {
		start := len(b.arena)
		for i, f := range e.Flags {
			if i > 0 {
				b.arena = append(b.arena, ',')
			}
			b.arena = append(b.arena, f...)
		}
		h = append(h, kgo.RecordHeader{Key: HeaderFlags, Value: b.arena[start:len(b.arena):len(b.arena)]})
	}
	if e.Stream != "" {
		v := b.alloc(len(e.Stream))
		copy(v, e.Stream)
		h = append(h, kgo.RecordHeader{Key: HeaderStream, Value: v})
	}
	if !e.LogTime.IsZero() {
		h = append(h, kgo.RecordHeader{Key: HeaderLogTime, Value: b.appendInt(e.LogTime.UnixNano())})
	}
	*r = kgo.Record{Topic: enc.topic, Key: enc.key, Value: value, Headers: h, Timestamp: e.ReadTime}
	return r
}

// roll replaces the current block by one with room for a record of arena
// bytes and headers header slots; each block is a class larger than the
// last, up to the largest.
func (enc *Encoder) roll(arena, headers int) {
	if enc.cur != nil {
		enc.cur.Release()
	}
	k := enc.next
	for k < len(classRecords)-1 && arenaBytes(k) < arena {
		k++
	}
	enc.next = min(k+1, len(classRecords)-1)
	if enc.oneShot {
		b := &Block{arena: make([]byte, 0, arena), recs: make([]kgo.Record, 1), headers: make([]kgo.RecordHeader, headers)}
		b.refs.Store(1)
		enc.cur = b
		return
	}
	b := enc.pool.get(k)
	if !b.fits(arena, headers) { // only a block of the largest class can be too small
		b.Release()
		b = newBlock(k, arena, headers)
		b.refs.Store(1)
	}
	enc.cur = b
}

// Block returns the block the last record was built in (nil before the
// first record).
func (enc *Encoder) Block() *Block { return enc.cur }

// Idle drops the encoder's hold on its block, for a file with nothing more
// to read for now: once its records are acknowledged, the block can serve
// another file. The next record starts a small block.
func (enc *Encoder) Idle() {
	if enc.cur != nil {
		enc.cur.Release()
		enc.cur = nil
	}
	enc.next = 0
}

// appendInt writes v in decimal to the arena, which must have room.
func (b *Block) appendInt(v int64) []byte {
	start := len(b.arena)
	b.arena = strconv.AppendInt(b.arena, v, 10)
	return b.arena[start:len(b.arena):len(b.arena)]
}

// recordSlack is what a record batch of one record takes beyond the
// record's key, value and headers, with room to spare.
const recordSlack = 1 << 10

// CutShorter returns r, which a topic refused as too large, shorter: cut
// to fit limit, or, when by limit it fits already (the limit is not the
// topic's: unknown, or lowered since), to half its value; flagged
// truncated (had: it was already). Called again on each refusal, it
// converges on what the topic takes.
func CutShorter(r *kgo.Record, limit int) (cut *kgo.Record, had, halved bool) {
	if cut, had, ok := CutToFit(r, limit); ok {
		return cut, had, false
	}
	headers, had := WithFlag(r.Headers, FlagTruncated)
	return &kgo.Record{Topic: r.Topic, Key: r.Key, Value: r.Value[:len(r.Value)/2], Headers: headers, Timestamp: r.Timestamp}, had, true
}

// CutToFit returns a copy of r whose value is cut so that a batch of it
// alone is at most limit bytes, flagged truncated (had: it was already);
// ok is false if r fits as it is.
func CutToFit(r *kgo.Record, limit int) (cut *kgo.Record, had, ok bool) {
	other := len(r.Key) + recordSlack + len(HeaderFlags) + len(FlagTruncated) + 1
	for _, h := range r.Headers {
		other += len(h.Key) + len(h.Value)
	}
	fit := max(limit-other, 0)
	if fit >= len(r.Value) {
		return nil, false, false
	}
	headers, had := WithFlag(r.Headers, FlagTruncated)
	return &kgo.Record{Topic: r.Topic, Key: r.Key, Value: r.Value[:fit], Headers: headers, Timestamp: r.Timestamp}, had, true
}

// WithFlag returns a copy of headers whose sluice.flags header holds flag,
// added to it (or as a new header) if missing; had reports it was there.
// headers itself is not changed.
func WithFlag(headers []kgo.RecordHeader, flag string) (out []kgo.RecordHeader, had bool) {
	out = make([]kgo.RecordHeader, 0, len(headers)+1)
	found := false
	for _, h := range headers {
		if h.Key == HeaderFlags {
			found = true
			if slices.Contains(strings.Split(string(h.Value), ","), flag) {
				had = true
			} else {
				h.Value = append(append(append([]byte(nil), h.Value...), ','), flag...)
			}
		}
		out = append(out, h)
	}
	if !found {
		out = append(out, kgo.RecordHeader{Key: HeaderFlags, Value: []byte(flag)})
	}
	return out, had
}

// Decode reads an Event back from a record produced by Record. A consumer
// decoding many records should use a Decoder, which shares the strings and
// fields that repeat between the records of one file.
func Decode(r *kgo.Record) (Event, error) {
	var d Decoder
	return d.Decode(r)
}

// maxInterned bounds a Decoder's memory: past it, its tables start over.
const maxInterned = 4096

// Decoder decodes records, sharing the header values that repeat between
// records (type, node, path, file id and fields are the same for every line
// of a file) instead of allocating them for every record. Not safe for
// concurrent use. The zero value is ready.
type Decoder struct {
	strings map[string]string
	fields  map[string]map[string]string
	// The last record's type, node, path and file id: consecutive records
	// mostly come from one file.
	last struct{ typ, node, path, file string }
}

// internLast returns b as a string, shared with earlier calls; *last is the
// value of the same header in the last record, and becomes this one.
func (d *Decoder) internLast(b []byte, last *string) string {
	if string(b) != *last {
		*last = d.intern(b)
	}
	return *last
}

// intern returns b as a string, shared with earlier calls.
func (d *Decoder) intern(b []byte) string {
	if s, ok := d.strings[string(b)]; ok {
		return s
	}
	if d.strings == nil || len(d.strings) >= maxInterned {
		d.strings = make(map[string]string, 64)
	}
	s := string(b)
	d.strings[s] = s
	return s
}

// decodeFields returns the fields encoded in b, shared with earlier calls;
// they must not be modified.
func (d *Decoder) decodeFields(b []byte) (map[string]string, error) {
	if f, ok := d.fields[string(b)]; ok {
		return f, nil
	}
	var f map[string]string
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, err
	}
	if d.fields == nil || len(d.fields) >= maxInterned {
		d.fields = make(map[string]map[string]string, 16)
	}
	d.fields[string(b)] = f
	return f, nil
}

// Decode reads an Event back from a record produced by Record.
func (d *Decoder) Decode(r *kgo.Record) (Event, error) {
	e := Event{Line: r.Value}
	var haveFile, haveOffset bool
	for _, h := range r.Headers {
		switch h.Key {
		case HeaderType:
			e.Type = d.internLast(h.Value, &d.last.typ)
		case HeaderNode:
			e.Node = d.internLast(h.Value, &d.last.node)
		case HeaderPath:
			e.Path = d.internLast(h.Value, &d.last.path)
		case HeaderFile:
			e.FileID, haveFile = d.internLast(h.Value, &d.last.file), true
		case HeaderOffset:
			off, err := parseInt(h.Value)
			if err != nil {
				return e, fmt.Errorf("%w: header %s: %v", ErrMalformed, HeaderOffset, err)
			}
			e.Offset, haveOffset = off, true
		case HeaderTime:
			ns, err := parseInt(h.Value)
			if err != nil {
				return e, fmt.Errorf("%w: header %s: %v", ErrMalformed, HeaderTime, err)
			}
			e.ReadTime = time.Unix(0, ns)
		case HeaderFields:
			f, err := d.decodeFields(h.Value)
			if err != nil {
				return e, fmt.Errorf("%w: header %s: %v", ErrMalformed, HeaderFields, err)
			}
			e.Fields = f
		case HeaderStream:
			e.Stream = d.intern(h.Value)
		case HeaderLogTime:
			ns, err := parseInt(h.Value)
			if err != nil {
				return e, fmt.Errorf("%w: header %s: %v", ErrMalformed, HeaderLogTime, err)
			}
			e.LogTime = time.Unix(0, ns)
		case HeaderFlags:
			if len(h.Value) > 0 {
				e.Flags = strings.Split(string(h.Value), ",")
			}
		}
	}
	if !haveFile || !haveOffset || e.Type == "" {
		return e, fmt.Errorf("%w: missing %s, %s or %s header", ErrMalformed, HeaderType, HeaderFile, HeaderOffset)
	}
	return e, nil
}

// parseInt reads a decimal integer as strconv.ParseInt(string(b), 10, 64)
// does: plain digits of up to 19 (Unix nanoseconds have 19) directly,
// anything else (signs, longer or larger numbers, errors) by strconv.
func parseInt(b []byte) (int64, error) {
	if len(b) == 0 || len(b) > 19 {
		return strconv.ParseInt(string(b), 10, 64)
	}
	var n uint64 // 19 digits fit
	for _, c := range b {
		if c < '0' || c > '9' {
			return strconv.ParseInt(string(b), 10, 64)
		}
		n = n*10 + uint64(c-'0')
	}
	if n > math.MaxInt64 {
		return strconv.ParseInt(string(b), 10, 64)
	}
	return int64(n), nil
}

// DocID returns the deterministic Elasticsearch document id of the line at
// offset in file fileID on node: a re-delivered line gets the same id and
// overwrites itself instead of being indexed twice.
func DocID(node, fileID string, offset int64) string {
	return docID(node, fileID, offset, 0, false)
}

func docID(node, fileID string, offset, length int64, withLength bool) string {
	// sha256(node, 0, fileID, big-endian offset), its first 15 bytes in
	// unpadded URL-safe base64. Hashed in one call from a buffer on the
	// stack when the input fits, which it does but for very long names.
	var in [128]byte
	b := append(in[:0], node...)
	b = append(b, 0)
	b = append(b, fileID...)
	b = binary.BigEndian.AppendUint64(b, uint64(offset))
	if withLength {
		b = binary.BigEndian.AppendUint64(b, uint64(length))
	}
	sum := sha256.Sum256(b)
	var out [20]byte
	base64.RawURLEncoding.Encode(out[:], sum[:15])
	return string(out[:])
}

// DocID returns the deterministic document id of e. A line shipped
// unterminated (its newline not written after unterminated_line_after) may
// be read again whole from the same offset after a restart that lost its
// acknowledgement: its id includes its length, so that the completed line
// is a document of its own rather than a conflict with the partial one,
// whose missing end would be in no document.
func (e *Event) DocID() string {
	if e.HasFlag(FlagUnterminated) {
		return UnterminatedDocID(e.Node, e.FileID, e.Offset, len(e.Line))
	}
	return DocID(e.Node, e.FileID, e.Offset)
}

// UnterminatedDocID is the document id of an unterminated line of length
// bytes at offset: DocID's with the length hashed after the offset, so it
// never equals the id of a whole line.
func UnterminatedDocID(node, fileID string, offset int64, length int) string {
	return docID(node, fileID, offset, int64(length), true)
}
