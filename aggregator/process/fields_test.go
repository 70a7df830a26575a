package process

import (
	"testing"

	"github.com/sluicelog/sluice/internal/event"
	"github.com/sluicelog/sluice/parser"
)

// parsers.max_fields reaches the service parser, and a line's "host"
// string goes to host.name, which the shipper's node then overrules,
// keeping the line's value as a claim (the security rule of claims.go).
func TestFillServiceFields(t *testing.T) {
	cfg := Config{Parsers: ParsersConfig{MaxFields: 2}}
	cfg.SetDefaults()
	p, err := newParsers(cfg.Parsers)
	if err != nil {
		t.Fatal(err)
	}
	doc := newDoc()
	p.fill(&event.Event{Type: "service", Node: "node-1", Line: []byte(`{"msg":"m","host":"pod-abc","a":1,"b":2,"c":3}`)}, doc)
	over, _ := doc.Get(parser.OverflowField)
	if m, _ := over.(map[string]any); len(m) != 1 {
		t.Errorf("%s = %v, want one member past max_fields 2", parser.OverflowField, over)
	}
	if v, _ := doc.Get("host.name"); v != "node-1" {
		t.Errorf("host.name = %v, want the shipper's node-1", v)
	}
	if v, _ := doc.Get("labels.claimed_host_name"); v != "pod-abc" {
		t.Errorf("labels.claimed_host_name = %v, want the line's pod-abc", v)
	}
	if doc.Has("host") {
		t.Errorf("the line's host string stayed: %v", doc)
	}
}
