package shipper

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"syscall"
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

// readHead returns the first min(size, n) bytes of f.
func readHead(f *os.File, n int64) ([]byte, error) {
	buf := make([]byte, min(n, fingerprintSize))
	got, err := f.ReadAt(buf, 0)
	if err != nil && err != io.EOF {
		return nil, fmt.Errorf("reading fingerprint: %w", err)
	}
	return buf[:got], nil
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

// startsWith reports whether f still starts with head.
func startsWith(f *os.File, head []byte) (bool, error) {
	if len(head) == 0 {
		return true, nil
	}
	buf := make([]byte, len(head))
	n, err := f.ReadAt(buf, 0)
	if err != nil && err != io.EOF {
		return false, fmt.Errorf("reading fingerprint: %w", err)
	}
	return n == len(head) && bytes.Equal(buf, head), nil
}

// fileID names one generation of a file: where it lives and its first line
// (its first fingerprintSize bytes if the line is longer). It is derived
// from the file alone, so that the same bytes of the same file get the same
// document ids after any restart, whether or not the registry entry reached
// the disk. head is the file's first bytes as read; a head without a
// newline shorter than fingerprintSize is a first line shipped
// unterminated, the one case where a restart that lost the entry names the
// file anew. A copytruncate or a reused inode gives new content, whose
// first line differs (log lines carry a time); a new generation whose id
// would still equal the one it replaces gets a suffix (harvester.identify).
//
// Ids of entries written before (<dev>-<inode>-<first seen, unix ns>) are
// kept as they are: only new generations are named this way.
func fileID(di devIno, head []byte) string {
	head = head[:min(len(head), fingerprintSize)]
	if i := bytes.IndexByte(head, '\n'); i >= 0 {
		head = head[:i+1]
	}
	sum := sha256.Sum256(head)
	return fmt.Sprintf("%x-%x-h%s", di.Dev, di.Ino, hex.EncodeToString(sum[:8]))
}

// pendingID is the registry key of a generation read from offset 0 that
// has no complete first line yet, so no id: nothing of it was shipped.
func pendingID(di devIno) string {
	return fmt.Sprintf("%x-%x-pending", di.Dev, di.Ino)
}
