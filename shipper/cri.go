package shipper

import (
	"path/filepath"
	"strings"

	"github.com/sluicelog/sluice/internal/event"
	"github.com/sluicelog/sluice/parser"
)

// criAssembler turns the lines of a Kubernetes container log (CRI format)
// into the lines the container wrote: it strips the runtime's prefix and
// joins partial ("P") pieces up to the final ("F") one.
//
// The runtime interleaves stdout and stderr in one file, so a stderr line
// may sit between the pieces of a long stdout line: each stream has its own
// pieces. A joined line covers the file bytes of all its pieces, and a line
// finished while another stream's line, begun before it, still waits for
// its final piece may not move the registry past that line's first piece
// (line.Resume), or a restart would lose it.
//
// Docker's json-file logs (format docker) are assembled the same way: an
// entry whose log does not end in a newline is a partial piece.
type criAssembler struct {
	max int
	// parse reads one raw line (parser.ParseCRI when nil), and invalid
	// flags a line it rejects (event.FlagInvalidCRI when empty).
	parse   func([]byte) (parser.CRI, error)
	invalid string
	stdout  stream
	stderr  stream
	read    int64 // end of the last raw line taken
	out     []line
}

// stream is the pieces of one stream's line joined so far.
type stream struct {
	pending bool
	line    line
	buf     []byte
}

// add takes one raw line and returns the complete container lines it
// finishes (none, or one). The returned lines and their Data are valid
// until the next call.
func (a *criAssembler) add(raw line) []line {
	a.out = a.out[:0]
	a.read = raw.End
	parse, invalid := a.parse, a.invalid
	if parse == nil {
		parse, invalid = parser.ParseCRI, event.FlagInvalidCRI
	}
	c, err := parse(raw.Data)
	if err != nil {
		// Not in the format: ship it as it is. Pieces pending in either
		// stream stay pending: their final piece may still come.
		raw.Flags = append(raw.Flags, invalid)
		return a.emit(raw)
	}
	s := &a.stdout
	if c.Stream == "stderr" {
		s = &a.stderr
	}
	if !s.pending {
		s.buf = s.buf[:0]
		s.line = line{Start: raw.Start, Stream: c.Stream, LogTime: c.Time}
		s.pending = true
	}
	room := a.max - len(s.buf)
	if len(c.Log) > room {
		c.Log = c.Log[:max(room, 0)]
		s.line.Truncated = true
	}
	s.buf = append(s.buf, c.Log...)
	s.line.End = raw.End
	s.line.Bytes += raw.End - raw.Start
	s.line.Truncated = s.line.Truncated || raw.Truncated
	if c.Partial {
		return nil
	}
	return a.emit(s.take())
}

// newContainerAssembler returns the assembler of an input's format, or nil
// for plain files.
func newContainerAssembler(format string, max int) *criAssembler {
	switch format {
	case FormatCRI:
		return &criAssembler{max: max, parse: parseCRIOrDocker, invalid: event.FlagInvalidCRI}
	case FormatDocker:
		return &criAssembler{max: max, parse: parser.ParseDocker, invalid: event.FlagInvalidDocker}
	}
	return nil
}

// parseCRIOrDocker reads a line of /var/log/containers: CRI, or Docker's
// json-file on a node whose runtime is Docker (dockershim, cri-dockerd),
// which no CRI line can be mistaken for: those start with a time.
func parseCRIOrDocker(b []byte) (parser.CRI, error) {
	if len(b) > 0 && b[0] == '{' {
		return parser.ParseDocker(b)
	}
	return parser.ParseCRI(b)
}

// flush returns the pending pieces of lines whose final piece never came,
// for a file that stayed idle, the earlier line first.
func (a *criAssembler) flush() []line {
	a.out = a.out[:0]
	first, second := &a.stdout, &a.stderr
	if second.pending && (!first.pending || second.line.Start < first.line.Start) {
		first, second = second, first
	}
	for _, s := range []*stream{first, second} {
		if s.pending {
			l := s.take()
			l.Flags = append(l.Flags, event.FlagUnterminated)
			a.emit(l)
		}
	}
	return a.out
}

// emit appends l to the output, with the offset the registry may move to
// once it is acknowledged: the end of what was read, or the first byte of a
// line still pending, whichever is lower.
func (a *criAssembler) emit(l line) []line {
	if l.Bytes == 0 {
		l.Bytes = l.End - l.Start
	}
	l.Resume = max(a.read, l.End)
	for _, s := range []*stream{&a.stdout, &a.stderr} {
		if s.pending && s.line.Start < l.Resume {
			l.Resume = s.line.Start
		}
	}
	a.out = append(a.out, l)
	return a.out
}

// reset drops the pending pieces, for a file read again from the start:
// their offsets are of content that is gone.
func (a *criAssembler) reset() {
	a.stdout.pending, a.stderr.pending, a.read = false, false, 0
}

// pending reports whether pieces of a line wait for their final piece.
func (a *criAssembler) pending() bool { return a.stdout.pending || a.stderr.pending }

// idle lets go of a long line's buffer while no line is pending.
func (a *criAssembler) idle() {
	for _, s := range []*stream{&a.stdout, &a.stderr} {
		if !s.pending && cap(s.buf) > readBufferSize {
			s.buf = nil
		}
	}
}

func (s *stream) take() line {
	l := s.line
	l.Data = s.buf
	s.pending = false
	return l
}

// kubernetesFields reads pod, namespace and container from a container log
// file name: /var/log/containers/<pod>_<namespace>_<container>-<id>.log.
func kubernetesFields(path string, out map[string]string) {
	name := strings.TrimSuffix(filepath.Base(path), ".log")
	parts := strings.SplitN(name, "_", 3)
	if len(parts) != 3 {
		return
	}
	container := parts[2]
	if i := strings.LastIndexByte(container, '-'); i > 0 && len(container)-i-1 == 64 {
		out["container.id"] = container[i+1:]
		container = container[:i]
	}
	out["kubernetes.pod.name"] = parts[0]
	out["kubernetes.namespace"] = parts[1]
	out["kubernetes.container.name"] = container
	out["container.name"] = container
}
