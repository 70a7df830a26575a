package process

import (
	"slices"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/sluicelog/sluice/internal/telemetry"
	"github.com/sluicelog/sluice/parser"
)

// Bounds of formatWatch.
const (
	// watchMinLines is how many lines of a file are seen before it is
	// judged: a few bad lines (junk on the HTTP port) are normal.
	watchMinLines = 10
	// watchWindow is how many lines a file's counts cover before they
	// start over, so that a fixed format is noticed.
	watchWindow = 1000
	// watchMaxSources bounds the files followed; past it, they start over.
	watchMaxSources = 4096
	// watchEvery is how often a file's warning may repeat.
	watchEvery = 10 * time.Minute
	// watchLineChars is how much of the first failing line is logged, and
	// watchMatchChars how much is kept to find the format that reads it.
	watchLineChars  = 300
	watchMatchChars = 4096
)

// formatWatch warns when most nginx lines of a file do not match the
// configured log_format: the stock combined format against Sluice's
// default fails on every line, and a counter alone does not say why. The
// warning names the file, the first failing line and its reason, and the
// named format that reads the line, if one does. Safe for concurrent use.
type formatWatch struct {
	log   *zap.Logger
	every *telemetry.Every

	mu      sync.Mutex
	sources map[watchKey]*watchCounts
}

type watchKey struct{ node, path string }

type watchCounts struct {
	lines, failed int
	firstErr      string
	firstLine     string // clipped copy
}

// newFormatWatch returns a formatWatch that logs to log (nil: nothing is
// watched).
func newFormatWatch(log *zap.Logger) *formatWatch {
	if log == nil {
		return nil
	}
	return &formatWatch{log: log, every: telemetry.NewEvery(watchEvery),
		sources: map[watchKey]*watchCounts{}}
}

// seen counts one nginx line of node's file path, read with format (as
// configured); err is its parse error, nil if it parsed.
func (w *formatWatch) seen(node, path, format string, line []byte, err error) {
	if w == nil {
		return
	}
	w.mu.Lock()
	k := watchKey{node, path}
	c := w.sources[k]
	if c == nil {
		if len(w.sources) >= watchMaxSources {
			clear(w.sources)
		}
		c = &watchCounts{}
		w.sources[watchKey{strings.Clone(node), strings.Clone(path)}] = c
	}
	c.lines++
	if err != nil {
		c.failed++
		if c.firstErr == "" {
			c.firstErr = err.Error()
			c.firstLine = string(line[:min(len(line), watchMatchChars)])
		}
	}
	warn := c.lines >= watchMinLines && 2*c.failed > c.lines
	report := *c
	if warn || c.lines >= watchWindow {
		*c = watchCounts{}
	}
	w.mu.Unlock()
	if !warn {
		return
	}
	if format == "" {
		format = "sluice"
	}
	if ok, suppressed := w.every.Allow(node + "\x00" + path); ok {
		w.log.Warn("most nginx lines of a file do not match parsers.nginx_format; set it to the file's log_format, or per path in parsers.nginx_formats",
			zap.String("node", node), zap.String("path", path),
			zap.Int("lines", report.lines), zap.Int("failed", report.failed),
			zap.String("first_error", report.firstErr), zap.String("first_line", report.firstLine[:min(len(report.firstLine), watchLineChars)]),
			zap.String("nginx_format", format), zap.String("matching_format", matchingFormat(report.firstLine)),
			zap.Int("suppressed", suppressed))
	}
}

// matchingFormat returns the name of the richest named format that reads
// line, "" if none does.
func matchingFormat(line string) string {
	for _, name := range slices.Backward(parser.NginxFormatNames) {
		f, _ := parser.NginxFormat(name)
		p, err := parser.CompileNginx(f)
		if err != nil {
			continue
		}
		if p.ParseString(line, parser.NewDoc(40)) == nil {
			return name
		}
	}
	return ""
}
