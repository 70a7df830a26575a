package shipper

import (
	"context"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/fsnotify/fsnotify"
	"go.uber.org/zap"
)

// watcher turns filesystem notifications into early wake-ups: a write wakes
// the harvester of that file, a new file triggers a scan. It only lowers
// latency; polling stays the safety net, since notifications can overflow
// or be missing on some filesystems, and a missed notification must never
// mean missed data.
type watcher struct {
	fs      *fsnotify.Watcher
	log     *zap.Logger
	watched map[string]bool
}

func newWatcher(log *zap.Logger) *watcher {
	fw, err := fsnotify.NewWatcher()
	if err != nil {
		log.Warn("filesystem notifications unavailable; polling only", zap.Error(err))
		return &watcher{log: log}
	}
	return &watcher{fs: fw, log: log, watched: map[string]bool{}}
}

// watchDirs makes sure the directories of paths are watched. Called from
// the scan loop only; a nil watcher (a scan outside Run) watches nothing.
func (w *watcher) watchDirs(paths []string) {
	if w == nil || w.fs == nil {
		return
	}
	for _, p := range paths {
		dir := filepath.Dir(p)
		if w.watched[dir] || strings.ContainsAny(dir, "*?[") {
			continue
		}
		if err := w.fs.Add(dir); err != nil {
			w.log.Debug("cannot watch directory", zap.String("dir", dir), zap.Error(err))
			continue
		}
		w.watched[dir] = true
	}
}

// run delivers notifications until ctx is done: written(path) for writes,
// created() for new files, renamed(from, to) for a rename within a watched
// directory (the kernel reports its two halves one after the other). At
// the end it still reports the renames already notified, so that files
// renamed out of the globs before a scan saw them reach the registry
// written at shutdown. It closes done when it returns.
func (w *watcher) run(ctx context.Context, done chan<- struct{}, written func(string), created func(), renamed func(from, to string)) {
	defer close(done)
	if w.fs == nil {
		return
	}
	defer w.fs.Close()
	var renamedFrom string // the first half of a rename, if the last event was one
	handle := func(ev fsnotify.Event) {
		if from := renamedFrom; from != "" && ev.Has(fsnotify.Create) && secondHalf(ev, from) {
			renamed(from, ev.Name)
		}
		renamedFrom = ""
		if ev.Has(fsnotify.Rename) {
			renamedFrom = ev.Name
		}
	}
	for {
		select {
		case <-ctx.Done():
			for {
				select {
				case ev, ok := <-w.fs.Events:
					if !ok {
						return
					}
					handle(ev)
				case <-time.After(20 * time.Millisecond):
					return
				}
			}
		case ev, ok := <-w.fs.Events:
			if !ok {
				return
			}
			handle(ev)
			switch {
			case ev.Has(fsnotify.Create), ev.Has(fsnotify.Rename), ev.Has(fsnotify.Remove):
				created()
				written(ev.Name)
			case ev.Has(fsnotify.Write):
				written(ev.Name)
			}
		case err, ok := <-w.fs.Errors:
			if !ok {
				return
			}
			// An overflow loses events, not data: the poll finds it.
			w.log.Debug("filesystem notification error; polling covers it", zap.Error(err))
		}
	}
}

// secondHalf reports whether ev, a creation, is the arrival of a file
// renamed from from. fsnotify pairs the two halves by the kernel's cookie
// but shows the pairing only in the event's text; without it (a move out
// of the directory followed by an unrelated creation) a file that was
// never in the globs would be read.
func secondHalf(ev fsnotify.Event, from string) bool {
	return filepath.Dir(from) == filepath.Dir(ev.Name) && strings.HasSuffix(ev.String(), " ← "+strconv.Quote(from))
}
