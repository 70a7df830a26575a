package shipper

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/sluicelog/sluice/internal/config"
	"github.com/sluicelog/sluice/internal/event"
)

// MultilineConfig joins an input's continuation lines (a stack trace's
// frames) into one event with the line that starts it.
type MultilineConfig struct {
	// Preset is a built-in rule: java, python or go. Either it or Pattern.
	Preset string `yaml:"preset"`
	// Pattern, Negate and Match are a rule of one regular expression (Go
	// RE2), as Filebeat's: a line "matches" when Pattern matches it (or,
	// with Negate, when it does not). Match after (the default): matching
	// lines are appended to the line before them. Match before: matching
	// lines are joined to the line after them.
	Pattern string `yaml:"pattern"`
	Negate  bool   `yaml:"negate"`
	Match   string `yaml:"match"`
	// MaxLines and MaxBytes cut an event that would grow past them
	// (defaults 500 and max_line_bytes): its lines after the cut start the
	// next event, both flagged multiline_cut. A single line is never cut
	// by MaxBytes (max_line_bytes does that).
	MaxLines int `yaml:"max_lines"`
	MaxBytes int `yaml:"max_bytes"`
	// Timeout ships an event whose next line has not come after this long
	// (default 1s): the last event of a file that went quiet.
	Timeout time.Duration `yaml:"timeout"`
}

// Values of multiline.match and multiline.preset.
const (
	MatchAfter  = "after"
	MatchBefore = "before"
)

var multilinePresets = []string{"java", "python", "go"}

// DefaultMultilineConfig is a multiline block's defaults; max_bytes
// follows max_line_bytes.
func DefaultMultilineConfig(maxLineBytes int) MultilineConfig {
	return MultilineConfig{MaxLines: 500, MaxBytes: maxLineBytes, Timeout: time.Second}
}

func (m *MultilineConfig) setDefaults(maxLineBytes int) {
	if m.Pattern != "" && m.Match == "" {
		m.Match = MatchAfter
	}
	config.FillZero(m, DefaultMultilineConfig(maxLineBytes))
}

// validate checks an input's multiline block; key is the block's key.
func (m *MultilineConfig) validate(key string, maxLineBytes int) error {
	var errs []error
	switch {
	case m.Preset == "" && m.Pattern == "":
		errs = append(errs, config.Errorf(key, "needs a preset (%s) or a pattern", strings.Join(multilinePresets, ", ")))
	case m.Preset != "" && m.Pattern != "":
		errs = append(errs, config.Errorf(config.Join(key, "pattern"), "is set with preset %q; use one of them", m.Preset))
	case m.Preset != "" && !slices.Contains(multilinePresets, m.Preset):
		errs = append(errs, config.Errorf(config.Join(key, "preset"), "%q is not a preset; use %s%s", m.Preset, strings.Join(multilinePresets, ", "),
			config.DidYouMean(m.Preset, multilinePresets)))
	case m.Preset != "" && (m.Negate || m.Match != ""):
		errs = append(errs, config.Errorf(config.Join(key, "match"), "negate and match go with pattern, not with preset %q", m.Preset))
	case m.Pattern != "":
		if _, err := regexp.Compile(m.Pattern); err != nil {
			errs = append(errs, config.Errorf(config.Join(key, "pattern"), "%q is not a regular expression (Go RE2 syntax): %v", m.Pattern, err))
		}
		if m.Match != MatchAfter && m.Match != MatchBefore {
			errs = append(errs, config.Errorf(config.Join(key, "match"), "%q must be after (matching lines join the line before them) or before (they join the line after them)", m.Match))
		}
	}
	if m.MaxLines < 2 {
		errs = append(errs, config.Errorf(config.Join(key, "max_lines"), "must be at least 2, got %d", m.MaxLines))
	}
	if m.MaxBytes < 1 || m.MaxBytes > maxLineBytes {
		errs = append(errs, config.Errorf(config.Join(key, "max_bytes"), "must be between 1 and max_line_bytes (%d), got %d: an event is one Kafka record", maxLineBytes, m.MaxBytes))
	}
	if m.Timeout <= 0 {
		errs = append(errs, config.Errorf(config.Join(key, "timeout"), "must be a positive duration such as 1s"))
	}
	return errors.Join(errs...)
}

// joinAction is what a line does to the pending event of its stream.
type joinAction uint8

const (
	// joinStart ships the pending event; the line starts the next one.
	joinStart joinAction = iota
	// joinKeep adds the line to the pending event (or starts one), which
	// stays open for more.
	joinKeep
	// joinEnd adds the line to the pending event, which is then complete.
	joinEnd
)

// joinRule decides where events begin and end, one line at a time. lines is
// the number of lines of the stream's pending event (0: none); state is the
// rule's own, one per stream, kept across events.
type joinRule interface {
	decide(l []byte, lines int, state *uint8) joinAction
}

// newJoinRule returns the rule of a validated multiline block.
func newJoinRule(m *MultilineConfig) joinRule {
	switch m.Preset {
	case "java":
		return javaRule{}
	case "python":
		return pythonRule{}
	case "go":
		return goRule{}
	}
	return patternRule{re: regexp.MustCompile(m.Pattern), negate: m.Negate, before: m.Match == MatchBefore}
}

// patternRule is Filebeat's pattern, negate and match.
type patternRule struct {
	re             *regexp.Regexp
	negate, before bool
}

func (r patternRule) decide(l []byte, _ int, _ *uint8) joinAction {
	matched := r.re.Match(l) != r.negate
	switch {
	case matched:
		return joinKeep
	case r.before:
		return joinEnd
	}
	return joinStart
}

// States of the presets' events.
const (
	statePlain    uint8 = iota
	stateTrace          // in a stack trace
	stateTraceEnd       // python: after the exception line
	stateChain          // python: after "During handling of the above exception"
)

// javaRule: frames (indented lines: "at ...", "... 12 more"), "Caused by:"
// and "Suppressed:" join the line before them. An exception line
// ("java.lang.IllegalStateException: ...") right after a single line joins
// it too, as loggers print a message and then its exception; after a whole
// trace it starts the next event (two traces printed one after the other).
type javaRule struct{}

func (javaRule) decide(l []byte, lines int, state *uint8) joinAction {
	if indented(l) || hasPrefixTrimmed(l, "Caused by: ") || hasPrefixTrimmed(l, "Suppressed: ") {
		*state = stateTrace
		return joinKeep
	}
	if javaException(l) {
		keep := lines == 1 && *state == statePlain
		*state = stateTrace
		if keep {
			return joinKeep
		}
		return joinStart
	}
	*state = statePlain
	return joinStart
}

// javaException reports an exception line: a class name ending in
// Exception, Error or Throwable, the last part capitalized, then nothing or
// ": message"; or the JVM's "Exception in thread "main" " and such a line.
// By hand: a regular expression for it cost 20 times more per line.
func javaException(l []byte) bool {
	if rest, ok := bytes.CutPrefix(l, []byte(`Exception in thread "`)); ok {
		i := bytes.Index(rest, []byte(`" `))
		if i < 0 {
			return false
		}
		l = rest[i+2:]
	}
	name := l
	if i := bytes.IndexByte(l, ':'); i >= 0 {
		name = l[:i]
	}
	if !bytes.HasSuffix(name, []byte("Exception")) && !bytes.HasSuffix(name, []byte("Error")) && !bytes.HasSuffix(name, []byte("Throwable")) {
		return false
	}
	if name[0] == '.' || name[0] >= '0' && name[0] <= '9' {
		return false
	}
	for _, c := range name {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '$' || c == '.') {
			return false
		}
	}
	last := name[bytes.LastIndexByte(name, '.')+1:]
	return len(last) > 0 && last[0] >= 'A' && last[0] <= 'Z'
}

// pythonRule: "Traceback (most recent call last):", its indented frames,
// the exception line after them, and chained tracebacks ("During handling
// of the above exception ...", with the blank lines around it) are one
// event, with the line before the traceback if it is a single line (the
// message of logging.exception).
type pythonRule struct{}

func (pythonRule) decide(l []byte, lines int, state *uint8) joinAction {
	traceback := bytes.HasPrefix(l, []byte("Traceback (most recent call last):"))
	switch *state {
	case stateTrace:
		if !indented(l) {
			*state = stateTraceEnd // the exception line
		}
		return joinKeep
	case stateTraceEnd, stateChain:
		switch {
		case len(bytes.TrimSpace(l)) == 0:
			return joinKeep
		case bytes.HasPrefix(l, []byte("During handling of the above exception")) ||
			bytes.HasPrefix(l, []byte("The above exception was the direct cause")):
			*state = stateChain
			return joinKeep
		case traceback && *state == stateChain:
			*state = stateTrace
			return joinKeep
		}
	}
	if traceback {
		keep := lines == 1 && *state == statePlain
		*state = stateTrace
		if keep {
			return joinKeep
		}
		return joinStart
	}
	*state = statePlain
	return joinStart
}

// goRule: a panic ("panic: ", "fatal error: ", "runtime: ", a signal such
// as "SIGQUIT: quit") or a goroutine dump ("goroutine 1 [running]:")
// starts an event that takes every line of the trace: goroutine headers,
// function lines, their indented file lines, "created by", registers and
// blank lines between goroutines.
type goRule struct{}

func (goRule) decide(l []byte, _ int, state *uint8) joinAction {
	if *state == stateTrace && goTraceLine(l) {
		return joinKeep
	}
	if bytes.HasPrefix(l, []byte("panic: ")) || bytes.HasPrefix(l, []byte("fatal error: ")) || bytes.HasPrefix(l, []byte("runtime: ")) ||
		bytes.HasPrefix(l, []byte("goroutine ")) || goSignal(l) {
		*state = stateTrace
	} else {
		*state = statePlain
	}
	return joinStart
}

var goTracePrefixes = [][]byte{[]byte("goroutine "), []byte("created by "), []byte("[signal "), []byte("..."),
	[]byte("runtime stack:"), []byte("PC="), []byte("exit status "), []byte("fatal error: "), []byte("runtime: "), []byte("panic(")}

func goTraceLine(l []byte) bool {
	if len(l) == 0 || indented(l) {
		return true
	}
	for _, p := range goTracePrefixes {
		if bytes.HasPrefix(l, p) {
			return true
		}
	}
	// A function line: main.(*T).Run(0xc000010000, {0x1, 0x2}): no space
	// before its first parenthesis, ending in one.
	if i := bytes.IndexByte(l, '('); i > 0 && l[len(l)-1] == ')' && bytes.IndexByte(l[:i], ' ') < 0 {
		return true
	}
	return goRegister(l)
}

// goRegister reports a register line of a signal's dump: "rax    0x0".
func goRegister(l []byte) bool {
	i := 0
	for i < len(l) && (l[i] >= 'a' && l[i] <= 'z' || l[i] >= '0' && l[i] <= '9') {
		i++
	}
	if i < 2 || i > 6 {
		return false
	}
	rest := bytes.TrimLeft(l[i:], " ")
	return len(rest) < len(l)-i && bytes.HasPrefix(rest, []byte("0x"))
}

// goSignal reports a line such as "SIGQUIT: quit" or "SIGSEGV: segmentation
// violation".
func goSignal(l []byte) bool {
	if !bytes.HasPrefix(l, []byte("SIG")) {
		return false
	}
	i := 3
	for i < len(l) && l[i] >= 'A' && l[i] <= 'Z' {
		i++
	}
	return i > 3 && bytes.HasPrefix(l[i:], []byte(": "))
}

func indented(l []byte) bool {
	return len(l) > 1 && (l[0] == ' ' || l[0] == '\t') && len(bytes.TrimSpace(l)) > 0
}

func hasPrefixTrimmed(l []byte, prefix string) bool {
	return bytes.HasPrefix(bytes.TrimLeft(l, " \t"), []byte(prefix))
}

// joiner joins the lines of one file into events by its rule, each stream
// of a container log on its own (a stderr line between a stdout trace's
// frames does not cut it).
//
// An event covers the file bytes of all its lines, and its offset is its
// first line's: re-read after a restart it is the same event with the same
// document id. The registry may move, once an event is acknowledged, to
// its end, or to the first byte of an event still pending in another
// stream, whichever is lower (line.Resume), so that a restart reads that
// event again whole.
type joiner struct {
	rule     joinRule
	maxLines int
	maxBytes int
	timeout  time.Duration
	streams  []*joinStream
	out      []line
}

// joinStream is the pending event of one stream.
type joinStream struct {
	name  string
	state uint8
	lines int // lines of the pending event; 0: none
	ev    line
	// buf holds the pending event's bytes; spare is the buffer of the
	// event shipped last, valid until the next call.
	buf, spare []byte
	flags      []string
	// cut is set while the pending event continues one cut at max_lines
	// or max_bytes.
	cut  bool
	last time.Time // when its last line was read
}

// newJoiner returns the joiner of an input's multiline block, or nil.
func newJoiner(m *MultilineConfig) *joiner {
	if m == nil {
		return nil
	}
	return &joiner{rule: newJoinRule(m), maxLines: m.MaxLines, maxBytes: m.MaxBytes, timeout: m.Timeout}
}

// add takes one line, read at now, and returns the events it completes
// (none, one or two), earlier first. The events and their Data are valid
// until the next call.
func (j *joiner) add(l line, now time.Time) []line {
	j.out = j.out[:0]
	s := j.stream(l.Stream)
	act := j.rule.decide(l.Data, s.lines, &s.state)
	switch {
	case act == joinStart:
		j.flush(s)
	case s.lines >= j.maxLines || s.lines > 0 && len(s.buf)+1+len(l.Data) > j.maxBytes:
		// Cut, nothing dropped: the rest is the next event.
		s.cut = true
		j.flush(s)
		s.cut = true
	}
	s.append(l, now)
	if act == joinEnd {
		j.flush(s)
	}
	return j.out
}

// flushDue returns the events whose last line was read at least timeout
// before now.
func (j *joiner) flushDue(now time.Time) []line {
	j.out = j.out[:0]
	for _, s := range j.byStart() {
		if now.Sub(s.last) >= j.timeout {
			j.flush(s)
		}
	}
	return j.out
}

// readUntil counts the lines read at from (a read's start, the time they
// were given to add) as read at to (its end): a read that waited on Kafka
// longer than the timeout took them from the file just now, and the lines
// after them may be the next to read.
func (j *joiner) readUntil(from, to time.Time) {
	for _, s := range j.streams {
		if s.lines > 0 && s.last.Equal(from) {
			s.last = to
		}
	}
}

// flushAll returns every pending event, earlier first.
func (j *joiner) flushAll() []line {
	j.out = j.out[:0]
	for _, s := range j.byStart() {
		j.flush(s)
	}
	return j.out
}

// byStart returns the streams with a pending event, the earlier first.
func (j *joiner) byStart() []*joinStream {
	var pending []*joinStream
	for _, s := range j.streams {
		if s.lines > 0 {
			pending = append(pending, s)
		}
	}
	slices.SortFunc(pending, func(a, b *joinStream) int { return cmp.Compare(a.ev.Start, b.ev.Start) })
	return pending
}

// deadline is when the earliest pending event is due; ok is false if none
// is pending.
func (j *joiner) deadline() (at time.Time, ok bool) {
	for _, s := range j.streams {
		if s.lines > 0 && (!ok || s.last.Before(at)) {
			at, ok = s.last, true
		}
	}
	return at.Add(j.timeout), ok
}

// firstPending is the first offset of the earliest pending event.
func (j *joiner) firstPending() (at int64, ok bool) {
	for _, s := range j.streams {
		if s.lines > 0 && (!ok || s.ev.Start < at) {
			at, ok = s.ev.Start, true
		}
	}
	return at, ok
}

// pending reports whether an event waits for more lines.
func (j *joiner) pending() bool {
	_, ok := j.deadline()
	return ok
}

// reset drops the pending events, for a file read again from the start:
// their lines are of content that is gone.
func (j *joiner) reset() {
	for _, s := range j.streams {
		s.lines, s.cut, s.state = 0, false, statePlain
	}
}

// idle lets go of the buffers of the streams with no pending event: a
// quiet file holds none.
func (j *joiner) idle() {
	for _, s := range j.streams {
		if s.lines == 0 {
			s.buf, s.flags = nil, nil
		}
		s.spare = nil
	}
}

func (j *joiner) stream(name string) *joinStream {
	for _, s := range j.streams {
		if s.name == name {
			return s
		}
	}
	s := &joinStream{name: name}
	j.streams = append(j.streams, s)
	return s
}

// flush ships s's pending event, if any.
func (j *joiner) flush(s *joinStream) {
	if s.lines == 0 {
		return
	}
	ev := s.ev
	ev.Data = s.buf
	s.buf, s.spare = s.spare[:0], s.buf
	if len(s.flags) > 0 || s.lines > 1 || s.cut {
		flags := make([]string, 0, len(s.flags)+2)
		flags = append(flags, s.flags...)
		if s.lines > 1 {
			flags = append(flags, event.FlagMultiline)
		}
		if s.cut {
			flags = append(flags, event.FlagMultilineCut)
		}
		ev.Flags = flags
	}
	for _, o := range j.streams {
		if o != s && o.lines > 0 && o.ev.Start < ev.Resume {
			ev.Resume = o.ev.Start
		}
	}
	s.lines, s.cut = 0, false
	j.out = append(j.out, ev)
}

// append adds l to the pending event.
func (s *joinStream) append(l line, now time.Time) {
	n, resume := l.covered()
	if s.lines == 0 {
		s.ev = line{Start: l.Start, Stream: l.Stream, LogTime: l.LogTime}
		s.buf, s.flags = s.buf[:0], s.flags[:0]
	} else {
		s.buf = append(s.buf, '\n')
	}
	s.buf = append(s.buf, l.Data...)
	s.ev.End = l.End
	s.ev.Bytes += n
	s.ev.Resume = resume
	s.ev.Truncated = s.ev.Truncated || l.Truncated
	for _, f := range l.Flags {
		if !slices.Contains(s.flags, f) {
			s.flags = append(s.flags, f)
		}
	}
	s.lines++
	s.last = now
}

// String names the rule in logs.
func (m *MultilineConfig) String() string {
	if m.Preset != "" {
		return "preset " + m.Preset
	}
	return fmt.Sprintf("pattern %q negate %v match %s", m.Pattern, m.Negate, m.Match)
}
