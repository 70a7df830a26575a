package geoip

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/fsnotify/fsnotify"
	"go.uber.org/zap"
)

// Filesystem events come in bursts (create, write, rename): a check runs
// once they have been quiet for settleDelay, and at the latest maxSettle
// after the first.
const (
	settleDelay = 200 * time.Millisecond
	maxSettle   = 2 * time.Second
)

// Run reloads the databases when their files change, until ctx is done or
// the Enricher is closed; without Config.Watch it returns at once. Call it
// once, typically in its own goroutine. A file that fails to load is
// logged and counted, and the previous database stays in use until the
// file changes again.
func (e *Enricher) Run(ctx context.Context) {
	if !e.watch {
		return
	}
	var events <-chan fsnotify.Event
	var errs <-chan error
	if w, err := e.watchDirs(); err != nil {
		e.log.Warn("geoip: cannot watch the database directories; relying on the periodic check",
			zap.Duration("check_interval", e.cfg.CheckInterval), zap.Error(err))
	} else {
		defer w.Close()
		events, errs = w.Events, w.Errors
	}
	st := newReloadState()
	e.reloadChanged(st) // catch up with changes made before the watch began
	tick := time.NewTicker(e.cfg.CheckInterval)
	defer tick.Stop()
	settle := time.NewTimer(time.Hour)
	settle.Stop()
	defer settle.Stop()
	var pending time.Time // first event not checked yet
	for {
		select {
		case <-ctx.Done():
			return
		case <-e.done:
			return
		case <-tick.C:
			e.reloadChanged(st)
		case <-settle.C:
			pending = time.Time{}
			e.reloadChanged(st)
		case ev, ok := <-events:
			switch {
			case !ok:
				events = nil
			case e.concerns(ev.Name):
				pending = debounce(settle, pending)
			}
		case err, ok := <-errs:
			if !ok {
				errs = nil
				continue
			}
			e.log.Warn("geoip: watching database files", zap.Error(err))
			pending = debounce(settle, pending) // an overflow loses events
		}
	}
}

// debounce arms settle for a check settleDelay after the latest event, but
// no later than maxSettle after the first one, pending (zero: none yet).
// It returns the time of the first event.
func debounce(settle *time.Timer, pending time.Time) time.Time {
	now := time.Now()
	if pending.IsZero() {
		pending = now
	}
	settle.Reset(min(settleDelay, max(0, maxSettle-now.Sub(pending))))
	return pending
}

// watchDirs watches the directories of the database files: files are usually
// replaced by rename, which a watch on the file itself would not follow.
func (e *Enricher) watchDirs() (*fsnotify.Watcher, error) {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, fmt.Errorf("creating watcher: %w", err)
	}
	for _, p := range e.paths() {
		if err := w.Add(filepath.Dir(p)); err != nil {
			w.Close()
			return nil, fmt.Errorf("watching %s: %w", filepath.Dir(p), err)
		}
	}
	return w, nil
}

func (e *Enricher) paths() []string {
	var out []string
	for _, p := range []string{e.cfg.City, e.cfg.ASN} {
		if p != "" {
			out = append(out, p)
		}
	}
	return out
}

// concerns reports whether an event on name may mean a database changed:
// the file itself, or Kubernetes' ..data symlink and ..timestamp
// directories behind a mounted ConfigMap, Secret or projected volume.
func (e *Enricher) concerns(name string) bool {
	base := filepath.Base(name)
	if strings.HasPrefix(base, "..") {
		return true
	}
	for _, p := range e.paths() {
		if filepath.Clean(name) == filepath.Clean(p) {
			return true
		}
	}
	return false
}

// reloadState is what Run remembers between checks.
type reloadState struct {
	failed  map[string]os.FileInfo // by database: the file version that failed to load
	missing map[string]bool        // by database: the file could not be found (already logged)
}

func newReloadState() *reloadState {
	return &reloadState{failed: map[string]os.FileInfo{}, missing: map[string]bool{}}
}

// reloadChanged loads the databases whose files changed since they were
// loaded and, if any did, swaps in a new generation with an empty cache.
func (e *Enricher) reloadChanged(st *reloadState) {
	old := e.gen.Load()
	if old == nil {
		return
	}
	next := *old
	var fresh []*database
	for _, slot := range []**database{&next.city, &next.asn} {
		if *slot == nil {
			continue
		}
		if d := e.reload(*slot, st); d != nil {
			*slot = d
			fresh = append(fresh, d)
		}
	}
	if len(fresh) == 0 {
		return
	}
	next.cache = newCache(e.cfg.CacheSize)
	if !e.gen.CompareAndSwap(old, &next) {
		return // closed meanwhile
	}
	for _, d := range fresh {
		e.m.reloadOK.Inc()
		e.loaded(d)
	}
}

// reload returns d's file loaded anew if it changed and loads, else nil.
func (e *Enricher) reload(d *database, st *reloadState) *database {
	fi, err := os.Stat(d.path)
	if err != nil {
		// Being replaced, or gone: keep what is loaded.
		if !st.missing[d.name] {
			st.missing[d.name] = true
			e.log.Warn("geoip: database file not found; keeping the loaded one",
				zap.String("database", d.name), zap.String("path", d.path), zap.Error(err))
		}
		return nil
	}
	delete(st.missing, d.name)
	if sameVersion(fi, d.file) || sameVersion(fi, st.failed[d.name]) {
		return nil
	}
	nd, err := loadDatabase(d.name, d.path)
	if err != nil {
		st.failed[d.name] = fi
		e.m.reloadErrors.Inc()
		e.log.Error("geoip: database reload failed; keeping the previous one",
			zap.String("database", d.name), zap.String("path", d.path), zap.Error(err))
		return nil
	}
	delete(st.failed, d.name)
	return nd
}

// sameVersion reports whether a and b describe the same file, unchanged.
func sameVersion(a, b os.FileInfo) bool {
	return a != nil && b != nil && os.SameFile(a, b) &&
		a.Size() == b.Size() && a.ModTime().Equal(b.ModTime())
}
