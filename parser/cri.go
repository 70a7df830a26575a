package parser

import (
	"bytes"
	"fmt"
	"time"
)

// CRI is one line of a Kubernetes container log in the CRI format.
type CRI struct {
	Time   time.Time
	Stream string // "stdout" or "stderr"
	// Partial is set for a piece of a line the runtime split ("P"); the
	// next line continues it. The last piece has Partial unset ("F").
	Partial bool
	// Log is the logged text, a slice of the input line.
	Log []byte
}

// ParseCRI parses "<RFC 3339 time> <stdout|stderr> <P|F> <log>". The log
// may be empty; the tag may not be missing. Errors wrap ErrBadCRI.
func ParseCRI(line []byte) (CRI, error) {
	ts, rest, _ := bytes.Cut(line, []byte{' '})
	t, err := time.Parse(time.RFC3339Nano, string(ts))
	if err != nil {
		return CRI{}, fmt.Errorf("%w: time %q", ErrBadCRI, clip(string(ts)))
	}
	stream, rest, _ := bytes.Cut(rest, []byte{' '})
	c := CRI{Time: t}
	switch string(stream) {
	case "stdout":
		c.Stream = "stdout"
	case "stderr":
		c.Stream = "stderr"
	default:
		return CRI{}, fmt.Errorf("%w: stream %q is not stdout or stderr", ErrBadCRI, clip(string(stream)))
	}
	tag, log, _ := bytes.Cut(rest, []byte{' '})
	flags, _, _ := bytes.Cut(tag, []byte{':'}) // later runtimes may add flags after ':'
	switch string(flags) {
	case "P":
		c.Partial = true
	case "F":
	default:
		return CRI{}, fmt.Errorf("%w: tag %q is not P or F", ErrBadCRI, clip(string(tag)))
	}
	c.Log = log
	return c, nil
}
