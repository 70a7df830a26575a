package shipper

import (
	"encoding/json"
	"net/http"
	"os"
	"sort"
	"sync"
	"time"
)

// File states on /files.
const (
	// FileReading: open, read and followed by a harvester.
	FileReading = "reading"
	// FileWaiting: with something to read, waiting for max_open_files.
	FileWaiting = "waiting"
	// FileReleased: known to the registry and closed (close_inactive at
	// its end, or rotated away and read to its end); it is opened again
	// when it grows.
	FileReleased = "released"
	// FileGone: in the registry, but no file at its path has its identity
	// any more (removed or rotated out of the globs); forgotten after
	// clean_after.
	FileGone = "gone"
)

// FileStatus is one file as /files shows it.
type FileStatus struct {
	Path  string `json:"path"`
	Type  string `json:"type,omitempty"`
	State string `json:"state"`
	// FileID is the registry's id of the file's content generation, the
	// file.id of its events; empty for a waiting file never read.
	FileID string `json:"file_id,omitempty"`
	Dev    uint64 `json:"dev"`
	Inode  uint64 `json:"inode"`
	// Size is the file's size as last seen; -1 when it is gone.
	Size int64 `json:"size"`
	// Offset is the end of the last line Kafka acknowledged, in order.
	Offset int64 `json:"acked_offset"`
	// Lag is Size minus Offset: bytes not yet acknowledged.
	Lag   int64  `json:"lag_bytes"`
	Topic string `json:"topic,omitempty"`
	// Updated is when the registry entry last changed.
	Updated   time.Time  `json:"updated,omitzero"`
	LastError *FileError `json:"last_error,omitempty"`
}

// FileError is the last error reading a file.
type FileError struct {
	Time    time.Time `json:"time"`
	Message string    `json:"message"`
}

// maxFileErrors bounds the errors kept for /files: files that keep failing
// to open (permissions) are usually few, and an unbounded map could grow
// with every path a glob ever matched.
const maxFileErrors = 1024

// fileErrors keeps the last error of each path for /files; the zero value
// is ready to use.
type fileErrors struct {
	mu sync.Mutex
	m  map[string]FileError
}

// note records err as path's last error.
func (e *fileErrors) note(path string, err error) {
	if err == nil {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.m == nil {
		e.m = map[string]FileError{}
	}
	if _, ok := e.m[path]; !ok && len(e.m) >= maxFileErrors {
		oldest := ""
		for p, fe := range e.m {
			if oldest == "" || fe.Time.Before(e.m[oldest].Time) {
				oldest = p
			}
		}
		delete(e.m, oldest)
	}
	e.m[path] = FileError{Time: time.Now(), Message: err.Error()}
}

func (e *fileErrors) get(path string) *FileError {
	e.mu.Lock()
	defer e.mu.Unlock()
	if fe, ok := e.m[path]; ok {
		return &fe
	}
	return nil
}

// status is an open file's status, from the harvester's atomics: safe from
// any goroutine.
func (h *harvester) status() FileStatus {
	gen := h.genp.Load()
	size, offset := h.size.Load(), gen.acks.offset()
	return FileStatus{Path: h.currentPath(), Type: h.input.cfg.Type, State: FileReading, FileID: gen.id,
		Dev: h.di.Dev, Inode: h.di.Ino, Size: size, Offset: offset, Lag: max(size-offset, 0), Topic: h.currentTopic()}
}

// Files returns every file the shipper reads, waits to read or remembers
// in its registry, by path. It only reads state.
func (s *Shipper) Files() []FileStatus {
	byDevIno := map[devIno]FileStatus{}
	s.mu.Lock()
	for di, h := range s.harvesters {
		byDevIno[di] = h.status()
	}
	waiting := make([]devIno, 0, len(s.waitingSince))
	for di := range s.waitingSince {
		waiting = append(waiting, di)
	}
	s.mu.Unlock()

	out := []FileStatus{}
	for _, e := range s.registry.snapshot() {
		if st, ok := byDevIno[e.DevIno]; ok {
			if st.FileID == e.ID {
				st.Updated = e.Updated
				byDevIno[e.DevIno] = st
			}
			continue // an older generation of an open file
		}
		st := FileStatus{Path: e.Path, Type: e.Type, State: FileReleased, FileID: e.ID, Dev: e.DevIno.Dev, Inode: e.DevIno.Ino,
			Size: -1, Offset: e.Offset, Updated: e.Updated}
		if fi, err := os.Stat(e.Path); err == nil {
			if di, ok := statDevIno(fi); ok && di == e.DevIno {
				st.Size = fi.Size()
				st.Lag = max(st.Size-st.Offset, 0)
			}
		}
		if st.Size < 0 {
			st.State = FileGone
		}
		out = append(out, st)
	}
	// A waiting file is shown by its registry entry (the latest, if its
	// content was truncated) or, never read, found by its identity.
	var unknown map[devIno]bool
	for _, di := range waiting {
		latest := -1
		for i := range out {
			if out[i].Dev == di.Dev && out[i].Inode == di.Ino && (latest < 0 || out[i].Updated.After(out[latest].Updated)) {
				latest = i
			}
		}
		if latest >= 0 {
			out[latest].State = FileWaiting
			continue
		}
		if unknown == nil {
			unknown = map[devIno]bool{}
		}
		unknown[di] = true
	}
	if len(unknown) > 0 {
		out = append(out, s.waitingUnread(unknown)...)
	}
	for _, st := range byDevIno {
		out = append(out, st)
	}
	for i := range out {
		out[i].LastError = s.fileErrs.get(out[i].Path)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Path != out[j].Path {
			return out[i].Path < out[j].Path
		}
		return out[i].Updated.Before(out[j].Updated)
	})
	return out
}

// waitingUnread finds the paths of waiting files that have no registry
// entry yet, by matching the inputs' globs again.
func (s *Shipper) waitingUnread(want map[devIno]bool) []FileStatus {
	var out []FileStatus
	for _, in := range s.inputs {
		for _, path := range in.matches(s.log) {
			fi, err := os.Stat(path)
			if err != nil {
				continue
			}
			di, ok := statDevIno(fi)
			if !ok || !want[di] {
				continue
			}
			delete(want, di)
			out = append(out, FileStatus{Path: path, Type: in.cfg.Type, State: FileWaiting, Dev: di.Dev, Inode: di.Ino,
				Size: fi.Size(), Lag: fi.Size()})
		}
	}
	return out
}

// FilesHandler serves Files as JSON: GET /files, read-only.
func (s *Shipper) FilesHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "read-only: use GET", http.StatusMethodNotAllowed)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(struct {
			Node  string       `json:"node"`
			Files []FileStatus `json:"files"`
		}{s.cfg.Node, s.Files()})
	})
}
