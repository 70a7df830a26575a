package shipper

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"syscall"
	"time"
)

// fingerprintSize is how many leading bytes of a file identify its content.
// 1 KiB spans a few log lines, enough to tell two files on a reused inode
// apart, and is read once per file. Files shorter than it are fingerprinted
// over what they have; the fingerprint is extended as they grow.
const fingerprintSize = 1024

// devIno is where a file lives on disk. It survives renames; it does not
// survive deletion, since the kernel reuses inodes.
type devIno struct {
	Dev uint64 `json:"dev"`
	Ino uint64 `json:"ino"`
}

func statDevIno(fi os.FileInfo) (devIno, bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return devIno{}, false
	}
	return devIno{Dev: uint64(st.Dev), Ino: st.Ino}, true
}

// fingerprint is the hash of a file's first Len bytes.
type fingerprint struct {
	Len  int64  `json:"len"`
	Hash string `json:"hash"`
}

// readFingerprint hashes the first min(size, fingerprintSize) bytes of f.
func readFingerprint(f *os.File) (fingerprint, error) {
	buf := make([]byte, fingerprintSize)
	n, err := f.ReadAt(buf, 0)
	if err != nil && err != io.EOF {
		return fingerprint{}, fmt.Errorf("reading fingerprint: %w", err)
	}
	return fingerprintOf(buf[:n]), nil
}

func fingerprintOf(b []byte) fingerprint {
	sum := sha256.Sum256(b)
	return fingerprint{Len: int64(len(b)), Hash: hex.EncodeToString(sum[:12])}
}

// matches reports whether f still starts with the bytes fp was taken from.
func (fp fingerprint) matches(f *os.File) (bool, error) {
	if fp.Len == 0 {
		return true, nil
	}
	buf := make([]byte, fp.Len)
	n, err := f.ReadAt(buf, 0)
	if err != nil && err != io.EOF {
		return false, fmt.Errorf("reading fingerprint: %w", err)
	}
	return int64(n) == fp.Len && fingerprintOf(buf).Hash == fp.Hash, nil
}

// newFileID names one generation of a file: where it lives, and when Sluice
// first saw this content there. A copytruncate or an inode reused for a new
// file starts a new generation, so the document ids of the new lines never
// collide with those of the old ones.
func newFileID(di devIno, now time.Time) string {
	return fmt.Sprintf("%x-%x-%x", di.Dev, di.Ino, now.UnixNano())
}
