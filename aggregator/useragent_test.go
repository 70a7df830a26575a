package aggregator

import (
	"testing"

	"github.com/sluicelog/sluice/internal/event"
)

// TestUserAgentConfigurable checks that nginx documents get the parsed
// user agent fields, and none with parsers.user_agent: false.
func TestUserAgentConfigurable(t *testing.T) {
	line := `81.2.69.142 - - [25/Nov/2026:10:00:00 +0000] "GET / HTTP/1.1" 200 2 "-" "Mozilla/5.0 (Macintosh; Intel Mac OS X 10.15; rv:133.0) Gecko/20100101 Firefox/133.0"`
	for _, on := range []bool{true, false} {
		cfg := Config{Parsers: ParsersConfig{NginxFormat: "combined", UserAgent: &on}}
		tr, err := NewTester(cfg)
		if err != nil {
			t.Fatal(err)
		}
		r := tr.Document(event.Event{Type: "nginx", Line: []byte(line)})
		tr.Close()
		name, _ := r.Doc.Get("user_agent.name")
		os, _ := r.Doc.Get("user_agent.os.full")
		if on && (name != "Firefox" || os != "Mac OS X 10.15") {
			t.Errorf("user_agent on: name %v, os.full %v; want Firefox, Mac OS X 10.15", name, os)
		}
		if !on && (name != nil || os != nil || !r.Doc.Has("user_agent.original")) {
			t.Errorf("user_agent off: %v", r.Doc)
		}
	}
}
