package process

import (
	"testing"
	"time"

	"github.com/sluicelog/sluice/internal/event"
)

// TestFillContainerLines: a container's line that is a JSON object is
// parsed as a service's; anything else is its message, without an error,
// as before.
func TestFillContainerLines(t *testing.T) {
	p, err := newParsers(ParsersConfig{})
	if err != nil {
		t.Fatal(err)
	}
	fields := map[string]string{"service": "checkout", "kubernetes.labels.app_kubernetes_io/name": "checkout"}
	for _, c := range []struct {
		line, message, level string
	}{
		{`{"level":"warn","message":"slow payment","order":"o-1"}`, "slow payment", "warn"},
		{`  {"level":"info","msg":"spaced"}  `, "spaced", "info"},
		{`plain text`, "plain text", ""},
		{`{"not json`, `{"not json`, ""},
		{`["an","array"]`, `["an","array"]`, ""},
	} {
		doc := newDoc()
		ev := event.Event{Type: "container", Node: "n", Path: "/var/log/containers/x.log", ReadTime: time.Now(), Fields: fields, Line: []byte(c.line)}
		if !p.fill(&ev, doc) {
			t.Errorf("%s: not parsed", c.line)
		}
		msg, _ := doc.Get("message")
		level, _ := doc.Get("log.level")
		if msg != c.message || (c.level != "" && level != c.level) {
			t.Errorf("%s: message %v, log.level %v; want %q, %q", c.line, msg, level, c.message, c.level)
		}
		if _, ok := doc.Get("error.message"); ok {
			t.Errorf("%s: error.message set", c.line)
		}
		if v, _ := doc.Get("kubernetes.labels.app_kubernetes_io/name"); v != "checkout" {
			t.Errorf("%s: label %v", c.line, v)
		}
	}
}

// TestFillNginxFormatHint: a pod's sluice.io/nginx-format hint picks the
// format its lines are read with, and steers without being a field.
func TestFillNginxFormatHint(t *testing.T) {
	p, err := newParsers(ParsersConfig{NginxFormat: "sluice"})
	if err != nil {
		t.Fatal(err)
	}
	line := `10.0.0.1 - - [25/Nov/2026:10:00:00 +0000] "GET /x HTTP/1.1" 200 12 "-" "curl/8"`
	for _, c := range []struct {
		hint   string
		parsed bool
	}{
		{"combined", true},
		{`$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent "$http_referer" "$http_user_agent"`, true},
		{"", false}, // the configured format, which wants more
	} {
		fields := map[string]string{"service": "edge"}
		if c.hint != "" {
			fields[event.FieldNginxFormat] = c.hint
		}
		doc := newDoc()
		ev := event.Event{Type: "nginx", Node: "n", Path: "/var/log/containers/x.log", ReadTime: time.Now(), Fields: fields, Line: []byte(line)}
		if got := p.fill(&ev, doc); got != c.parsed {
			t.Errorf("hint %q: parsed %v, want %v", c.hint, got, c.parsed)
		}
		if _, ok := doc.Get(event.FieldNginxFormat); ok {
			t.Errorf("hint %q: %s is in the document", c.hint, event.FieldNginxFormat)
		}
		if c.parsed {
			if v, _ := doc.Get("http.response.status_code"); v == nil {
				t.Errorf("hint %q: no status code in %v", c.hint, doc)
			}
		}
	}
}
