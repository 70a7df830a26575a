package shipper

import (
	"path/filepath"
	"time"

	"go.uber.org/zap"
)

// outsideFile is a file to be read that the globs may no longer find: one
// renamed out of them (before a scan saw it, or after it was released at
// its end), one waiting for max_open_files, or one renamed while the
// shipper was stopped. It is remembered by where it lives until a
// harvester has it, since its name can change again meanwhile; the
// harvester then follows it to its end and releases it
// close_removed_after after its last data.
type outsideFile struct {
	in    *input
	path  string // where it was last seen
	since time.Time
}

// follow remembers the file at di, last seen at path, until a harvester
// reads it. The caller holds s.mu.
func (s *Shipper) follow(in *input, path string, di devIno, since time.Time) {
	if _, ok := s.outside[di]; ok || s.harvesters[di] != nil {
		return
	}
	s.outside[di] = outsideFile{in: in, path: path, since: since}
}

// renamed is the watcher's report that from was renamed to to. A file
// renamed out of an input's globs is followed at its new name, whether or
// not a scan saw it under the old one: with a glob matching only the live
// file (app.log), a file may live there entirely between two scans, or be
// released at its end before the app's last writes to it.
func (s *Shipper) renamed(from, to string) {
	var in *input
	for _, c := range s.inputs {
		if c.match(from) {
			in = c
			break
		}
	}
	if in == nil || in.match(to) {
		return // the scan finds it where it is now
	}
	fi, err := in.opener.stat(to)
	if err != nil {
		s.refusals.report(to, err)
		return
	}
	di, ok := statDevIno(fi)
	if !ok {
		return
	}
	s.mu.Lock()
	s.follow(in, to, di, time.Now())
	s.mu.Unlock()
	// Known to the registry, so that a restart before it is read finds
	// it too (resumeRenamed).
	if !s.registry.hasDevIno(di) {
		s.registry.put(registryEntry{ID: pendingID(di), Pending: true, Path: to, Type: in.cfg.Type, DevIno: di})
		select {
		case s.flushSoon <- struct{}{}:
		default:
		}
	}
	s.requestScan()
}

// outsideCandidates returns the followed files the globs did not find in
// this scan (claimed), where they are now. Those found by the globs, being
// read, or gone (deleted) are forgotten.
func (s *Shipper) outsideCandidates(claimed map[devIno]bool) map[devIno]outsideFile {
	s.mu.Lock()
	todo := make(map[devIno]outsideFile, len(s.outside))
	for di, o := range s.outside {
		if claimed[di] || s.harvesters[di] != nil {
			delete(s.outside, di)
			continue
		}
		todo[di] = o
	}
	s.mu.Unlock()
	dirs := map[string]map[devIno]string{}
	out := make(map[devIno]outsideFile, len(todo))
	for di, o := range todo {
		if fi, err := o.in.opener.stat(o.path); err == nil {
			if got, ok := statDevIno(fi); ok && got == di {
				out[di] = o
				continue
			}
		}
		// Renamed again (a numbered rotation shifts names): look for it in
		// its directory.
		dir := filepath.Dir(o.path)
		files, ok := dirs[dir]
		if !ok {
			files = filesByDevIno(dir)
			dirs[dir] = files
		}
		if path, ok := files[di]; ok {
			o.path = path
			out[di] = o
			continue
		}
		s.log.Warn("a file renamed out of the globs was removed before it could be read",
			zap.String("last_path", o.path))
	}
	s.mu.Lock()
	for di := range todo {
		if o, ok := out[di]; ok {
			if _, still := s.outside[di]; still {
				s.outside[di] = o
			}
		} else {
			delete(s.outside, di)
		}
	}
	s.mu.Unlock()
	return out
}
