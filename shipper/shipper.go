// Package shipper is `sluice ship`: the node agent that tails log files and
// produces their lines to Kafka with at-least-once delivery.
//
// Data flows one way: the scanner discovers files by glob, one harvester per
// file reads lines from its acknowledged offset, and the producer hands them
// to Kafka. Acknowledgements flow back the same way: Kafka's ack for a line
// reaches the file's ackTracker, which moves the registry's offset only
// over lines acknowledged in order, and the registry is written to disk
// on an interval and at shutdown.
package shipper

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/sluicelog/sluice/internal/event"
	"github.com/sluicelog/sluice/internal/telemetry"
	"github.com/sluicelog/sluice/internal/template"
	"github.com/sluicelog/sluice/shipper/kubernetes"
)

// Shipper tails the configured inputs into Kafka.
type Shipper struct {
	cfg      Config
	log      *zap.Logger
	metrics  *metrics
	registry *registry
	// publisher takes the lines: producer (Kafka) unless WithPublisher.
	publisher Publisher
	producer  *producer // nil with another publisher
	budget    *inFlight
	stall     *telemetry.Progress // readiness: lines waiting and none acknowledged
	blocks    *event.BlockPool    // where harvesters build records
	readBufs  *readBuffers        // harvesters' read buffers
	topic     *template.Template
	inputs    []*input

	watcher *watcher
	scanNow chan struct{}

	mu         sync.Mutex
	harvesters map[devIno]*harvester
	byPath     map[string]*harvester
	// found is when a scan last found the file of each registry entry
	// (by id); clean_after counts from it.
	found map[string]time.Time
	// waitingSince is when each file waiting for max_open_files started
	// waiting; the longest-waiting are opened first.
	waitingSince map[devIno]time.Time
	// outside is the files to read that the globs may no longer find, by
	// where they live (outside.go).
	outside map[devIno]outsideFile
	// flushSoon asks flushLoop for an early registry write, when a new
	// file was named: it is then found at the next start even if it is
	// renamed out of the globs meanwhile.
	flushSoon chan struct{}
	// sentSync writes the registry for harvesters whose sent horizon must
	// be durable before they produce past it (horizon.go).
	sentSync *groupSync
	// replaced is the generations truncation replaced, whose copies are
	// recognised (copies.go).
	replaced replacedGens
	// refusals are the paths the inputs' file policy refused (opener.go).
	refusals *refusals
	// quotas are the namespaces' and pods' shares of the node (quota.go).
	quotas *quotas
	wg     sync.WaitGroup

	// waiting is how many files the last scan left waiting for
	// max_open_files, and waitingLag their unread bytes.
	waiting, waitingLag atomic.Int64
	lastWaitWarning     time.Time // owned by the scan loop

	fileErrs fileErrors // the last error of each file, for /files

	// kube is the pod metadata of container logs (kubernetes.enabled), and
	// kubeClient its API client.
	kube       *kubernetes.Store
	kubeClient kubeClient
}

// input is one configured input, compiled.
type input struct {
	cfg        InputConfig
	pathFields *pathFields
	filter     *lineFilter // include_lines and exclude_lines, if any
	opener     *opener
}

// New validates cfg and prepares a shipper; Run starts it. Without options
// it produces to Kafka.
func New(cfg Config, reg prometheus.Registerer, log *zap.Logger, opts ...Option) (*Shipper, error) {
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	log = log.Named("shipper")
	topic, err := template.Parse(cfg.Kafka.Topic)
	if err != nil {
		return nil, fmt.Errorf("kafka.topic: %w", err)
	}
	s := &Shipper{cfg: cfg, log: log, metrics: newMetrics(reg, cfg.inputTypes()...), topic: topic, harvesters: map[devIno]*harvester{},
		byPath: map[string]*harvester{}, scanNow: make(chan struct{}, 1)}
	for _, o := range opts {
		o(s)
	}
	s.refusals = newRefusals(log, func(reason string) { s.metrics.filesRefused.WithLabelValues(reason).Inc() })
	s.budget = newBudget(cfg.MaxInFlightBytes, s.metrics)
	s.quotas = newQuotas(cfg.Quotas, newQuotaMetrics(reg))
	s.stall = telemetry.NewProgress(telemetry.ProgressOptions{StallAfter: cfg.HTTP.StallAfter})
	s.stall.Register(reg, "shipper")
	s.blocks = event.NewBlockPool()
	s.readBufs = newReadBuffers()
	for _, in := range cfg.Inputs {
		ci := &input{cfg: in, opener: newOpener(in), filter: newLineFilter(&in)}
		if in.PathFields != "" {
			ci.pathFields, _ = compilePathFields(in.PathFields) // validated
		}
		s.inputs = append(s.inputs, ci)
	}
	if err := s.newKubernetes(reg); err != nil {
		return nil, err
	}
	reg2, recovered, err := openRegistry(cfg.Registry)
	if err != nil {
		return nil, err
	}
	if recovered != nil {
		log.Warn("registry recovered", zap.String("dir", cfg.Registry), zap.Error(recovered))
		s.metrics.registryRecoveries.Inc()
	}
	s.registry = reg2
	s.replaced.reg = reg2
	s.found, s.waitingSince = map[string]time.Time{}, map[devIno]time.Time{}
	s.outside, s.flushSoon = map[devIno]outsideFile{}, make(chan struct{}, 1)
	s.sentSync = newGroupSync()
	now := time.Now()
	for _, e := range reg2.snapshot() {
		s.found[e.ID] = now // clean_after counts from the start at the earliest
	}
	if s.publisher == nil {
		if s.producer, err = newProducer(cfg.Kafka, cfg.MaxInFlightBytes, log, s.metrics); err != nil {
			return nil, err
		}
		s.publisher = s.producer
	}
	return s, nil
}

// AddChecks registers the shipper's readiness checks, and its /files view.
func (s *Shipper) AddChecks(srv *telemetry.Server) {
	if s.producer != nil {
		srv.AddCheck("kafka", s.producer.ping)
	}
	srv.AddCheck("shipper_progress", s.stall.Check)
	srv.Handle("/files", s.FilesHandler())
}

// Run ships until ctx is done, then stops reading, waits up to
// ShutdownTimeout for in-flight lines and writes the registry.
func (s *Shipper) Run(ctx context.Context) error {
	fields := []zap.Field{zap.String("node", s.cfg.Node), zap.Int("inputs", len(s.inputs)), zap.String("registry", s.cfg.Registry)}
	if s.producer != nil {
		fields = append(fields, zap.Strings("brokers", s.cfg.Kafka.Brokers),
			zap.Bool("tls", s.cfg.Kafka.Security.TLS.Enabled), zap.String("sasl", s.cfg.Kafka.Security.SASL.Mechanism))
	}
	s.log.Info("shipper starting", fields...)
	for _, o := range s.cfg.Overlaps() {
		s.log.Warn("a file is matched by two inputs", zap.String("overlap", o))
	}
	// Fail at start on TLS or SASL settings Kafka refuses, before reading
	// anything: retrying those would only hide them.
	if s.producer != nil {
		if err := s.producer.check(ctx); err != nil {
			for _, c := range s.producer.clients { // every client, not only the first
				c.Close()
			}
			return err
		}
	}
	readCtx, stopReading := context.WithCancel(ctx)
	defer stopReading()
	flushDone := make(chan struct{})
	go func() {
		defer close(flushDone)
		s.flushLoop(readCtx)
	}()

	// Made here, not in New, so that its inotify goroutine lives only as
	// long as Run: a shipper made but never run (or whose Run failed
	// above) leaked it.
	s.watcher = newWatcher(s.log)
	kubeDone := s.runKubernetes(readCtx)
	watchDone := make(chan struct{})
	go s.watcher.run(readCtx, watchDone, s.written, s.requestScan, s.renamed)
	s.resumeRenamed()
	s.scan(readCtx)
	ticker := time.NewTicker(s.cfg.ScanInterval)
	defer ticker.Stop()
loop:
	for {
		select {
		case <-readCtx.Done():
			break loop
		case <-ticker.C:
		case <-s.scanNow:
		}
		s.scan(readCtx)
	}
	s.wg.Wait()
	<-flushDone
	<-watchDone
	<-kubeDone
	shutCtx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout)
	defer cancel()
	errFlush := s.publisher.Close(shutCtx)
	s.settleSent()
	errReg := s.writeRegistry()
	s.log.Info("shipper stopped")
	return errors.Join(errFlush, errReg)
}

// requestScan asks the scan loop for an early scan.
func (s *Shipper) requestScan() {
	select {
	case s.scanNow <- struct{}{}:
	default:
	}
}

// written wakes the harvester reading path, if any.
func (s *Shipper) written(path string) {
	s.mu.Lock()
	h := s.byPath[path]
	s.mu.Unlock()
	if h != nil {
		h.notify()
		return
	}
	// A file released by close_inactive, or new: the scan opens it now
	// rather than at the next scan_interval. Only for paths an input
	// matches, so that busy files outside the globs cause no scans.
	for _, in := range s.inputs {
		if in.match(path) {
			s.requestScan()
			return
		}
	}
}

// scan discovers files matching the inputs' globs and starts a harvester
// for each one not already being read that has something to read: a file
// read and acknowledged to its end (by its registry entry) and unchanged
// since is left closed. Files over max_open_files wait, longest-waiting
// first. Files followed outside the globs (outside.go) are candidates too.
// It returns where the files it found live.
func (s *Shipper) scan(ctx context.Context) map[devIno]bool {
	now := time.Now()
	known := s.registry.atDevIno
	claimed := map[devIno]bool{}
	type candidate struct {
		in    *input
		path  string
		di    devIno
		since time.Time
		lag   int64
		// outside is set for a file followed outside the globs.
		outside bool
	}
	var candidates []candidate
	for _, in := range s.inputs {
		paths := in.matches(s.log)
		s.watcher.watchDirs(in.cfg.Paths) // globs' own directories, when they are literal
		accepted := paths[:0]
		for _, path := range paths {
			fi := s.statKnown(in, path)
			if fi == nil {
				var err error
				if fi, err = in.opener.stat(path); err != nil {
					s.refusals.report(path, err)
					continue
				}
			}
			accepted = append(accepted, path)
			di, ok := statDevIno(fi)
			if !ok || claimed[di] {
				continue
			}
			claimed[di] = true
			s.mu.Lock()
			for _, e := range known(di) {
				s.found[e.ID] = now
			}
			h := s.harvesters[di]
			if h != nil {
				s.byPath[path] = h
			}
			s.mu.Unlock()
			if h != nil {
				h.seen(path, now)
				if h.scanned(fi.Size()) {
					h.notify()
				}
				continue
			}
			lag := fi.Size()
			if e := latest(known(di)); e != nil {
				if fi.Size() == e.Offset && !e.ReleasedModTime.IsZero() && fi.ModTime().Equal(e.ReleasedModTime) {
					continue // released at its end and unchanged since: nothing to open it for
				}
				lag = max(fi.Size()-e.Offset, 0)
			}
			s.mu.Lock()
			since, ok := s.waitingSince[di]
			if !ok {
				since = now
			}
			s.mu.Unlock()
			candidates = append(candidates, candidate{in: in, path: path, di: di, since: since, lag: lag})
		}
		// Only files the input may read: not a linked directory's.
		s.watcher.watchDirs(accepted)
	}
	s.refusals.sweep()
	for di, o := range s.outsideCandidates(claimed) {
		// Opened even when read to its end: the app may still write to
		// it, and its harvester follows it for close_removed_after.
		lag := int64(0)
		if fi, err := o.in.opener.stat(o.path); err == nil {
			lag = fi.Size()
		}
		s.mu.Lock()
		for _, e := range known(di) {
			s.found[e.ID] = now
		}
		s.mu.Unlock()
		if e := latest(known(di)); e != nil {
			lag = max(lag-e.Offset, 0)
		}
		candidates = append(candidates, candidate{in: o.in, path: o.path, di: di, since: o.since, lag: lag, outside: true})
	}
	slices.SortStableFunc(candidates, func(a, b candidate) int { return a.since.Compare(b.since) })
	waiting := map[devIno]time.Time{}
	var waitingLag int64
	for _, c := range candidates {
		if s.openFiles() >= s.cfg.MaxOpenFiles {
			waiting[c.di] = c.since
			waitingLag += c.lag
			// Remembered by where it lives, not by the globs: if it is
			// renamed out of them while it waits, it is still read.
			s.mu.Lock()
			s.follow(c.in, c.path, c.di, c.since)
			s.mu.Unlock()
			continue
		}
		if err := s.startHarvester(ctx, c.in, c.path, c.di, now); errors.Is(err, errMoved) || errors.Is(err, os.ErrNotExist) {
			// Renamed since the scan found it: the next scan finds it
			// where it lives now.
			s.mu.Lock()
			s.follow(c.in, c.path, c.di, c.since)
			s.mu.Unlock()
			continue
		} else if ref := (*refusal)(nil); errors.As(err, &ref) {
			// Swapped for what the input may not read since the scan.
			s.refusals.report(c.path, err)
			s.mu.Lock()
			delete(s.outside, c.di)
			s.mu.Unlock()
			continue
		} else if err != nil {
			s.log.Warn("cannot start reading file", zap.String("path", c.path), zap.Error(err))
			s.fileErrs.note(c.path, err)
			continue
		}
		s.mu.Lock()
		delete(s.outside, c.di)
		if h := s.harvesters[c.di]; h != nil && c.outside && !c.in.match(c.path) {
			// Known to be out of the globs: not a rotation this scan saw.
			h.goneNoticed.Store(true)
		}
		s.mu.Unlock()
	}
	s.mu.Lock()
	s.waitingSince = waiting
	s.mu.Unlock()
	s.waiting.Store(int64(len(waiting)))
	s.waitingLag.Store(waitingLag)
	s.metrics.filesWaiting.Set(float64(len(waiting)))
	if len(waiting) > 0 && now.Sub(s.lastWaitWarning) >= time.Minute {
		s.lastWaitWarning = now
		s.log.Warn("max_open_files reached: files wait for others to be released; files at their end are released at once while any wait",
			zap.Int("waiting", len(waiting)), zap.Int("max_open_files", s.cfg.MaxOpenFiles))
	}
	s.markGone(now)
	return claimed
}

// resumeRenamed follows, from the start, every file of the registry that
// still lives in the directory it was in, wherever it now is there (app.log
// renamed to app.log.1 while the shipper was stopped): its lines written
// before the rename and after the last registry write are not lost, nor
// are the app's late writes to it, even if it has no unread bytes now. The
// scan opens them (or leaves them waiting for max_open_files) with the
// files the globs find, which it takes out of this set.
func (s *Shipper) resumeRenamed() {
	now := time.Now()
	dirs := map[string]map[devIno]string{}
	for _, e := range s.registry.snapshot() {
		dir := filepath.Dir(e.Path)
		files, ok := dirs[dir]
		if !ok {
			files = filesByDevIno(dir)
			dirs[dir] = files
		}
		path, ok := files[e.DevIno]
		if !ok {
			continue // most of a large registry: files gone
		}
		in := s.inputFor(e)
		if in == nil {
			continue
		}
		// Only the same content: a file that got the inode of a deleted
		// one (a compressed rotation, say) is not this entry's, and a file
		// outside the globs is never read from its start unless it had no
		// first line yet when it was last seen.
		if (e.Fingerprint.Len == 0 && !e.Pending) || !s.sameContent(in, path, e) {
			continue
		}
		if path != e.Path && !in.match(path) {
			s.log.Info("following a file renamed while the shipper was stopped",
				zap.String("from", e.Path), zap.String("to", path), zap.Int64("offset", e.Offset))
		}
		s.mu.Lock()
		s.follow(in, path, e.DevIno, now)
		s.mu.Unlock()
	}
}

// sameContent reports whether the file at path starts with the bytes e was
// fingerprinted by.
func (s *Shipper) sameContent(in *input, path string, e registryEntry) bool {
	f, err := in.opener.openRead(path)
	if err != nil {
		return false
	}
	defer f.Close()
	ok, err := e.Fingerprint.matches(f)
	return err == nil && ok
}

// filesByDevIno lists the regular files in dir by where they live.
func filesByDevIno(dir string) map[devIno]string {
	out := map[devIno]string{}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return out
	}
	for _, de := range entries {
		if !de.Type().IsRegular() {
			continue
		}
		fi, err := de.Info()
		if err != nil {
			continue
		}
		if di, ok := statDevIno(fi); ok {
			out[di] = filepath.Join(dir, de.Name())
		}
	}
	return out
}

// inputFor returns the input an entry's file was read by: of its type, with
// a glob in its directory if there is one.
func (s *Shipper) inputFor(e registryEntry) *input {
	var typed *input
	for _, in := range s.inputs {
		if in.cfg.Type != e.Type {
			continue
		}
		for _, g := range in.cfg.Paths {
			if filepath.Dir(g) == filepath.Dir(e.Path) {
				return in
			}
		}
		if typed == nil {
			typed = in
		}
	}
	return typed
}

// markGone logs and counts, once, each file being read that this scan no
// longer found by the globs: renamed out of them or deleted. It is read to
// its end and released after close_removed_after.
func (s *Shipper) markGone(now time.Time) {
	s.mu.Lock()
	var gone []*harvester
	for _, h := range s.harvesters {
		if h.lastSeen.Load() < now.UnixNano() && !h.goneNoticed.Swap(true) {
			gone = append(gone, h)
		}
	}
	s.mu.Unlock()
	for _, h := range gone {
		s.metrics.rotations.Inc()
		h.log.Info("file no longer found by the globs (renamed away or deleted); reading it to its end",
			zap.String("path", h.currentPath()), zap.Int64("acked_offset", h.genp.Load().acks.offset()))
	}
}

// latest returns the most recently updated of entries, or nil.
func latest(entries []registryEntry) *registryEntry {
	var out *registryEntry
	for i := range entries {
		if out == nil || entries[i].Updated.After(out.Updated) {
			out = &entries[i]
		}
	}
	return out
}

// match reports whether path is one the input's globs find.
func (in *input) match(path string) bool {
	if in.excluded(path) {
		return false
	}
	for _, g := range in.cfg.Paths {
		if ok, _ := filepath.Match(g, path); ok {
			return true
		}
	}
	return false
}

// excluded reports whether an exclude glob matches path.
func (in *input) excluded(path string) bool {
	for _, ex := range in.cfg.Exclude {
		if ok, _ := filepath.Match(ex, path); ok {
			return true
		}
	}
	return false
}

// matches returns the paths the input's globs find, minus exclusions.
func (in *input) matches(log *zap.Logger) []string {
	var out []string
	for _, g := range in.cfg.Paths {
		paths, err := filepath.Glob(g)
		if err != nil {
			log.Warn("bad glob", zap.String("glob", g), zap.Error(err))
			continue
		}
		for _, p := range paths {
			if !in.excluded(p) {
				out = append(out, p)
			}
		}
	}
	return out
}

// errMoved is a file renamed between the scan that found it and its opening.
var errMoved = errors.New("file renamed while opening")

func (s *Shipper) startHarvester(ctx context.Context, in *input, path string, di devIno, now time.Time) error {
	f, err := in.opener.openRead(path)
	if err != nil {
		return fmt.Errorf("opening: %w", err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return fmt.Errorf("stat: %w", err)
	}
	if got, ok := statDevIno(fi); !ok || got != di {
		f.Close()
		return errMoved
	}
	fields := map[string]string{}
	for k, v := range in.cfg.Fields {
		fields[k] = v
	}
	if in.pathFields != nil {
		in.pathFields.extract(path, fields)
	}
	if in.cfg.Format == FormatCRI || in.cfg.Format == FormatDocker {
		kubernetesFields(path, fields)
	}
	h := &harvester{sh: s, input: in, f: f, di: di, fields: fields, fieldsHeader: event.EncodeFields(fields),
		wake: make(chan struct{}, 1), counters: s.metrics.forType(in.cfg.Type)}
	h.path.Store(&path)
	h.lastSeen.Store(now.UnixNano())
	h.lastData, h.grew = now, now
	probe := event.Event{Type: in.cfg.Type, Node: s.cfg.Node, Path: path, Fields: fields}
	h.topic = template.TopicName(s.topic.Render(probe.Field, now, template.TopicValue))
	h.attachPod(path, now)

	entry, err := s.registry.find(di, f)
	if err != nil {
		f.Close()
		return err
	}
	if entry != nil && !entry.Pending && fi.Size() >= entry.Offset {
		h.gen = &generation{id: entry.ID, fp: entry.Fingerprint, acks: newAckTracker(entry.Offset)}
		if len(entry.Streams) > 0 {
			h.gen.acks.resumeStreams(entry.Streams)
			h.rejoin = maps.Clone(entry.Streams)
		}
		h.genp.Store(h.gen)
		h.reader = newLineReader(f, entry.Offset, s.cfg.MaxLineBytes, s.readBufs)
		// The bytes before the offset the registry's fingerprint does not
		// cover were read in an earlier run: as they are now is the best
		// there is.
		if h.reader.head, err = readHead(f, entry.Offset); err != nil {
			f.Close()
			return err
		}
		h.resumeSent(entry, fi.Size())
		if entry.Path != path {
			s.registry.update(entry.ID, func(e *registryEntry) { e.Path = path })
		}
	} else {
		// A file never seen before is read from its start, unless it was
		// last written longer than ignore_older ago: then only what is
		// written from now on is read.
		start := int64(0)
		if s.cfg.IgnoreOlder > 0 && time.Since(fi.ModTime()) > s.cfg.IgnoreOlder {
			start = fi.Size()
		}
		h.reader = newLineReader(f, start, s.cfg.MaxLineBytes, s.readBufs)
		if err := s.newGeneration(h, start); err != nil {
			f.Close()
			return err
		}
	}
	h.reader.check = h.checkRead
	h.cri = newContainerAssembler(in.cfg.Format, s.cfg.MaxLineBytes)
	h.join = newJoiner(h.multilineConfig())
	h.lastSize = fi.Size()
	h.size.Store(fi.Size())
	h.log = s.log.With(zap.String("path", path), zap.String("file_id", h.gen.id), zap.String("type", in.cfg.Type))
	h.log.Info("reading file", zap.Int64("offset", h.reader.position()), zap.Int64("size", fi.Size()), zap.String("topic", h.topic))

	h.quota = s.quotas.forFile(fields)
	s.mu.Lock()
	s.harvesters[di] = h
	s.byPath[path] = h
	s.mu.Unlock()
	s.metrics.filesOpen.Inc()
	s.metrics.filesDiscovered.Inc()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		err := h.run(ctx)
		if err != nil && ctx.Err() == nil {
			h.log.Error("stopped reading file", zap.Error(err))
			s.fileErrs.note(h.currentPath(), err)
		}
		s.mu.Lock()
		delete(s.harvesters, di)
		for p, ph := range s.byPath {
			if ph == h {
				delete(s.byPath, p)
			}
		}
		s.mu.Unlock()
		s.metrics.filesOpen.Dec()
		h.quota.release()
		f.Close()
	}()
	return nil
}

func (s *Shipper) openFiles() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.harvesters)
}

// newGeneration gives h a new file generation starting at offset, which
// replaces any other on its inode: those are content that is gone
// (truncated, or a deleted file whose inode was reused). Read from 0, it is
// named by its first line once it has one (harvester.identify); from
// further on (ignore_older), by its first bytes now. Its id is derived
// from the file, so nothing waits for the registry to reach the disk.
func (s *Shipper) newGeneration(h *harvester, offset int64) error {
	var replaced []string
	for _, e := range s.registry.atDevIno(h.di) {
		s.registry.remove(e.ID)
		if !e.Pending {
			replaced = append(replaced, e.ID)
			s.replaced.add(e)
		}
	}
	if h.gen != nil && !h.gen.pending && !slices.Contains(replaced, h.gen.id) {
		replaced = append(replaced, h.gen.id)
	}
	if offset > 0 {
		head, err := readHead(h.f, offset)
		if err != nil {
			return err
		}
		h.reader.head = head
		h.gen = &generation{pending: true, replaced: replaced}
		h.identify(head, newAckTracker(offset))
		return nil
	}
	id := pendingID(h.di)
	gen := &generation{id: id, pending: true, replaced: replaced, acks: newAckTracker(0)}
	s.registry.put(registryEntry{ID: id, Pending: true, Path: h.currentPath(), Type: h.input.cfg.Type, DevIno: h.di})
	h.gen = gen
	h.genp.Store(gen)
	return nil
}

// flushLoop writes the registry every RegistryFlush, and updates the lag
// gauges and progress signals every signalInterval (or RegistryFlush if
// shorter), until ctx is done.
func (s *Shipper) flushLoop(ctx context.Context) {
	t := time.NewTicker(s.cfg.RegistryFlush)
	defer t.Stop()
	signals := time.NewTicker(min(s.cfg.RegistryFlush, signalInterval))
	defer signals.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.flushRegistry()
		case <-s.flushSoon:
			s.flushRegistry()
		case now := <-signals.C:
			s.updateLag(now)
		}
	}
}

// flushRegistry writes the registry and forgets files not found for
// clean_after.
func (s *Shipper) flushRegistry() {
	if err := s.writeRegistry(); err != nil {
		s.log.Error("writing registry", zap.Error(err))
	}
	s.cleanRegistry()
}

// signalInterval is how often the lag and progress signals are measured.
const signalInterval = time.Second

func (s *Shipper) writeRegistry() error {
	start := time.Now()
	err := s.registry.flush()
	s.metrics.registryWrite.Observe(time.Since(start).Seconds())
	if err != nil {
		s.metrics.registryFailures.Inc()
	}
	return err
}

// cleanRegistry forgets files that no harvester has and that no scan has
// found for CleanAfter.
func (s *Shipper) cleanRegistry() {
	now := time.Now()
	s.mu.Lock()
	live := map[string]bool{}
	for _, h := range s.harvesters {
		live[h.genp.Load().id] = true
	}
	var forget []registryEntry
	entries := s.registry.snapshot()
	ids := make(map[string]bool, len(entries))
	for _, e := range entries {
		ids[e.ID] = true
	}
	for id := range s.found {
		if !ids[id] { // forgotten, or replaced by a new generation
			delete(s.found, id)
		}
	}
	for _, e := range entries {
		found, ok := s.found[e.ID]
		if !ok {
			s.found[e.ID] = now // new since the last scan
			continue
		}
		if !live[e.ID] && now.Sub(found) > s.cfg.CleanAfter {
			forget = append(forget, e)
			delete(s.found, e.ID)
		}
	}
	s.mu.Unlock()
	for _, e := range forget {
		s.registry.remove(e.ID)
		s.log.Info("forgetting file not found for clean_after", zap.String("path", e.Path), zap.String("file_id", e.ID),
			zap.Duration("clean_after", s.cfg.CleanAfter))
	}
}

// updateLag measures the lag gauges, whether the shipper progresses and
// whether Kafka accepts, independently of reading: each open file's size
// is taken by fstat here (a harvester held back by the budget or an outage
// does not look), waiting files' lag by the last scan.
func (s *Shipper) updateLag(now time.Time) {
	s.mu.Lock() // held while stat-ing: a harvester's file is closed only after it leaves the map
	total, most := s.waitingLag.Load(), int64(0)
	for _, h := range s.harvesters {
		if fi, err := h.f.Stat(); err == nil {
			h.observeSize(h.genp.Load(), fi.Size())
		}
		lag := h.lag()
		total += lag
		most = max(most, lag)
	}
	s.mu.Unlock()
	s.metrics.lagBytes.Set(float64(total))
	s.metrics.lagMaxBytes.Set(float64(most))
	s.stall.Waiting(total)
	if s.producer != nil {
		s.producer.watch.check(now)
	}
}
