package main

import (
	"context"
	"crypto/sha256"
	"os"
	"path/filepath"
	"time"

	"github.com/fsnotify/fsnotify"
	"go.uber.org/zap"
)

// fileWatchPoll is how often reload.watch reads the configuration file
// besides when its directory changes: a safety net for file systems
// without inotify events.
const fileWatchPoll = 15 * time.Second

// fileWatchSettle is how long the watch waits after a change in the
// directory before reading the file, so that a swap made of several steps
// is read once, complete.
const fileWatchSettle = 100 * time.Millisecond

// watchFile calls changed with the new content's hash each time the
// content of the file at path changes from last, until ctx ends.
//
// It watches the file's directory, not the file: a Kubernetes ConfigMap
// volume holds path as a symlink to ..data/NAME, ..data a symlink to a
// timestamped directory; an update writes a new timestamped directory
// and renames a new ..data symlink over the old one, so the file path
// never changes while what it reads does. Editors that save by renaming
// a new file over the old one are the same case. Comparing content
// hashes ignores the events that change nothing (the old directory's
// removal, a touch).
func watchFile(ctx context.Context, path string, last [sha256.Size]byte, poll time.Duration, log *zap.Logger,
	changed func([sha256.Size]byte)) {
	w, err := fsnotify.NewWatcher()
	if err == nil {
		if err = w.Add(filepath.Dir(path)); err != nil {
			w.Close()
		}
	}
	var events <-chan fsnotify.Event
	var errs <-chan error
	if err != nil {
		log.Warn("reload.watch: cannot watch the configuration's directory; reading the file every "+poll.String()+" instead",
			zap.String("path", path), zap.Error(err))
	} else {
		defer w.Close()
		events, errs = w.Events, w.Errors
	}
	log.Info("reload.watch: watching the configuration file", zap.String("path", path))
	tick := time.NewTicker(poll)
	defer tick.Stop()
	var settle <-chan time.Time
	check := func() {
		data, err := os.ReadFile(path)
		if err != nil {
			// Mid-swap, or removed: the next event or tick reads it again.
			log.Debug("reload.watch: reading the configuration file", zap.Error(err))
			return
		}
		if h := sha256.Sum256(data); h != last {
			last = h
			changed(h)
		}
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-events:
			if settle == nil {
				settle = time.After(fileWatchSettle)
			}
		case <-settle:
			settle = nil
			check()
		case err := <-errs:
			log.Warn("reload.watch: watching the configuration's directory", zap.Error(err))
		case <-tick.C:
			check()
		}
	}
}
