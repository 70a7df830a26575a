package shipper

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/sluicelog/sluice/internal/config"
)

func TestLineFilterKeep(t *testing.T) {
	tests := []struct {
		name             string
		include, exclude []string
		line             string
		keep             bool
	}{
		{"no include: kept", nil, []string{`healthz`}, "GET /api", true},
		{"excluded", nil, []string{`healthz`, `^DEBUG`}, "DEBUG x", false},
		{"included", []string{`ERROR`, `WARN`}, nil, "WARN slow", true},
		{"not included", []string{`ERROR`, `WARN`}, nil, "INFO ok", false},
		{"included and excluded", []string{`ERROR`}, []string{`healthz`}, "ERROR healthz down", false},
		{"alternation inside one", []string{`a|b`, `^c$`}, nil, "c", true},
		{"anchors per expression", []string{`^x`, `y$`}, nil, "ay", true},
		{"anchors per expression, neither", []string{`^x`, `y$`}, nil, "yx", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newLineFilter(&InputConfig{IncludeLines: tt.include, ExcludeLines: tt.exclude})
			if got := f.keep([]byte(tt.line)); got != tt.keep {
				t.Fatalf("keep(%q) = %v, want %v", tt.line, got, tt.keep)
			}
		})
	}
	if newLineFilter(&InputConfig{}) != nil {
		t.Fatal("an input without include_lines or exclude_lines has a filter")
	}
}

// TestMultilineAndFilterConfig: defaults where the shipper sets them, and
// every bad value named by its key, with the fix.
func TestMultilineAndFilterConfig(t *testing.T) {
	c := Config{Registry: t.TempDir(), Inputs: []InputConfig{{Type: "service", Paths: []string{"/var/log/*.log"},
		Multiline: &MultilineConfig{Pattern: `^\s`}}}}
	c.SetDefaults()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if m := *c.Inputs[0].Multiline; m.Match != MatchAfter || m.MaxLines != 500 || m.MaxBytes != c.MaxLineBytes || m.Timeout != time.Second {
		t.Fatalf("defaults %+v", m)
	}
	tests := []struct {
		name   string
		adjust func(*InputConfig)
		want   string
	}{
		{"neither", func(in *InputConfig) { in.Multiline = &MultilineConfig{} }, "inputs[0].multiline: needs a preset (java, python, go) or a pattern"},
		{"both", func(in *InputConfig) { in.Multiline = &MultilineConfig{Preset: "java", Pattern: "x"} }, "inputs[0].multiline.pattern: is set with preset"},
		{"unknown preset", func(in *InputConfig) { in.Multiline = &MultilineConfig{Preset: "jave"} }, `inputs[0].multiline.preset: "jave" is not a preset; use java, python, go; did you mean java?`},
		{"negate with preset", func(in *InputConfig) { in.Multiline = &MultilineConfig{Preset: "go", Negate: true} }, "inputs[0].multiline.match: negate and match go with pattern"},
		{"bad pattern", func(in *InputConfig) { in.Multiline = &MultilineConfig{Pattern: `^(at`} }, `inputs[0].multiline.pattern: "^(at" is not a regular expression (Go RE2 syntax)`},
		{"lookahead", func(in *InputConfig) { in.Multiline = &MultilineConfig{Pattern: `^(?!\d)`} }, `inputs[0].multiline.pattern: `},
		{"match", func(in *InputConfig) { in.Multiline = &MultilineConfig{Pattern: `x`, Match: "previous"} }, `inputs[0].multiline.match: "previous" must be after`},
		{"max_lines", func(in *InputConfig) { in.Multiline = &MultilineConfig{Preset: "java", MaxLines: 1} }, "inputs[0].multiline.max_lines: must be at least 2"},
		{"max_bytes", func(in *InputConfig) { in.Multiline = &MultilineConfig{Preset: "java", MaxBytes: 2 << 20} }, "inputs[0].multiline.max_bytes: must be between 1 and max_line_bytes (1048576)"},
		{"timeout", func(in *InputConfig) { in.Multiline = &MultilineConfig{Preset: "java", Timeout: -time.Second} }, "inputs[0].multiline.timeout: must be a positive duration"},
		{"include_lines", func(in *InputConfig) { in.IncludeLines = []string{"ok", `[a-`} }, `inputs[0].include_lines[1]: "[a-" is not a regular expression (Go RE2 syntax)`},
		{"exclude_lines", func(in *InputConfig) { in.ExcludeLines = []string{`\`} }, `inputs[0].exclude_lines[0]: `},
		{"empty exclude", func(in *InputConfig) { in.ExcludeLines = []string{""} }, `inputs[0].exclude_lines[0]: is empty, which matches every line`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Config{Registry: t.TempDir(), Inputs: []InputConfig{{Type: "service", Paths: []string{"/var/log/*.log"}}}}
			tt.adjust(&c.Inputs[0])
			c.SetDefaults()
			err := c.Validate()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Validate() = %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

// BenchmarkLineFilter is the filter's cost per line, on service lines, of
// which one in ten is a health check: none (no filter), one exclude
// expression, and the include and exclude lists of a typical input.
func BenchmarkLineFilter(b *testing.B) {
	lines := make([][]byte, 100)
	for i := range lines {
		path := "/api/v1/orders"
		if i%10 == 0 {
			path = "/healthz"
		}
		lines[i] = fmt.Appendf(nil, `{"@timestamp":"2026-11-25T10:00:00.000Z","level":"info","service":"checkout","msg":"GET %s 200","id":"x%d","order_id":"A-0000042","user_id":"u-000042","duration_ms":12.5,"trace_id":"0123456789abcdef0123456789abcdef"}`, path, i)
	}
	for _, bc := range []struct {
		name             string
		include, exclude []string
	}{
		{"none", nil, nil},
		{"exclude_one", nil, []string{`GET /healthz`}},
		{"include_regexp", []string{`"level":"(warn|error|info)"`}, nil},
		{"include_and_exclude", []string{`"level":"(warn|error|info)"`}, []string{`GET /healthz`, `GET /readyz`, `kube-probe/`}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			f := newLineFilter(&InputConfig{IncludeLines: bc.include, ExcludeLines: bc.exclude})
			kept := 0
			for i := 0; b.Loop(); i++ {
				if f == nil || f.keep(lines[i%len(lines)]) {
					kept++
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N), "ns/line")
		})
	}
}

// BenchmarkShipPathFiltered is BenchmarkShipPath's whole path (read, build
// the record, publish, acknowledge, move the registry) per line, with one
// line in ten a health check: without a filter, with exclude_lines dropping
// the health checks, and with the java multiline preset (no line joins;
// a 1ms timeout, or the last line would wait the default 1s).
func BenchmarkShipPathFiltered(b *testing.B) {
	for _, bc := range []struct {
		name   string
		adjust func(*InputConfig)
	}{
		{"none", func(*InputConfig) {}},
		{"exclude_lines", func(in *InputConfig) { in.ExcludeLines = []string{`GET /healthz`} }},
		{"multiline_java", func(in *InputConfig) { in.Multiline = &MultilineConfig{Preset: "java", Timeout: time.Millisecond} }},
	} {
		b.Run(bc.name, func(b *testing.B) {
			dir := b.TempDir()
			path := filepath.Join(dir, "app.log")
			fi := writeBenchLines(b, path, b.N, func(w io.Writer, i int) {
				p := "/api/v1/orders"
				if i%10 == 0 {
					p = "/healthz"
				}
				fmt.Fprintf(w, `{"@timestamp":"2026-11-25T10:00:00.000Z","level":"info","service":"checkout","msg":"GET %s 200","id":"x%d","order_id":"A-0000042","user_id":"u-000042","duration_ms":12.5,"trace_id":"0123456789abcdef0123456789abcdef","span_id":"0123456789abcdef"}`+"\n", p, i)
			})
			in := InputConfig{Type: "service", Paths: []string{path}, Fields: map[string]string{"environment": "prod"}}
			bc.adjust(&in)
			cfg := Config{Node: "bench", Registry: filepath.Join(dir, "registry"), Inputs: []InputConfig{in}, ScanInterval: 10 * time.Millisecond}
			sh, err := New(cfg, prometheus.NewRegistry(), zap.NewNop(), WithPublisher(&nullPublisher{}))
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.ResetTimer()
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- sh.Run(ctx) }()
			for registryOffset(sh, path) < fi.Size() {
				time.Sleep(time.Millisecond)
			}
			b.StopTimer()
			cancel()
			if err := <-done; err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N), "ns/line")
		})
	}
}

// TestMultilineAndFilterFromYAML reads the keys as an operator writes them;
// a misspelt one is named with the nearest key.
func TestMultilineAndFilterFromYAML(t *testing.T) {
	var c Config
	err := config.Decode([]byte(`
registry: /var/lib/sluice
inputs:
  - type: service
    paths: [/var/log/app/*.log]
    multiline: {pattern: '^\s', negate: false, match: before, max_lines: 50, max_bytes: 65536, timeout: 2s}
    include_lines: ['ERROR', 'WARN']
    exclude_lines: ['GET /healthz']
`), &c, nil)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDefaults()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	want := MultilineConfig{Pattern: `^\s`, Match: MatchBefore, MaxLines: 50, MaxBytes: 65536, Timeout: 2 * time.Second}
	if in := c.Inputs[0]; *in.Multiline != want || len(in.IncludeLines) != 2 || in.ExcludeLines[0] != "GET /healthz" {
		t.Fatalf("read %+v, %+v", *in.Multiline, in)
	}
	err = config.Decode([]byte("inputs:\n  - multiline: {preset: java, max_line: 3}\n"), &Config{}, nil)
	if err == nil || !strings.Contains(err.Error(), "max_lines") {
		t.Fatalf("a misspelt key: %v, want the nearest key named", err)
	}
}
