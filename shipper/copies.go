package shipper

import (
	"bytes"
	"hash/crc32"
	"io"
	"os"
	"strings"
	"sync"
	"time"
)

// copytruncate leaves a copy of the file (app.log.1, a new inode) and the
// original, truncated, on its inode. With a glob that matches the copy,
// reading the copy from its start would ship again everything read from
// the original. A new file that starts with the bytes of a file read so
// far (same fingerprint, another inode) is such a copy: it is read from
// where the original was read to, so that only the lines the shipper had
// not read before the truncation are shipped from it.

// replacedKeep bounds how long and how many replaced generations are
// remembered for their copies to be recognised: a copy is found by the
// next scans, or at the next start from the registry.
const (
	replacedKeep    = 10 * time.Minute
	replacedKeepMax = 256
)

// readTo is how far a file was read: the fingerprint of its start and the
// offset every line before which was shipped.
type readTo struct {
	fp fingerprint
	// line is the hash of its first line, as in its file id (fileID).
	line   string
	offset int64
	di     devIno
	// live is set for a file still being read, not yet truncated.
	live bool
	// marks are a replaced generation's last lines (registryEntry.Marks).
	marks []lineCheck
}

// replacedGens remembers generations replaced by a truncation (or a reused
// inode) until their copies, if any, are found. They are kept in the
// registry, so that a copy found after a restart is recognised too.
type replacedGens struct {
	reg *registry
	// naming makes a new generation's check against the files read so
	// far and its naming one step: a copy and its original both read
	// from 0 at once would otherwise each find no other and both be read
	// whole.
	naming sync.Mutex
	// copyWait and handoverWait, if set, replace the constants (tests).
	copyWait, handoverWait time.Duration
	// checked, if set, is called between a generation's check and its
	// naming (tests).
	checked func()
}

func (r *replacedGens) waits() (copy, handover time.Duration) {
	copy, handover = copyWait, handoverWait
	if r.copyWait > 0 {
		copy = r.copyWait
	}
	if r.handoverWait > 0 {
		handover = r.handoverWait
	}
	return copy, handover
}

// add remembers e, a generation replaced after it was read to e.Offset.
// One of which nothing was read is not: its copy is read whole anyway.
func (r *replacedGens) add(e registryEntry) {
	if e.Fingerprint.Len == 0 || e.Offset == 0 {
		return
	}
	r.reg.addReplaced(e, replacedKeep, replacedKeepMax)
}

func (r *replacedGens) snapshot() []readTo {
	var out []readTo
	for _, e := range r.reg.replacedSince(time.Now().Add(-replacedKeep)) {
		out = append(out, readTo{fp: e.Fingerprint, line: idLineHash(e.ID), offset: e.Offset, di: e.DevIno, marks: e.Marks})
	}
	return out
}

// copyVerdict is what a new generation read from 0 is, as far as copies go.
type copyVerdict struct {
	// copy: it starts with the bytes of a generation read so far whose
	// file was truncated and whose harvester handed it over (or which has
	// none): it is read from offset, where that generation was read to.
	copy   bool
	offset int64
	// alike: it starts like a file read so far that is not truncated, of
	// entry. It is that file's copy only if that file is truncated soon
	// (copytruncate truncates right after copying); until then it waits.
	alike bool
	of    *registryEntry
	// handover: it starts like a live file truncated under its harvester,
	// which has not noticed yet. That harvester may still ship lines it
	// read before the truncation (an open burst, its read buffer): only
	// once it has noticed is where it stopped known. It waits for that.
	handover bool
	// short: it is shorter than the fingerprint of a file read so far
	// whose first line it shares, so it may be a copy still being written
	// (cp opened, not yet filled): it waits to grow.
	short bool
	// differs: it starts like a generation truncated lately, but does not
	// hold what that one held where it was read to: no copy, read whole.
	differs bool
}

// copyOfHead says whether a new generation at di whose first bytes read
// are head and whose size is size is a copy of a file read so far. Of the
// generations it starts like, that of the longest fingerprint counts, the
// furthest read if several.
func (s *Shipper) copyOfHead(f io.ReaderAt, di devIno, head []byte, size int64) copyVerdict {
	if len(head) == 0 {
		return copyVerdict{}
	}
	line := firstLineHash(head)
	type candidate struct {
		readTo
		h *harvester // the live harvester whose file was truncated under it
		// reading is the harvester reading its generation now: whether
		// the file was truncated under it is looked at only for the
		// candidate chosen (a stat and a read; there may be thousands).
		reading *harvester
		// entry is the registry's entry, if it is one; closed is set when
		// no harvester reads its file now.
		entry  *registryEntry
		closed bool
	}
	var known []candidate
	for _, k := range s.replaced.snapshot() {
		known = append(known, candidate{readTo: k})
	}
	for _, e := range s.registry.snapshot() {
		if e.Pending {
			continue
		}
		s.mu.Lock()
		h := s.harvesters[e.DevIno]
		s.mu.Unlock()
		c := candidate{readTo: readTo{fp: e.Fingerprint, line: idLineHash(e.ID), offset: e.Offset, di: e.DevIno, marks: e.Marks}, entry: &e}
		if h == nil {
			c.closed = true
		} else if gen := h.genp.Load(); gen != nil && gen.id == e.ID {
			c.offset = max(c.offset, gen.acks.sentTo())
			c.reading = h
		}
		known = append(known, c)
	}
	hashes := map[int64]string{}
	var best candidate
	short := false
	for _, k := range known {
		if k.di == di || k.fp.Len == 0 {
			continue
		}
		if k.fp.Len > int64(len(head)) {
			if line != "" && k.line == line {
				short = true
			}
			continue
		}
		h, done := hashes[k.fp.Len]
		if !done {
			h = fingerprintOf(head[:k.fp.Len]).Hash
			hashes[k.fp.Len] = h
		}
		if h != k.fp.Hash {
			continue
		}
		if k.fp.Len > best.fp.Len || (k.fp.Len == best.fp.Len && k.offset > best.offset) {
			best = k
		}
	}
	if h := best.reading; h != nil {
		// Truncated already, though its harvester has not seen it yet:
		// the file under it is shorter than what was read, or starts
		// with other bytes. Only then is it the original of a copy; a
		// live file that keeps its content merely starts like this one.
		if truncatedUnder(h, best.fp, best.offset) {
			best.h = h
		} else {
			best.live = true
		}
	}
	switch {
	case best.fp.Len == 0:
		return copyVerdict{short: short}
	case best.h != nil:
		best.h.notify() // to notice the truncation now
		return copyVerdict{handover: true, offset: min(best.offset, size)}
	case best.live, best.closed && s.untruncated(*best.entry):
		return copyVerdict{alike: true, of: best.entry}
	}
	// A copy shorter than what was read (lines written after the copy
	// and read from the original before its truncation) was read whole.
	offset := min(best.offset, size)
	// The first bytes alike are not enough to skip any: two services'
	// logs may start with the same banner. A copy holds what its original
	// held where one of its last lines read ended, at offset. Without
	// marks (a generation replaced on a harvester's start, a registry of
	// an older version) the fingerprint is all there is.
	// A mark that ends at offset decides. Where none does, a copy that
	// holds all that was read (the reader's last marks are past the
	// hand-over point, or were not summed yet) is taken on its
	// fingerprint, as without marks: reading it whole would ship again
	// every line the original shipped. One shorter than what was read
	// needs the mark: a file that merely starts alike must not be skipped.
	held, marked := holdsMark(f, best.marks, offset)
	if len(best.marks) > 0 && !held && (marked || offset < best.offset) {
		return copyVerdict{differs: true}
	}
	return copyVerdict{copy: true, offset: offset}
}

// holdsMark reports whether f holds, before offset, the bytes of the mark
// that ends there, and whether one does (known).
func holdsMark(f io.ReaderAt, marks []lineCheck, offset int64) (held, known bool) {
	for _, m := range marks {
		if m.End != offset {
			continue
		}
		b := make([]byte, m.Len)
		if _, err := f.ReadAt(b, offset-int64(m.Len)); err != nil {
			return false, true
		}
		return crc32.Checksum(b, castagnoli) == m.Sum, true
	}
	return false, false
}

// untruncated reports whether e's file, closed (released at its end),
// still starts with the bytes e was fingerprinted by and holds what was
// read of it: a new file that starts like it is then no copy of it, not
// yet.
func (s *Shipper) untruncated(e registryEntry) bool {
	in := s.inputFor(e)
	if in == nil {
		return false
	}
	f, err := in.opener.openRead(e.Path)
	if err != nil {
		return false
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil || fi.Size() < e.Offset {
		return false
	}
	if di, ok := statDevIno(fi); !ok || di != e.DevIno {
		return false
	}
	same, err := e.Fingerprint.matches(f)
	return err == nil && same
}

// prefixOf reports whether f, of size bytes, holds what the file of e
// holds at the same offsets, judged by its last bytes: a copy that cp is
// still writing. A file that merely starts like e's differs further on.
func (s *Shipper) prefixOf(f *os.File, size int64, e registryEntry) bool {
	in := s.inputFor(e)
	if in == nil || size == 0 {
		return false
	}
	orig, err := in.opener.openRead(e.Path)
	if err != nil {
		return false
	}
	defer orig.Close()
	fi, err := orig.Stat()
	if err != nil || fi.Size() < size {
		return false
	}
	if di, ok := statDevIno(fi); !ok || di != e.DevIno {
		return false
	}
	from := max(size-fingerprintSize, 0)
	a, b := make([]byte, size-from), make([]byte, size-from)
	if _, err := f.ReadAt(a, from); err != nil {
		return false
	}
	if _, err := orig.ReadAt(b, from); err != nil {
		return false
	}
	return bytes.Equal(a, b)
}

// firstLineHash is the hash of head's first line as fileID writes it, or
// "" when head has no whole line.
func firstLineHash(head []byte) string {
	if !bytes.Contains(head[:min(len(head), fingerprintSize)], []byte{'\n'}) {
		return ""
	}
	return idLineHash(fileID(devIno{}, head))
}

// idLineHash is the first-line hash of a file id (<dev>-<ino>-h<hash>), or
// "" for ids of other forms.
func idLineHash(id string) string {
	if i := strings.LastIndex(id, "-h"); i >= 0 {
		return id[i+2:]
	}
	return ""
}

// copyWait bounds how long a copy waits for its original to be truncated
// (copytruncate truncates right after copying): a file whose "original"
// is not truncated by then is no copy, only alike, and is read whole.
// handoverWait bounds how long a copy waits for the harvester of its
// truncated original to notice the truncation: one held back by Kafka
// (max_in_flight_bytes) looks only once it may ship again. Past it, the
// copy is read from what the original has sent so far, and lines the
// original still ships from what it had read may be shipped twice.
const (
	copyWait     = 5 * time.Second
	handoverWait = time.Minute
)

// truncatedUnder reports whether h's file, read to offset and
// fingerprinted by fp, was truncated since: shorter than offset, or no
// longer starting with fp's bytes.
func truncatedUnder(h *harvester, fp fingerprint, offset int64) bool {
	fi, err := h.f.Stat()
	if err != nil {
		return false
	}
	if fi.Size() < offset {
		return true
	}
	same, err := fp.matches(h.f)
	return err == nil && !same
}

// copiedTo is how much of a truncated generation of the file at di, whose
// first bytes were head, a copy the inputs read holds: the largest size of
// another file their globs find that starts with head, or 0. copytruncate
// copies before it truncates, so the copy is whole by the time the
// truncation is seen; its lines past where the original was read are read
// from it (skipCopied), not lost.
func (s *Shipper) copiedTo(di devIno, head []byte) int64 {
	if len(head) == 0 {
		return 0
	}
	fp := fingerprintOf(head)
	var most int64
	for _, in := range s.inputs {
		for _, path := range in.matches(s.log) {
			if size, ok := startsLike(in, path, di, fp); ok {
				most = max(most, size)
			}
		}
	}
	return most
}

// startsLike reports the size of the file at path if it is not the file at
// di and starts with the bytes fp was taken from.
func startsLike(in *input, path string, di devIno, fp fingerprint) (int64, bool) {
	f, err := in.opener.openRead(path)
	if err != nil {
		return 0, false
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil || fi.Size() < fp.Len {
		return 0, false
	}
	if d, ok := statDevIno(fi); !ok || d == di {
		return 0, false
	}
	same, err := fp.matches(f)
	return fi.Size(), err == nil && same
}
