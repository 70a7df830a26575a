package shipper

import (
	"bytes"
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
	at     time.Time
	// live is set for a file still being read, not yet truncated.
	live bool
}

// replacedGens remembers generations replaced by a truncation (or a reused
// inode) until their copies, if any, are found.
type replacedGens struct {
	mu   sync.Mutex
	list []readTo
}

func (r *replacedGens) add(t readTo) {
	if t.fp.Len == 0 {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	i := 0
	for i < len(r.list) && (time.Since(r.list[i].at) > replacedKeep || len(r.list)-i >= replacedKeepMax) {
		i++
	}
	r.list = append(r.list[i:], t)
}

func (r *replacedGens) snapshot() []readTo {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]readTo(nil), r.list...)
}

// copyOf reports, for a new generation at di whose first bytes read are
// head and whose size is size, whether it is a copy of a file read so far,
// and the offset to read it from: that of the longest fingerprint it
// starts with, the furthest read if several. live reports that the
// original is still read and not truncated yet: what it reads until its
// truncation is not to be read from the copy again.
func (s *Shipper) copyOf(di devIno, head []byte, size int64) (offset int64, live, ok bool) {
	offset, live, ok, _ = s.copyOfHead(di, head, size)
	return offset, live, ok
}

// copyOfHead is copyOf, and also reports undecided: the head is shorter
// than the fingerprint of a file read so far whose first line it shares,
// so it may be a copy still being written (cp opened, not yet filled):
// it is to be looked at again once it has grown.
func (s *Shipper) copyOfHead(di devIno, head []byte, size int64) (offset int64, live, ok, undecided bool) {
	if len(head) == 0 {
		return 0, false, false, false
	}
	line := firstLineHash(head)
	known := s.replaced.snapshot()
	for _, e := range s.registry.snapshot() {
		if !e.Pending {
			s.mu.Lock()
			h := s.harvesters[e.DevIno]
			s.mu.Unlock()
			offset := e.Offset
			gen := (*generation)(nil)
			if h != nil {
				gen = h.genp.Load()
			}
			live := gen != nil && gen.id == e.ID
			if live {
				// What the original has sent is shipped, or will be once
				// acknowledged: a copy found before the original's
				// truncation is noticed (its reader behind) is read from
				// there, not from the acknowledged offset.
				offset = max(offset, gen.acks.sentTo())
				// Truncated already, though its harvester has not seen it
				// yet: the file under it is shorter than what was read,
				// or starts with other bytes. Only then is it the
				// original of a copy; a live file that keeps its content
				// merely starts like this one.
				live = !truncatedUnder(h, e.Fingerprint, offset)
			}
			known = append(known, readTo{fp: e.Fingerprint, line: idLineHash(e.ID), offset: offset, di: e.DevIno, live: live})
		}
	}
	hashes := map[int64]string{}
	var best readTo
	for _, k := range known {
		if k.di == di || k.fp.Len == 0 {
			continue
		}
		if k.fp.Len > int64(len(head)) {
			if line != "" && k.line == line {
				undecided = true
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
	// A copy shorter than what was read (lines written after the copy
	// and read from the original before its truncation) was read whole.
	if best.fp.Len > 0 {
		undecided = false
	}
	return min(best.offset, size), best.live, best.fp.Len > 0, undecided
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
const copyWait = 5 * time.Second

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
