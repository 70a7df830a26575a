package telemetry

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// DefaultStallAfter is how long a process may make no progress while work
// waits before it reports itself stalled (http.stall_after).
const DefaultStallAfter = 60 * time.Second

// Progress is a watchdog for a pipeline stage that can be stuck while
// looking alive: its loop runs, its connections answer, and nothing moves.
// The stage says when it makes progress (Advance) and how much work waits
// for it (Waiting); Progress is stalled while work has waited for longer
// than the stall threshold with no progress. Idle is not stalled: the clock
// starts when work starts waiting.
//
// It is safe for concurrent use; the stage's hot path calls Advance, a
// timer calls Waiting, and readiness probes and scrapes read it.
type Progress struct {
	stallAfter time.Duration
	now        func() time.Time

	mu           sync.Mutex
	lastProgress time.Time // last Advance; zero: none yet
	waiting      int64
	waitingSince time.Time // when waiting went from 0 to above 0
}

// ProgressOptions configure a Progress.
type ProgressOptions struct {
	// StallAfter is the stall threshold (default DefaultStallAfter).
	StallAfter time.Duration
	// Now is the clock; nil means time.Now. Tests inject their own.
	Now func() time.Time
}

// NewProgress returns a watchdog with nothing waiting.
func NewProgress(o ProgressOptions) *Progress {
	if o.StallAfter <= 0 {
		o.StallAfter = DefaultStallAfter
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Progress{stallAfter: o.StallAfter, now: o.Now}
}

// Advance records that n units of work were done (records committed,
// documents delivered, lines acknowledged); n <= 0 is not progress.
func (p *Progress) Advance(n int) {
	if n <= 0 {
		return
	}
	now := p.now()
	p.mu.Lock()
	p.lastProgress = now
	p.mu.Unlock()
}

// Waiting records how much work waits for the stage (consumer lag, unread
// bytes); 0 means idle. Call it whenever it is measured.
func (p *Progress) Waiting(n int64) {
	now := p.now()
	p.mu.Lock()
	defer p.mu.Unlock()
	if n > 0 && p.waiting <= 0 {
		p.waitingSince = now
	}
	p.waiting = n
}

// Stalled reports whether work waits and nothing moved for longer than the
// threshold, and for how long nothing moved.
func (p *Progress) Stalled() (bool, time.Duration) {
	now := p.now()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.waiting <= 0 {
		return false, 0
	}
	since := p.waitingSince
	if p.lastProgress.After(since) {
		since = p.lastProgress
	}
	d := now.Sub(since)
	return d > p.stallAfter, d
}

// Check is a readiness check (Server.AddCheck) that fails while stalled.
func (p *Progress) Check(context.Context) error {
	stalled, d := p.Stalled()
	if !stalled {
		return nil
	}
	p.mu.Lock()
	waiting := p.waiting
	p.mu.Unlock()
	return fmt.Errorf("no progress for %s with %d waiting (stall threshold %s)", d.Round(time.Second), waiting, p.stallAfter)
}

// Register exports sluice_<component>_stalled (1 while stalled) and
// sluice_<component>_last_progress_timestamp_seconds (Unix time of the last
// Advance, 0 before the first) on reg; they are read at scrape time.
func (p *Progress) Register(reg prometheus.Registerer, component string) {
	reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "sluice_" + component + "_stalled",
			Help: "1 while work has waited for longer than http.stall_after with no progress, else 0.",
		}, func() float64 {
			if stalled, _ := p.Stalled(); stalled {
				return 1
			}
			return 0
		}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "sluice_" + component + "_last_progress_timestamp_seconds",
			Help: "Unix time of the last progress (offsets committed or documents delivered); 0 before the first.",
		}, func() float64 {
			p.mu.Lock()
			defer p.mu.Unlock()
			if p.lastProgress.IsZero() {
				return 0
			}
			return float64(p.lastProgress.UnixNano()) / 1e9
		}),
	)
}

// Cached returns a check that runs c at most once per ttl and answers from
// the last result in between; concurrent callers share one run. Readiness
// probes are unauthenticated and may come often: each must not become a
// request to a dependency (an authenticated Elasticsearch call).
func Cached(ttl time.Duration, c Check) Check {
	var (
		mu   sync.Mutex
		at   time.Time
		last error
	)
	return func(ctx context.Context) error {
		mu.Lock()
		defer mu.Unlock()
		if !at.IsZero() && time.Since(at) < ttl {
			return last
		}
		last = c(ctx)
		at = time.Now()
		return last
	}
}
