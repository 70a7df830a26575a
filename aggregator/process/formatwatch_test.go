package process

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/sluicelog/sluice/internal/event"
)

const stockCombinedLine = `81.2.69.142 - - [25/Nov/2026:10:00:%02d +0000] "GET /index.html HTTP/1.1" 200 612 "-" "curl/8.5.0"`

// buildLines builds n nginx lines of node's file path with a builder of cfg
// logging to the returned observer.
func buildLines(t *testing.T, cfg Config, path string, lines []string) (*observer.ObservedLogs, []bool) {
	t.Helper()
	core, logs := observer.New(zapcore.WarnLevel)
	b, err := newBuilder(cfg, prometheus.NewRegistry(), zap.New(core))
	if err != nil {
		t.Fatal(err)
	}
	var parsed []bool
	for i, line := range lines {
		ev := event.Event{Type: "nginx", Node: "web-1", Path: path, Offset: int64(i), ReadTime: time.Now(), Line: []byte(line)}
		ok, _, _, _ := b.build(&ev, newDoc())
		parsed = append(parsed, ok)
	}
	return logs, parsed
}

func combinedLines(n int) []string {
	var lines []string
	for i := range n {
		lines = append(lines, fmt.Sprintf(stockCombinedLine, i%60))
	}
	return lines
}

// TestStockCombinedFormatByName checks that nginx's stock combined format,
// which fails on every line with the default parsers.nginx_format, is read
// when named, and that the name passes Validate.
func TestStockCombinedFormatByName(t *testing.T) {
	var cfg Config
	cfg.SetDefaults()
	cfg.Parsers.NginxFormat = "combined"
	if _, err := newParsers(cfg.Parsers); err != nil {
		t.Fatalf("parsers.nginx_format: combined: %v", err)
	}
	logs, parsed := buildLines(t, cfg, "/var/log/nginx/access.log", combinedLines(20))
	for i, ok := range parsed {
		if !ok {
			t.Fatalf("line %d not parsed", i)
		}
	}
	if logs.Len() != 0 {
		t.Errorf("warnings for lines that parse: %v", logs.All())
	}
}

// TestFormatMismatchWarns checks that a file whose lines mostly fail to
// parse gets one warning, rate-limited, that names the file, the first
// failing line, its reason and the named format that reads it; a few bad
// lines among good ones get none.
func TestFormatMismatchWarns(t *testing.T) {
	var cfg Config
	cfg.SetDefaults() // the default format: the stock combined lines fail
	logs, parsed := buildLines(t, cfg, "/var/log/nginx/access.log", combinedLines(200))
	if parsed[0] {
		t.Fatal("a combined line parsed with the default format")
	}
	warnings := logs.FilterMessageSnippet("do not match parsers.nginx_format").All()
	if len(warnings) != 1 {
		t.Fatalf("%d warnings, want 1 (rate-limited): %v", len(warnings), logs.All())
	}
	f := warnings[0].ContextMap()
	if f["path"] != "/var/log/nginx/access.log" || f["node"] != "web-1" || f["matching_format"] != "combined" ||
		!strings.Contains(f["first_error"].(string), "does not match") || f["first_line"] != fmt.Sprintf(stockCombinedLine, 0) {
		t.Errorf("warning fields %v", f)
	}

	good := `81.2.69.142 - - [25/Nov/2026:10:00:00 +0000] "GET / HTTP/1.1" 200 612 "-" "curl/8.5.0" 0.012 0.010 "-"`
	var mixed []string
	for i := range 100 {
		if i%10 == 0 {
			mixed = append(mixed, "\x16\x03\x01 junk")
		} else {
			mixed = append(mixed, good)
		}
	}
	if logs, _ := buildLines(t, cfg, "/var/log/nginx/ok.log", mixed); logs.Len() != 0 {
		t.Errorf("warnings for a file with 10%% bad lines: %v", logs.All())
	}
}

// TestNginxFormatsPerPath checks parsers.nginx_formats: files matching a
// glob take its format, the others parsers.nginx_format (bad entries:
// aggregator's TestNginxFormatsConfig).
func TestNginxFormatsPerPath(t *testing.T) {
	var cfg Config
	cfg.SetDefaults()
	cfg.Parsers.NginxFormats = []NginxFormatConfig{{Path: "/var/log/nginx/legacy*", Format: "combined"}}
	logs, parsed := buildLines(t, cfg, "/var/log/nginx/legacy-shop.log", combinedLines(20))
	for i, ok := range parsed {
		if !ok {
			t.Fatalf("legacy line %d not parsed", i)
		}
	}
	good := `81.2.69.142 - - [25/Nov/2026:10:00:00 +0000] "GET / HTTP/1.1" 200 612 "-" "curl/8.5.0" 0.012 0.010 "-"`
	_, parsed = buildLines(t, cfg, "/var/log/nginx/access.log", []string{good})
	if !parsed[0] {
		t.Error("a default-format line of another file not parsed")
	}
	if logs.Len() != 0 {
		t.Errorf("warnings: %v", logs.All())
	}
}
