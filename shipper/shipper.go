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
	budget    *budget
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
	wg           sync.WaitGroup

	// waiting is how many files the last scan left waiting for
	// max_open_files, and waitingLag their unread bytes.
	waiting, waitingLag atomic.Int64
	lastWaitWarning     time.Time // owned by the scan loop

	fileErrs fileErrors // the last error of each file, for /files
}

// input is one configured input, compiled.
type input struct {
	cfg        InputConfig
	pathFields *pathFields
}

// New validates cfg and prepares a shipper; Run starts it. Without options
// it produces to Kafka.
func New(cfg Config, reg prometheus.Registerer, log *zap.Logger, opts ...Option) (*Shipper, error) {
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	topic, err := template.Parse(cfg.Kafka.Topic)
	if err != nil {
		return nil, fmt.Errorf("kafka.topic: %w", err)
	}
	s := &Shipper{cfg: cfg, log: log, metrics: newMetrics(reg, cfg.inputTypes()...), topic: topic, harvesters: map[devIno]*harvester{},
		byPath: map[string]*harvester{}, scanNow: make(chan struct{}, 1), watcher: newWatcher(log)}
	for _, o := range opts {
		o(s)
	}
	s.budget = newBudget(cfg.MaxInFlightBytes, s.metrics)
	s.stall = telemetry.NewProgress(telemetry.ProgressOptions{StallAfter: cfg.HTTP.StallAfter})
	s.stall.Register(reg, "shipper")
	s.blocks = event.NewBlockPool()
	s.readBufs = newReadBuffers()
	for _, in := range cfg.Inputs {
		ci := &input{cfg: in}
		if in.PathFields != "" {
			ci.pathFields, _ = compilePathFields(in.PathFields) // validated
		}
		s.inputs = append(s.inputs, ci)
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
	s.found, s.waitingSince = map[string]time.Time{}, map[devIno]time.Time{}
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
			s.producer.client.Close()
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

	go s.watcher.run(readCtx, s.written, s.requestScan)
	s.resumeRenamed(readCtx, s.scan(readCtx))
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
	shutCtx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout)
	defer cancel()
	errFlush := s.publisher.Close(shutCtx)
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
// first.
// It returns where the files it found live.
func (s *Shipper) scan(ctx context.Context) map[devIno]bool {
	now := time.Now()
	known := s.registry.byDevIno()
	claimed := map[devIno]bool{}
	type candidate struct {
		in    *input
		path  string
		di    devIno
		since time.Time
		lag   int64
	}
	var candidates []candidate
	for _, in := range s.inputs {
		paths := in.matches(s.log)
		s.watcher.watchDirs(paths)
		s.watcher.watchDirs(in.cfg.Paths) // globs' own directories, when they are literal
		for _, path := range paths {
			fi, err := os.Stat(path)
			if err != nil || !fi.Mode().IsRegular() {
				continue
			}
			di, ok := statDevIno(fi)
			if !ok || claimed[di] {
				continue
			}
			claimed[di] = true
			s.mu.Lock()
			for _, e := range known[di] {
				s.found[e.ID] = now
			}
			h := s.harvesters[di]
			if h != nil {
				s.byPath[path] = h
			}
			s.mu.Unlock()
			if h != nil {
				h.seen(path, now)
				h.notify()
				continue
			}
			lag := fi.Size()
			if e := latest(known[di]); e != nil {
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
	}
	slices.SortStableFunc(candidates, func(a, b candidate) int { return a.since.Compare(b.since) })
	waiting := map[devIno]time.Time{}
	var waitingLag int64
	for _, c := range candidates {
		if s.openFiles() >= s.cfg.MaxOpenFiles {
			waiting[c.di] = c.since
			waitingLag += c.lag
			continue
		}
		if err := s.startHarvester(ctx, c.in, c.path, c.di, now); err != nil {
			s.log.Warn("cannot start reading file", zap.String("path", c.path), zap.Error(err))
			s.fileErrs.note(c.path, err)
		}
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

// resumeRenamed reads to their end the files renamed out of the globs while
// the shipper was stopped (app.log to app.log.1 with *.log), found by their
// registry entry in the directory they were in: their lines written before
// the rename are not lost. found is where the first scan found files.
func (s *Shipper) resumeRenamed(ctx context.Context, found map[devIno]bool) {
	now := time.Now()
	dirs := map[string]map[devIno]string{}
	for _, e := range s.registry.snapshot() {
		if found[e.DevIno] {
			continue
		}
		dir := filepath.Dir(e.Path)
		files, ok := dirs[dir]
		if !ok {
			files = filesByDevIno(dir)
			dirs[dir] = files
		}
		path, ok := files[e.DevIno]
		in := s.inputFor(e)
		if !ok || in == nil {
			continue
		}
		s.mu.Lock()
		open := s.harvesters[e.DevIno] != nil
		s.mu.Unlock()
		fi, err := os.Stat(path)
		if open || err != nil || fi.Size() <= e.Offset || s.openFiles() >= s.cfg.MaxOpenFiles {
			continue
		}
		// Only the same content: a file that got the inode of a deleted
		// one (a compressed rotation, say) is not this entry's, and a file
		// outside the globs is never read from its start.
		if e.Fingerprint.Len == 0 || !s.sameContent(path, e) {
			continue
		}
		s.log.Info("reading to its end a file renamed while the shipper was stopped",
			zap.String("from", e.Path), zap.String("to", path), zap.Int64("offset", e.Offset), zap.Int64("size", fi.Size()))
		if err := s.startHarvester(ctx, in, path, e.DevIno, now); err != nil {
			s.log.Warn("cannot start reading file", zap.String("path", path), zap.Error(err))
		}
	}
}

// sameContent reports whether the file at path starts with the bytes e was
// fingerprinted by.
func (s *Shipper) sameContent(path string, e registryEntry) bool {
	f, err := os.Open(path)
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

func (s *Shipper) startHarvester(ctx context.Context, in *input, path string, di devIno, now time.Time) error {
	f, err := os.Open(path)
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
		return fmt.Errorf("file replaced while opening")
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

	entry, err := s.registry.find(di, f)
	if err != nil {
		f.Close()
		return err
	}
	if entry != nil && fi.Size() >= entry.Offset {
		h.gen = &generation{id: entry.ID, fp: entry.Fingerprint, acks: newAckTracker(entry.Offset)}
		h.genp.Store(h.gen)
		h.reader = newLineReader(f, entry.Offset, s.cfg.MaxLineBytes, s.readBufs)
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
		if err := s.newGeneration(h, start); err != nil {
			f.Close()
			return err
		}
		h.reader = newLineReader(f, start, s.cfg.MaxLineBytes, s.readBufs)
	}
	h.cri = newContainerAssembler(in.cfg.Format, s.cfg.MaxLineBytes)
	h.lastSize = fi.Size()
	h.size.Store(fi.Size())
	h.log = s.log.With(zap.String("path", path), zap.String("file_id", h.gen.id), zap.String("type", in.cfg.Type))
	h.log.Info("reading file", zap.Int64("offset", h.reader.position()), zap.Int64("size", fi.Size()), zap.String("topic", h.topic))

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
		f.Close()
	}()
	return nil
}

func (s *Shipper) openFiles() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.harvesters)
}

// newGeneration gives h a new file generation starting at offset and
// writes it to the registry at once, so that the id its lines are sent
// under survives a crash.
func (s *Shipper) newGeneration(h *harvester, offset int64) error {
	fp, err := readFingerprint(h.f)
	if err != nil {
		return err
	}
	gen := &generation{id: newFileID(h.di, time.Now()), fp: fp, acks: newAckTracker(offset)}
	s.registry.put(registryEntry{ID: gen.id, Path: h.currentPath(), Type: h.input.cfg.Type, DevIno: h.di, Fingerprint: fp, Offset: offset})
	// Earlier generations on the same inode are content that is gone
	// (truncated, or a deleted file whose inode was reused).
	for _, e := range s.registry.byDevIno()[h.di] {
		if e.ID != gen.id {
			s.registry.remove(e.ID)
		}
	}
	if err := s.writeRegistry(); err != nil {
		return err
	}
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
			if err := s.writeRegistry(); err != nil {
				s.log.Error("writing registry", zap.Error(err))
			}
			s.cleanRegistry()
		case now := <-signals.C:
			s.updateLag(now)
		}
	}
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
