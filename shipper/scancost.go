package shipper

import (
	"os"
	"syscall"
)

// What a scan costs per open file, every scan_interval: a node's thousand
// quiet files cost the shipper 0.04-0.05 of a core doing nothing, most of
// it the scan vetting each open file again through its input's opener (an
// openat2, fstat, fstatfs and close) and waking its harvester.

// scanned records the file's size as a scan found it and reports whether
// it changed since the last scan: only then does the scan wake the file's
// harvester (a write the notifications missed, or a truncation).
func (h *harvester) scanned(size int64) bool {
	return h.scanSize.Swap(size) != size
}

// statKnown stats path for the scan if it leads to the very file a
// harvester reads from it, by one stat instead of the opener's checks: the
// file was vetted when it was opened and is read through that handle, so
// the path grants nothing new. A path that now is a link (where the input
// does not follow links), or a file with another hard link, goes through
// the opener again. It returns nil otherwise.
func (s *Shipper) statKnown(in *input, path string) os.FileInfo {
	s.mu.Lock()
	h := s.byPath[path]
	s.mu.Unlock()
	if h == nil || h.input != in {
		return nil
	}
	stat := os.Lstat
	if in.cfg.Symlinks.Follow {
		stat = os.Stat
	}
	fi, err := stat(path)
	if err != nil || !fi.Mode().IsRegular() {
		return nil
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); !ok || (st.Nlink > 1 && !in.cfg.AllowHardLinks) {
		return nil
	}
	if di, ok := statDevIno(fi); !ok || di != h.di {
		return nil
	}
	return fi
}
