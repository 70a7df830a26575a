package telemetry

import (
	"sync"
	"time"
)

// Every rate-limits a repeated log line per cause: Allow(key) is true at
// most once per interval for each key, and says how many calls it
// suppressed since, so that the line that does get out can carry the
// count ("and 1234 more"). A fault that repeats thousands of times a
// second (every item of every request) stays loud without flooding the
// log. Safe for concurrent use; the zero value is not usable, use
// NewEvery.
type Every struct {
	d   time.Duration
	now func() time.Time

	mu   sync.Mutex
	last map[string]everyState
}

type everyState struct {
	at         time.Time
	suppressed int
}

// NewEvery returns a limiter letting one call per key through every d.
func NewEvery(d time.Duration) *Every {
	return &Every{d: d, now: time.Now, last: map[string]everyState{}}
}

// Allow reports whether a line for key may be logged now and, if so, how
// many were held back since the last one. A nil Every lets every call
// through.
func (e *Every) Allow(key string) (ok bool, suppressed int) {
	if e == nil {
		return true, 0
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	now := e.now()
	s, seen := e.last[key]
	if seen && now.Sub(s.at) < e.d {
		s.suppressed++
		e.last[key] = s
		return false, 0
	}
	e.last[key] = everyState{at: now}
	if len(e.last) > 1024 {
		// Keys are causes (an index and a status), few; this only keeps a
		// pathological caller from growing the map for ever.
		for k, v := range e.last {
			if now.Sub(v.at) >= e.d {
				delete(e.last, k)
			}
		}
	}
	return true, s.suppressed
}
