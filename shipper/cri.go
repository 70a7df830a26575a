package shipper

import (
	"path/filepath"
	"strings"

	"github.com/sluicelog/sluice/internal/event"
	"github.com/sluicelog/sluice/parser"
)

// criAssembler turns the lines of a Kubernetes container log (CRI format)
// into the lines the container wrote: it strips the runtime's prefix and
// joins partial ("P") pieces up to the final ("F") one. A joined line covers
// the file bytes of all its pieces, so its end offset is only acknowledged
// once the whole line is.
type criAssembler struct {
	max     int
	pending *line // pieces joined so far
	buf     []byte
}

// add takes one raw line and returns a complete container line when there
// is one. The returned Data is valid until the next call.
func (a *criAssembler) add(raw line) (line, bool) {
	c, err := parser.ParseCRI(raw.Data)
	if err != nil {
		// Not CRI: ship it as it is, after whatever was pending.
		raw.Flags = append(raw.Flags, event.FlagInvalidCRI)
		if a.pending != nil {
			// A broken sequence: the pending pieces go out with this line.
			p := a.take()
			p.Data = append(p.Data, '\n')
			p.Data = append(p.Data, raw.Data...)
			p.End, p.Flags = raw.End, append(p.Flags, event.FlagInvalidCRI)
			return p, true
		}
		return raw, true
	}
	if a.pending == nil {
		a.buf = a.buf[:0]
		a.pending = &line{Start: raw.Start, Stream: c.Stream, LogTime: c.Time}
	}
	room := a.max - len(a.buf)
	if len(c.Log) > room {
		c.Log = c.Log[:max(room, 0)]
		a.pending.Truncated = true
	}
	a.buf = append(a.buf, c.Log...)
	a.pending.End = raw.End
	a.pending.Truncated = a.pending.Truncated || raw.Truncated
	if c.Partial {
		return line{}, false
	}
	return a.take(), true
}

// flush returns the pending pieces of a line whose final piece never came,
// for a file that stayed idle.
func (a *criAssembler) flush() (line, bool) {
	if a.pending == nil {
		return line{}, false
	}
	l := a.take()
	l.Flags = append(l.Flags, event.FlagUnterminated)
	return l, true
}

// idle lets go of a long line's buffer while no line is pending.
func (a *criAssembler) idle() {
	if a.pending == nil && cap(a.buf) > readBufferSize {
		a.buf = nil
	}
}

func (a *criAssembler) take() line {
	l := *a.pending
	l.Data = a.buf
	a.pending = nil
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
