package parser

import (
	"bytes"
	"fmt"
	"time"
)

// CRI is one line of a Kubernetes container log in the CRI format.
type CRI struct {
	Time   time.Time
	Stream string // stdout or stderr
	// Partial is set for a line the runtime split ("P"); the next line
	// continues it. The last piece has Partial unset ("F").
	Partial bool
	// Log is the logged text, a slice of the input.
	Log []byte
}

// ParseCRI parses "<RFC 3339 time> <stdout|stderr> <P|F> <log>".
func ParseCRI(line []byte) (CRI, error) {
	var c CRI
	ts, rest, ok := bytes.Cut(line, []byte{' '})
	if !ok {
		return c, fmt.Errorf("%w: no stream after the time", ErrBadCRI)
	}
	t, err := time.Parse(time.RFC3339Nano, string(ts))
	if err != nil {
		return c, fmt.Errorf("%w: time %q", ErrBadCRI, ts)
	}
	stream, rest, ok := bytes.Cut(rest, []byte{' '})
	if !ok || (string(stream) != "stdout" && string(stream) != "stderr") {
		return c, fmt.Errorf("%w: stream must be stdout or stderr", ErrBadCRI)
	}
	tag, log, _ := bytes.Cut(rest, []byte{' '})
	// The tag may carry more flags after ':' in future runtimes.
	tag, _, _ = bytes.Cut(tag, []byte{':'})
	switch string(tag) {
	case "P":
		c.Partial = true
	case "F":
	default:
		return c, fmt.Errorf("%w: tag %q must be P or F", ErrBadCRI, tag)
	}
	c.Time, c.Stream, c.Log = t, string(stream), log
	return c, nil
}
