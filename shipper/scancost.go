package shipper

import (
	"os"
	"syscall"
	"time"
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

// settledPolls is how many scan intervals, at most, a settled file's
// harvester waits between looks of its own (maxPoll).
const settledPolls = 5

// maxPoll is the longest the harvester waits for a wake-up before it looks
// at its file again. The scan stats every file every scan_interval and
// wakes the harvester of one that changed size, and notifications wake it
// at a write: its own look is the safety net for what both miss (a file
// rewritten in place at the same size) and the clock of close_inactive.
// A settled file (nothing pending, still found by the globs) is looked at
// every settledPolls scan intervals, or a tenth of close_inactive if that
// is sooner; a file with a piece of a line pending
// (unterminated_line_after) or gone from the globs (close_removed_after),
// every scan_interval. A node's quiet files are most of its files: a
// thousand looking every second cost a hundredth of a core or more.
func (h *harvester) maxPoll() time.Duration {
	iv := h.sh.cfg.ScanInterval
	if h.reader.pending() || (h.cri != nil && h.cri.pending()) || h.goneNoticed.Load() {
		return iv
	}
	return min(max(h.sh.cfg.CloseInactive/10, iv), settledPolls*iv)
}
