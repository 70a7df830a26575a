package parser

import (
	"fmt"
	"strings"
	"time"
)

// ParseDocker parses one line of Docker's json-file log driver,
// {"log":"text\n","stream":"stdout","time":"<RFC 3339>"}, into the same
// shape as a CRI line: Docker splits a long line into entries whose log does
// not end in a newline, so such an entry is Partial, and the newline ending
// the last one is not part of Log. Other members (attrs) are ignored. Errors
// wrap ErrBadCRI.
func ParseDocker(line []byte) (CRI, error) {
	r, err := objectReader(line)
	if err != nil {
		return CRI{}, fmt.Errorf("%w: not a json-file entry: %v", ErrBadCRI, err)
	}
	var log, stream, ts string
	var hasLog bool
	r.members(func(name string) {
		switch name {
		case "log":
			log, hasLog = r.scalar(), true
		case "stream":
			stream = r.scalar()
		case "time":
			ts = r.scalar()
		default:
			r.value()
		}
	})
	if err := r.finish(line); err != nil {
		return CRI{}, fmt.Errorf("%w: not a json-file entry: %v", ErrBadCRI, err)
	}
	if !hasLog {
		return CRI{}, fmt.Errorf("%w: json-file entry without log", ErrBadCRI)
	}
	c := CRI{Stream: stream}
	if stream != "stdout" && stream != "stderr" {
		return CRI{}, fmt.Errorf("%w: stream %q is not stdout or stderr", ErrBadCRI, clip(stream))
	}
	if c.Time, err = time.Parse(time.RFC3339Nano, ts); err != nil {
		return CRI{}, fmt.Errorf("%w: time %q", ErrBadCRI, clip(ts))
	}
	text, complete := strings.CutSuffix(log, "\n")
	c.Partial = !complete
	c.Log = []byte(text)
	return c, nil
}
