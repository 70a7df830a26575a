package shipper

import (
	"context"
	"path/filepath"
	"strings"

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
// the scan loop only.
func (w *watcher) watchDirs(paths []string) {
	if w.fs == nil {
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
// created() for new files.
func (w *watcher) run(ctx context.Context, written func(string), created func()) {
	if w.fs == nil {
		return
	}
	defer w.fs.Close()
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-w.fs.Events:
			if !ok {
				return
			}
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
