package shipper

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/sluicelog/sluice/internal/event"
	"github.com/sluicelog/sluice/internal/tap"
)

// harvester reads one file from its acknowledged offset to its end and
// keeps following it: new lines, truncation, rename and removal.
type harvester struct {
	sh    *Shipper
	input *input
	f     *os.File
	di    devIno
	log   *zap.Logger

	fields       map[string]string
	fieldsHeader []byte
	topic        string
	pod          *podMeta // a container log's pod metadata (podmeta.go), if watched

	path     atomic.Pointer[string]
	lastSeen atomic.Int64 // unix nanos of the last scan that found the file
	// goneNoticed is set once a scan did not find the file any more.
	goneNoticed atomic.Bool
	wake        chan struct{}
	size        atomic.Int64               // last size seen, for the lag metric
	genp        atomic.Pointer[generation] // gen, for the lag metric
	// sizeMu guards lastSize, the largest size the file was seen to have
	// in this generation (by the harvester or the lag timer): what was
	// written, read or not, when it is truncated.
	sizeMu   sync.Mutex
	lastSize int64

	// Owned by the run goroutine.
	cri  *criAssembler // set for inputs of format cri
	join *joiner       // set for inputs with multiline
	// rejoin is, for a joined container log resumed from the registry, the
	// ends of its streams' events acknowledged past the offset
	// (registryEntry.Streams): lines before them are not shipped again.
	rejoin   map[string]int64
	enc      *event.Encoder
	encPath  *string // the path enc was built for
	burst    *burst  // the open burst, if any
	counters typeCounters
	gen      *generation
	reader   *lineReader
	lastData time.Time
	// grownTo is the read position when the harvester last found it
	// changed, at grew.
	grownTo int64
	grew    time.Time
	// copySeen is when the generation being named was first checked
	// against the files read so far (skipCopied): the start of its wait,
	// if it waits. Zero again once it is named or replaced. copyGrew is
	// when it was last seen grown as a copy still being written, to
	// copySize.
	copySeen, copyGrew time.Time
	copySize           int64
	sent               sentHorizon
	// restarts spaces out generations of a file truncated again and again.
	restarts restartLimiter
	// quota is the file's share of the node (quota.go), nil for none.
	quota *fileQuota
	// grant is the budget taken for this turn not yet used by a line, and
	// turnOver ends the turn early (turn.go).
	grant             int64
	granted, turnOver bool
	// scanSize is the file's size at the last scan (poll.go).
	scanSize atomic.Int64
}

// generation is one content generation of a file: a new one starts when the
// file is truncated.
type generation struct {
	id string
	// pending is set while a generation read from offset 0 has no
	// complete first line: id is then pendingID, under which nothing is
	// shipped, and identify names it before its first line is.
	pending bool
	// replaced is the ids of the generations this one replaced on the same
	// inode, which its own id must differ from.
	replaced []string
	fp       fingerprint
	acks     *ackTracker
}

// errReplaced is a read's bytes not being the file's any more: it was
// truncated or rewritten in place.
var errReplaced = errors.New("file truncated or rewritten in place")

func (h *harvester) currentPath() string { return *h.path.Load() }

func (h *harvester) seen(path string, now time.Time) {
	if old := h.currentPath(); old != path {
		h.path.Store(&path)
		h.sh.registry.update(h.genp.Load().id, func(e *registryEntry) { e.Path = path })
		h.log.Info("file renamed", zap.String("from", old), zap.String("to", path))
		h.sh.metrics.rotations.Inc()
	}
	h.lastSeen.Store(now.UnixNano())
	h.goneNoticed.Store(false)
}

// notify wakes the harvester early (new data or a scan).
func (h *harvester) notify() {
	select {
	case h.wake <- struct{}{}:
	default:
	}
}

func (h *harvester) run(ctx context.Context) error {
	if err := h.sh.publisher.Prepare(ctx, h.topic); err != nil {
		return err
	}
	h.sh.budget.readers.Add(1)
	defer h.sh.budget.readers.Add(-1)
	const minPoll = 25 * time.Millisecond
	poll := minPoll
	for {
		if !h.restarts.hold(ctx) {
			return nil
		}
		// Before reading on: a file truncated or rewritten in place since
		// the last look, even one that grew past the offset read, starts
		// again from 0, rather than its new bytes being read from the old
		// offset under the old identity.
		size, err := h.checkReplaced(ctx)
		if err != nil {
			return err
		}
		progressed, err := h.readAvailable(ctx)
		if err != nil {
			return err
		}
		if progressed {
			poll = minPoll
			continue
		}
		// Nothing to read now: the encoder's block and the read buffer
		// can serve other files meanwhile.
		if h.enc != nil {
			h.enc.Idle()
		}
		h.reader.idle()
		if h.cri != nil {
			h.cri.idle()
		}
		if h.join != nil {
			h.join.idle()
		}
		if size < 0 {
			continue // started again from 0
		}
		release, err := h.idle(ctx, size)
		if err != nil || release {
			return err
		}
		t := time.NewTimer(h.pollWait(poll))
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-h.wake:
			t.Stop()
		case <-t.C:
			poll = min(poll*2, h.maxPoll())
		}
	}
}

// readBurst bounds the lines read from one file before other files get a
// turn.
const readBurst = 4096

// readAvailable ships the complete lines available now, up to readBurst.
func (h *harvester) readAvailable(ctx context.Context) (bool, error) {
	n := 0
	if err := h.quota.wait(ctx); err != nil {
		return false, nil
	}
	if err := h.beginTurn(ctx); err != nil {
		return false, nil
	}
	defer h.endTurn()
	now := time.Now() // one read time per burst: reading the clock per line is measurable
	defer h.closeBurst()
	over := false // the pod went over its quota: other files' turn
	for n < readBurst && !over && h.turnLeft() {
		if ctx.Err() != nil {
			return false, nil
		}
		l, ok, err := h.reader.next()
		if errors.Is(err, errReplaced) {
			// Starts the new generation; should the file start with
			// what was read again by now, the read is simply retried.
			h.closeBurst()
			_, err := h.checkReplaced(ctx)
			return true, err
		}
		if err != nil {
			return n > 0, fmt.Errorf("reading %s: %w", h.currentPath(), err)
		}
		if !ok {
			break
		}
		if h.gen.pending {
			if skip, wait := h.skipCopied(); wait {
				break
			} else if skip {
				continue
			}
		}
		if h.cri != nil {
			for _, c := range h.cri.add(l) {
				o, err := h.emit(ctx, c, now)
				if err != nil {
					return false, nil // ctx done: stop, the registry keeps the line
				}
				over = over || o
				n++
			}
			continue
		}
		o, err := h.emit(ctx, l, now)
		if err != nil {
			return false, nil // ctx done: stop, the registry keeps the line
		}
		over = o
		n++
	}
	if err := h.flushJoinedDue(ctx, now); err != nil {
		return false, nil
	}
	if n > 0 {
		h.lastData = time.Now()
	}
	return n > 0, nil
}

// ship produces one line, as part of the open burst.
func (h *harvester) ship(ctx context.Context, l line, flags []string, now time.Time) error {
	if err := h.reserveSent(ctx, l.End); err != nil {
		return err
	}
	if h.resent(l.Start) {
		flags = append(flags, event.FlagResent)
	}
	reserved := int64(len(l.Data)) + recordOverhead
	budget := h.sh.budget
	if err := h.reserve(ctx, reserved); err != nil {
		return err
	}
	if h.gen.pending {
		h.identify(h.reader.head, h.gen.acks)
	}
	if l.Truncated {
		flags = append(flags, event.FlagTruncated)
		h.counters.cut.Inc()
	}
	ev := event.Event{
		Type:     h.docType(),
		Node:     h.sh.cfg.Node,
		Path:     h.currentPath(),
		FileID:   h.gen.id,
		Offset:   l.Start,
		ReadTime: now,
		Fields:   h.fields,
		Flags:    flags,
		Stream:   l.Stream,
		LogTime:  l.LogTime,
		Line:     l.Data, // copied by the encoder
	}
	tap.Line(&ev)
	if p := h.path.Load(); h.enc == nil || p != h.encPath {
		h.dropEncoder()
		h.enc, h.encPath = event.NewPooledEncoder(h.currentTopic(), &ev, h.fieldsHeader, h.sh.blocks), p
	}
	if h.burst == nil {
		h.burst = h.openBurst(now)
	}
	b := h.burst
	lines, lineBytes, end, held := b.lines, b.lineBytes, b.end, b.reserved
	n, resume := l.covered()
	b.add(n, resume, reserved) // before publishing: the ack may come at once
	rec := h.enc.Record(&ev)
	b.hold(h.enc.Block())
	if err := h.sh.publisher.Publish(ctx, rec, b.acked); err != nil {
		// Not taken (ctx done): the line stays unacknowledged, and the
		// registry never moves past it.
		b.pending.Add(-1)
		b.lines, b.lineBytes, b.end, b.reserved = lines, lineBytes, end, held
		budget.release(reserved)
		return err
	}
	h.ended(b, l)
	if b.reserved >= budget.max/4 {
		h.closeBurst() // so that the budget comes back in steps
	}
	return nil
}

// dropEncoder lets go of the encoder and its block, if any.
func (h *harvester) dropEncoder() {
	if h.enc != nil {
		h.enc.Idle()
		h.enc = nil
	}
}

// closeBurst closes the open burst, if any.
func (h *harvester) closeBurst() {
	if h.burst != nil {
		h.burst.close()
		h.burst = nil
	}
}

// idle runs when no complete line is available, with the file's size as
// checked for truncation before the read: it ships a long-unterminated
// final line, extends a short fingerprint, and decides whether the file is
// released (gone from the globs, or inactive).
func (h *harvester) idle(ctx context.Context, size int64) (release bool, err error) {
	if head := h.reader.head; !h.gen.pending && int64(len(head)) > h.gen.fp.Len {
		fp := fingerprintOf(head)
		h.gen.fp = fp
		h.sh.registry.update(h.gen.id, func(e *registryEntry) { e.Fingerprint = fp })
	}
	// An unterminated tail waits unterminated_line_after from when it
	// last grew, not from the last whole line: a line written in two
	// pieces after a quiet spell is not split.
	if pos := h.reader.readPosition(); pos != h.grownTo {
		h.grownTo, h.grew = pos, time.Now()
	}
	if time.Since(h.grew) >= h.sh.cfg.UnterminatedLineAfter {
		if err := h.flushUnterminated(ctx); err != nil {
			return false, nil
		}
	}
	gone := time.Since(time.Unix(0, h.lastSeen.Load()))
	atEnd := !h.reader.pending() && h.reader.readPosition() >= size && (h.cri == nil || !h.cri.pending()) && !h.joinPending()
	if gone >= h.sh.cfg.CloseRemovedAfter && atEnd && time.Since(h.lastData) >= h.sh.cfg.CloseRemovedAfter {
		h.log.Info("releasing file no longer found by the inputs' globs", zap.Int64("offset", h.reader.position()))
		return true, nil
	}
	// A file read and acknowledged to its end gives up its handle after
	// close_inactive, or at once while other files wait for a slot; the
	// scan opens it again when it changes.
	if atEnd && h.gen.acks.offset() >= h.reader.position() {
		waiting := h.sh.waiting.Load() > 0
		if waiting || time.Since(h.grew) >= h.sh.cfg.CloseInactive {
			// Its entry keeps the file's modification time, so that the
			// scan leaves it closed until it changes.
			var mtime time.Time
			if fi, err := h.f.Stat(); err == nil && fi.Size() == h.reader.position() {
				mtime = fi.ModTime()
			}
			h.sh.registry.update(h.gen.id, func(e *registryEntry) { e.ReleasedModTime = mtime })
			h.log.Info("releasing inactive file", zap.Int64("offset", h.reader.position()),
				zap.Bool("files_waiting", waiting), zap.Duration("inactive", time.Since(h.grew).Round(time.Millisecond)))
			h.sh.requestScan()
			return true, nil
		}
	}
	return false, nil
}

// checkReplaced starts the file again from offset 0 as a new generation if
// it was truncated or rewritten in place (its first bytes changed). It
// returns the file's size, or -1 if it started again.
func (h *harvester) checkReplaced(ctx context.Context) (int64, error) {
	fi, err := h.f.Stat()
	if err != nil {
		return 0, fmt.Errorf("stat %s: %w", h.currentPath(), err)
	}
	size := fi.Size()
	h.observeSize(h.gen, size)
	truncated, err := h.truncated(size)
	if err != nil || !truncated {
		return size, err
	}
	if err := h.flushJoined(ctx); err != nil {
		return -1, nil // ctx done: the registry keeps the joined lines
	}
	return -1, h.restartGeneration(size)
}

// flushUnterminated ships a final line that waited long enough for its
// newline (or, in a container log, for its final piece).
func (h *harvester) flushUnterminated(ctx context.Context) error {
	l, ok := h.reader.flushPartial()
	lines := []line(nil)
	if ok {
		lines = []line{l}
	}
	if h.cri != nil {
		if ok {
			lines = append([]line(nil), h.cri.add(l)...)
		}
		lines = append(lines, h.cri.flush()...)
	}
	if len(lines) == 0 {
		return nil
	}
	defer h.closeBurst()
	for _, l := range lines {
		l.Flags = append(l.Flags, event.FlagUnterminated)
		if _, err := h.emit(ctx, l, time.Now()); err != nil {
			return err
		}
	}
	h.lastData = time.Now()
	return nil
}

// truncated reports whether the file is now shorter than what was read, or
// no longer starts with the bytes read from it.
func (h *harvester) truncated(size int64) (bool, error) {
	if size < h.reader.readPosition() {
		return true, nil
	}
	ok, err := startsWith(h.f, h.reader.head)
	if err != nil {
		return false, fmt.Errorf("checking %s: %w", h.currentPath(), err)
	}
	return !ok, nil
}

// restartGeneration starts reading a truncated file again from offset 0 as
// a new generation, counting what was written but never read.
func (h *harvester) restartGeneration(size int64) error {
	// Lost: what the file was last seen to hold past the last line shipped
	// (a line read but not yet whole is lost too), but for what a copy the
	// inputs read holds: that is read from the copy.
	copied := h.sh.copiedTo(h.di, h.reader.head)
	h.sizeMu.Lock()
	lost := h.lastSize - max(h.reader.position(), copied)
	h.sizeMu.Unlock()
	if lost > 0 {
		h.sh.metrics.truncatedBytesLost.Add(float64(lost))
	}
	h.sh.metrics.truncations.Inc()
	wait := h.restarts.restarted(time.Now())
	h.log.Warn("file truncated; reading it again from the start",
		zap.Int64("read_offset", h.reader.readPosition()), zap.Int64("size", size), zap.Int64("copied_bytes", copied), zap.Int64("unread_bytes_lost", max(lost, 0)),
		zap.Duration("waiting_before_reading", wait), zap.String("first_line", idLineHash(h.gen.id)))
	// Its copy, if it was copied before the truncation, is read from here.
	h.sh.replaced.add(registryEntry{ID: h.gen.id, Path: h.currentPath(), Type: h.input.cfg.Type, DevIno: h.di,
		Fingerprint: fingerprintOf(h.reader.head), Offset: h.reader.position(), Marks: h.reader.checks()})
	h.reader.reset(0)
	h.copySeen = time.Time{}
	if err := h.sh.newGeneration(h, 0); err != nil {
		return err
	}
	h.dropEncoder() // the file id changed
	if h.cri != nil {
		h.cri.reset() // pieces of the old content, like the reader's partial line
	}
	if h.join != nil {
		h.join.reset() // shipped by checkReplaced, unless it stopped
	}
	h.rejoin = nil
	h.sizeMu.Lock()
	h.lastSize = 0 // sizes seen under the old generation no longer count
	h.sizeMu.Unlock()
	return nil
}

// observeSize records size, the file's size seen now, for gen; a size seen
// under a generation since replaced is dropped.
func (h *harvester) observeSize(gen *generation, size int64) {
	h.sizeMu.Lock()
	defer h.sizeMu.Unlock()
	if h.genp.Load() != gen {
		return
	}
	h.size.Store(size)
	h.lastSize = max(h.lastSize, size)
}

// lag is the file's size minus its acknowledged offset; safe to call from
// any goroutine.
func (h *harvester) lag() int64 {
	return max(h.size.Load()-h.genp.Load().acks.offset(), 0)
}

// checkRead is the reader's check after every read: the file must still
// start with the bytes read from it.
func (h *harvester) checkRead(head []byte) error {
	ok, err := startsWith(h.f, head)
	if err != nil {
		return fmt.Errorf("checking %s: %w", h.currentPath(), err)
	}
	if !ok {
		return errReplaced
	}
	return nil
}

// identify names the generation by its first bytes, head, before its first
// line is shipped, and records it in the registry for the next flush: the
// id is derived from the file, so no flush needs to wait for it.
func (h *harvester) identify(head []byte, acks *ackTracker) {
	id := fileID(h.di, head)
	var replaced []string
	if h.gen != nil {
		replaced = h.gen.replaced
	}
	if slices.Contains(replaced, id) {
		// New content whose first line repeats the old one's (a
		// copytruncate of a file with a constant header): the same id
		// would make its lines overwrite the old ones in the index.
		id = fmt.Sprintf("%s-%x", id, time.Now().UnixNano())
	}
	fp := fingerprintOf(head)
	gen := &generation{id: id, fp: fp, acks: acks}
	if h.gen != nil && h.gen.pending {
		h.sh.registry.remove(h.gen.id)
	}
	h.sh.registry.put(registryEntry{ID: id, Path: h.currentPath(), Type: h.input.cfg.Type, DevIno: h.di, Fingerprint: fp, Offset: acks.offset()})
	h.gen = gen
	h.genp.Store(gen)
	h.copySeen = time.Time{}
	h.dropEncoder()
	select {
	case h.sh.flushSoon <- struct{}{}:
	default:
	}
	// h.log is read by the scan too: it keeps the id it was made with
	// (pending for a file read from 0), and this names the file's id.
	if h.log != nil {
		h.log.Debug("file named by its first line", zap.String("named", id), zap.Int("head_bytes", len(head)))
	}
}

// skipCopied runs before the first line of a new generation read from 0 is
// shipped: if the file is a copy of one read so far (copytruncate, see
// copies.go), it names the generation and moves the reader to where the
// original was read to (skip). While it cannot tell yet (its original is
// still read and not truncated, or truncated and its harvester has not
// noticed, or it is shorter than its original's fingerprint), it moves the
// reader back to 0 (wait): the harvester comes back later. Otherwise it
// names the generation, to be read whole; the check and the naming are one
// step, so that of two such files found at once, the second sees the first.
func (h *harvester) skipCopied() (skip, wait bool) {
	fi, err := h.f.Stat()
	if err != nil {
		return false, false
	}
	copies := &h.sh.replaced
	copies.naming.Lock()
	defer copies.naming.Unlock()
	v := h.sh.copyOfHead(h.f, h.di, h.reader.head, fi.Size())
	if copies.checked != nil {
		copies.checked()
	}
	h.log.Debug("copy check", zap.Bool("copy", v.copy), zap.Int64("offset", v.offset), zap.Bool("alike", v.alike),
		zap.Bool("handover", v.handover), zap.Bool("short", v.short), zap.Bool("differs", v.differs), zap.Int("head_bytes", len(h.reader.head)),
		zap.Int64("size", fi.Size()), zap.String("first_line", firstLineHash(h.reader.head)))
	copyWait, handoverWait := copies.waits()
	now := time.Now()
	if h.copySeen.IsZero() {
		h.copySeen, h.copyGrew, h.copySize = now, now, fi.Size()
	}
	waited := now.Sub(h.copySeen)
	if v.alike && fi.Size() != h.copySize {
		// Grown while it waits, and still what its look-alike holds
		// byte for byte: a copy that cp is still writing (a large
		// file), its original's truncation to come.
		h.copySize = fi.Size()
		if h.sh.prefixOf(h.f, fi.Size(), *v.of) {
			h.copyGrew = now
		}
	}
	switch {
	case v.handover && waited < handoverWait:
		h.reader.seek(0)
		return false, true
	case v.handover:
		h.log.Warn("the harvester of the file this one is a copy of has not noticed its truncation: reading the copy from what that file has sent so far; lines it still ships from what it had read may be shipped twice",
			zap.Duration("waited", waited.Round(time.Millisecond)), zap.Int64("offset", v.offset))
		v.copy = true
	case v.short && waited < copyWait, v.alike && now.Sub(h.copyGrew) < copyWait && waited < handoverWait:
		h.reader.seek(0)
		return false, true
	}
	// Not a copy, or one whose original was not read at all: read whole.
	// (A file whose look-alike was never truncated is a file of its own
	// with the same first bytes: a banner, the same lines in two
	// services' logs.)
	if !v.copy || v.offset == 0 {
		h.identify(h.reader.head, h.gen.acks)
		return false, false
	}
	h.reader.seek(v.offset)
	h.identify(h.reader.head, newAckTracker(v.offset))
	h.log.Info("a copy of a file read so far (copytruncate): reading it from where the original was read to",
		zap.Int64("offset", v.offset))
	return true, false
}
