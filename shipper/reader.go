package shipper

import (
	"bytes"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"time"
)

// line is one line read from a file. Data excludes the newline and is only
// valid until the next call to next.
type line struct {
	Data []byte
	// Start is the offset of the line's first byte; End is the offset just
	// past its newline (or past the bytes consumed for it).
	Start, End int64
	// Truncated is set when the line was longer than the limit and cut.
	Truncated bool
	// Set for container logs: the CRI stream and time, and flags.
	Stream  string
	LogTime time.Time
	Flags   []string
	// Set for a container line joined from pieces: Bytes is the file bytes
	// of its pieces, and Resume the offset the registry may move to once it
	// is acknowledged (before End while a line of the other stream, begun
	// earlier, still waits for its final piece). Zero Bytes means a plain
	// line: End-Start bytes, resumed at End.
	Bytes, Resume int64
}

// covered returns the file bytes l was read from and the offset the
// registry may move to once it is acknowledged.
func (l *line) covered() (bytes, resume int64) {
	if l.Bytes == 0 {
		return l.End - l.Start, l.End
	}
	return l.Bytes, l.Resume
}

// lineReader splits a file into lines with positional reads, so that the
// caller always knows exactly which byte offsets a line covers and can
// detect truncation independently.
type lineReader struct {
	src io.ReaderAt
	max int
	// bufs lends the read buffer (nil: the reader makes its own); size is
	// the buffer's size before a long line grows it.
	bufs *readBuffers
	size int

	buf        []byte // nil while idle
	start, end int    // unconsumed bytes are buf[start:end]
	offset     int64  // file offset of buf[start]
	// cut holds the first max bytes of an overlong line while the rest of
	// it is skipped; cutStart is that line's offset.
	cut, cutBuf []byte
	cutStart    int64
	// head is the file's first bytes, up to fingerprintSize: given when
	// reading starts past them, and extended by the bytes read while they
	// follow on. They are the file's identity as read, not as the file is
	// now, which may be new content after a truncation.
	head []byte
	// check, if set, is called after every read, before its bytes are
	// used: it fails if the file is no longer the one read so far.
	check func(head []byte) error
	// limit, if set, bounds the bytes one read asks for (turn.go).
	limit int
	// marks are where the last lines read ended and their last bytes, a
	// ring; nmarks counts the marks made.
	marks  [markRing]lineMark
	nmarks int
}

// lineMark is where a line read ended and the checksum of its bytes (of
// its last markBytes, for a longer one): what a copy of the file must hold
// there to be one (copies.go). Kept for the last markRing lines: a
// copytruncate copy is usually a little shorter than what was read of its
// original (lines written between the copy and the truncation), and ends
// where one of those lines did. The whole line is summed, not a few bytes
// before its end: lines often end alike and differ at their start. The sum
// is taken only when the buffer is about to let go of the bytes (seal): of
// a buffer's hundreds of lines, the last markRing.
type lineMark struct {
	lineCheck
	pos    int // the end of the line in buf, while not summed
	summed bool
}

// lineCheck is a line's mark, as the registry keeps it too: the checksum
// of the Len bytes before End.
type lineCheck struct {
	End int64  `json:"end"`
	Len int    `json:"len"`
	Sum uint32 `json:"sum"`
}

const (
	markBytes = 256
	markRing  = 32 // a power of 2
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli) // summed by the CPU

// mark records that a line read ended at buf[j], its bytes in the buffer
// from buf[from].
func (r *lineReader) mark(from, j int) {
	from = max(from, j-markBytes)
	r.marks[r.nmarks&(markRing-1)] = lineMark{lineCheck: lineCheck{End: r.offset + int64(j-r.start), Len: j - from}, pos: j}
	r.nmarks++
}

// seal sums the marks whose bytes are still in the buffer, before it lets
// go of them.
func (r *lineReader) seal() {
	if r.buf == nil {
		return // idle sealed them before letting go of it
	}
	for i := 1; i <= min(r.nmarks, markRing); i++ {
		m := &r.marks[(r.nmarks-i)&(markRing-1)]
		if m.summed {
			return // and so are those before
		}
		m.Sum, m.summed = crc32.Checksum(r.buf[m.pos-m.Len:m.pos], castagnoli), true
	}
}

// markAt returns the mark of the line read that ended at end, if it is one
// of the last lines read (zero otherwise).
func (r *lineReader) markAt(end int64) lineCheck {
	for i := 1; i <= min(r.nmarks, markRing); i++ {
		if m := &r.marks[(r.nmarks-i)&(markRing-1)]; m.End == end {
			r.seal()
			return m.lineCheck
		} else if m.End < end {
			break
		}
	}
	return lineCheck{}
}

// checks returns the marks of the last lines read, latest first.
func (r *lineReader) checks() []lineCheck {
	r.seal()
	n := min(r.nmarks, markRing)
	out := make([]lineCheck, 0, n)
	for i := 1; i <= n; i++ {
		out = append(out, r.marks[(r.nmarks-i)&(markRing-1)].lineCheck)
	}
	return out
}

// readBufferSize is a reader's buffer: a line longer than it grows the
// buffer up to max_line_bytes, until the file has nothing to read.
const readBufferSize = 64 << 10

// readBuffers lends readers their buffers, so that only files with
// something to read hold one. It keeps at most maxFreeReadBuffers: a
// sync.Pool kept every buffer a thousand busy files had given back at once
// until the collector dropped them, which a shipper that makes little
// garbage does rarely (60 MiB of idle buffers, measured). Safe for
// concurrent use.
type readBuffers struct{ free chan *[readBufferSize]byte }

// maxFreeReadBuffers is the most buffers kept for reuse: more than the
// files read at one time on a few cores.
const maxFreeReadBuffers = 16

func newReadBuffers() *readBuffers {
	return &readBuffers{free: make(chan *[readBufferSize]byte, maxFreeReadBuffers)}
}

// get returns a buffer of size bytes: a free one for the usual size, else
// (or with no pool) made for the caller.
func (p *readBuffers) get(size int) []byte {
	if p == nil || size != readBufferSize {
		return make([]byte, size)
	}
	select {
	case b := <-p.free:
		return b[:]
	default:
		return new([readBufferSize]byte)[:]
	}
}

// put gives buf back if it has the usual size and fewer than
// maxFreeReadBuffers are free; the caller does not use it afterwards.
func (p *readBuffers) put(buf []byte) {
	if p == nil || len(buf) != readBufferSize {
		return
	}
	select {
	case p.free <- (*[readBufferSize]byte)(buf):
	default:
	}
}

// newLineReader reads src from offset, cutting lines at maxLine bytes, with
// buffers from bufs (nil: its own).
func newLineReader(src io.ReaderAt, offset int64, maxLine int, bufs *readBuffers) *lineReader {
	return &lineReader{src: src, max: maxLine, bufs: bufs, size: readBufferSize, offset: offset}
}

// idle lets go of the read buffer (and of a long line's) while nothing is
// buffered: a file with nothing to read holds none. The next read takes a
// buffer again.
func (r *lineReader) idle() {
	if r.pending() {
		return
	}
	r.seal()
	r.cutBuf = nil
	r.bufs.put(r.buf)
	r.buf, r.start, r.end = nil, 0, 0
}

// dropReadAhead forgets the bytes read past the last line returned, to be
// read again, so that idle can let go of the buffer; not in the middle of
// an overlong line being skipped.
func (r *lineReader) dropReadAhead() {
	if r.cut == nil {
		r.seek(r.offset)
	}
}

// pending reports whether bytes were read that are not yet part of a
// returned line.
func (r *lineReader) pending() bool { return r.end > r.start || r.cut != nil }

// next returns the next complete line. ok is false when no complete line is
// available yet; the partial tail stays buffered.
//
// A line longer than the limit is cut: its first max bytes are kept, the
// rest is skipped up to the next newline, and the cut line is returned only
// then, covering the skipped bytes too, so that its end offset is a line
// boundary and a restart resumes at the next whole line.
func (r *lineReader) next() (l line, ok bool, err error) {
	for {
		if i := bytes.IndexByte(r.buf[r.start:r.end], '\n'); i >= 0 {
			if r.cut != nil {
				l = line{Data: r.cut, Start: r.cutStart, End: r.offset + int64(i) + 1, Truncated: true}
				r.cut = nil
				r.mark(r.start, r.start+i+1)
				r.consume(i + 1)
				return l, true, nil
			}
			l = line{Data: trimCR(r.buf[r.start : r.start+i]), Start: r.offset, End: r.offset + int64(i) + 1}
			if len(l.Data) > r.max {
				l.Data, l.Truncated = l.Data[:r.max], true
			}
			r.mark(r.start, r.start+i+1)
			r.consume(i + 1)
			return l, true, nil
		}
		if r.cut != nil {
			r.consume(r.end - r.start)
		} else if r.end-r.start > r.max { // no newline within max+1 bytes
			r.cut = append(r.cutBuf[:0], r.buf[r.start:r.start+r.max]...)
			r.cutBuf = r.cut
			r.cutStart = r.offset
			r.consume(r.end - r.start)
		}
		n, err := r.fill()
		if n == 0 {
			return line{}, false, err
		}
	}
}

// flushPartial returns the buffered partial line (or the cut part of an
// overlong one) as a line without newline, for a file that stayed idle. It
// returns ok=false if nothing is buffered.
func (r *lineReader) flushPartial() (line, bool) {
	if r.cut != nil {
		l := line{Data: r.cut, Start: r.cutStart, End: r.offset, Truncated: true}
		r.cut = nil
		return l, true
	}
	if r.end == r.start {
		return line{}, false
	}
	l := line{Data: r.buf[r.start:r.end], Start: r.offset, End: r.offset + int64(r.end-r.start)}
	r.mark(r.start, r.end)
	r.consume(r.end - r.start)
	return l, true
}

// position is the file offset just past the last byte consumed.
func (r *lineReader) position() int64 { return r.offset }

// readPosition is the file offset just past the last byte read.
func (r *lineReader) readPosition() int64 { return r.offset + int64(r.end-r.start) }

func (r *lineReader) consume(n int) {
	r.start += n
	r.offset += int64(n)
	if r.start == r.end {
		r.start, r.end = 0, 0
	}
}

// fill reads more bytes after the buffered ones. It returns 0 and a nil
// error at the end of the file.
func (r *lineReader) fill() (int, error) {
	r.seal() // the read may write over the bytes of the lines read
	if r.buf == nil {
		r.buf = r.bufs.get(r.size)
	}
	if r.start > 0 && r.end == len(r.buf) {
		copy(r.buf, r.buf[r.start:r.end])
		r.end -= r.start
		r.start = 0
	}
	if r.end == len(r.buf) {
		// A line longer than the buffer and not over the limit: grow
		// (next cuts a line once max bytes are buffered).
		if len(r.buf) > r.max {
			return 0, fmt.Errorf("line buffer full at offset %d", r.offset)
		}
		grown := make([]byte, min(2*len(r.buf), r.max+1))
		copy(grown, r.buf[:r.end])
		r.bufs.put(r.buf)
		r.buf = grown
	}
	pos := r.readPosition()
	room := r.buf[r.end:]
	if r.limit > 0 && len(room) > r.limit {
		room = room[:r.limit]
	}
	n, err := r.src.ReadAt(room, pos)
	if err != nil && !errors.Is(err, io.EOF) {
		return 0, fmt.Errorf("reading at offset %d: %w", pos, err)
	}
	if n == 0 {
		return 0, nil
	}
	// A file truncated and written again before this read gave bytes of
	// its new content at the old offset, or, read while it was being
	// truncated and written, a mix of both: checked after the read, with
	// the head these bytes extend, so that they are never glued to the old
	// content's lines.
	head := r.head
	if pos == int64(len(head)) && pos < fingerprintSize {
		head = append(head, r.buf[r.end:r.end+min(n, fingerprintSize-int(pos))]...)
	}
	if r.check != nil {
		if err := r.check(head); err != nil {
			return 0, err
		}
	}
	r.head = head
	r.end += n
	return n, nil
}

// reset drops buffered bytes and continues at offset (after truncation).
func (r *lineReader) reset(offset int64) {
	r.seek(offset)
	r.head = r.head[:0]
	r.nmarks = 0
}

// seek drops buffered bytes and continues at offset, keeping the head.
func (r *lineReader) seek(offset int64) {
	r.seal()
	r.start, r.end, r.offset, r.cut = 0, 0, offset, nil
}

func trimCR(b []byte) []byte {
	if n := len(b); n > 0 && b[n-1] == '\r' {
		return b[:n-1]
	}
	return b
}
