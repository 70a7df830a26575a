package process

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/sluicelog/sluice/internal/event"
	"github.com/sluicelog/sluice/parser"
)

// referenceFill is fill as it was before it remembered the event's
// values, each document from a fresh parser.
func referenceFill(t *testing.T, ev *event.Event, doc *parser.Doc) {
	p, err := newParsers(ParsersConfig{})
	if err != nil {
		t.Fatal(err)
	}
	withoutFields := *ev
	withoutFields.Fields = nil
	p.fill(&withoutFields, doc)
	for k, v := range ev.Fields {
		key, ok := fieldAliases[k]
		if !ok {
			key = k
			if !strings.Contains(k, ".") {
				key = "labels." + k
			}
		}
		if old, ok := doc.Get(key); ok && old != v {
			doc.Set("labels.claimed_"+strings.ReplaceAll(key, ".", "_"), old)
		}
		doc.Set(key, v)
	}
}

// TestFillRemembersEventValues fills documents from events whose fields
// maps, types, nodes and paths repeat, alternate and change, and checks
// each against a document built without remembering anything.
func TestFillRemembersEventValues(t *testing.T) {
	p, err := newParsers(ParsersConfig{})
	if err != nil {
		t.Fatal(err)
	}
	maps := []map[string]string{
		{"service": "edge", "environment": "prod"},
		{"service": "checkout", "customer": "acme", "team": "payments", "cloud.region": "eu-west-1"},
		{},
		nil,
		{"environment": "staging"},
	}
	read := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	order := []int{0, 0, 1, 0, 2, 3, 1, 1, 4, 0, 3, 4}
	for i, m := range order {
		ev := event.Event{
			Type: []string{"nginx", "service", "custom"}[i%3], Node: fmt.Sprint("node-", i%2), Path: fmt.Sprint("/var/log/", i%4, ".log"),
			ReadTime: read, Offset: int64(i), Fields: maps[m],
			Line: []byte(`{"msg":"hello","service":"from-line"}`),
		}
		got := newDoc()
		p.fill(&ev, got)

		want := newDoc()
		referenceFill(t, &ev, want)
		if !reflect.DeepEqual(got.Map(), want.Map()) {
			t.Errorf("event %d (fields %v):\n got %v\nwant %v", i, maps[m], got, want)
		}
	}
}

// TestDocFieldsBounded checks that the remembered fields maps are bounded
// and still right after starting over.
func TestDocFieldsBounded(t *testing.T) {
	p, _ := newParsers(ParsersConfig{})
	for i := range 2*maxDocFields + 10 {
		m := map[string]string{"service": fmt.Sprint("s", i)}
		got := p.docFields(m)
		if len(got) != 1 || got[0].key.String() != "service.name" || got[0].v != fmt.Sprint("s", i) {
			t.Fatalf("map %d: %v", i, got)
		}
		if len(p.fields) > maxDocFields {
			t.Fatalf("%d fields maps remembered, more than %d", len(p.fields), maxDocFields)
		}
	}
}

// TestFillDecodesWrappedJSON: a Docker json-file line's log member holding
// the service's JSON is decoded into the document, by default; the list is
// configurable and may be empty (the log string is then the message, as
// its text).
func TestFillDecodesWrappedJSON(t *testing.T) {
	ev := &event.Event{Type: "service", Line: []byte(`{"log":"{\"message\":\"Hello world\"}"}`)}
	for _, c := range []struct {
		fields []string
		want   any
	}{{nil, "Hello world"}, {[]string{"log"}, "Hello world"}, {[]string{}, `{"message":"Hello world"}`}} {
		p, err := newParsers(ParsersConfig{DecodeJSONFields: c.fields})
		if err != nil {
			t.Fatal(err)
		}
		doc := newDoc()
		p.fill(ev, doc)
		if got, _ := doc.Get("message"); got != c.want || doc.Has("log") {
			t.Errorf("decode_json_fields %q: %v", c.fields, doc.Map())
		}
	}
}

// TestFillLineCannotClaimIdentity: the fields the shipper knows (from the
// path, the node, Kubernetes, the input's static fields) win over what the
// line says, flat or nested; the claimed values are kept only as labels.
func TestFillLineCannotClaimIdentity(t *testing.T) {
	p, err := newParsers(ParsersConfig{})
	if err != nil {
		t.Fatal(err)
	}
	fields := map[string]string{"customer": "acme", "service": "checkout", "kubernetes.namespace": "shop"}
	for _, c := range []struct {
		line string
		want map[string]any
	}{
		{`{"customer":"victimcorp","service":"payments","msg":"hi"}`, map[string]any{
			"organization.name": "acme", "service.name": "checkout", "message": "hi",
			"labels.claimed_organization_name": "victimcorp", "labels.claimed_service_name": "payments",
		}},
		{`{"host":{"name":"other-node","ip":"10.0.0.9"},"kubernetes":{"namespace":"kube-system"},"organization.name":"acme"}`, map[string]any{
			"host": map[string]any{"ip": "10.0.0.9"}, "host.name": "node-1", "kubernetes": map[string]any{},
			"kubernetes.namespace": "shop", "organization.name": "acme",
			"labels.claimed_host_name": "other-node", "labels.claimed_kubernetes_namespace": "kube-system",
		}},
		{`{"host.name":"other-node","log":{"file":{"path":"/etc/passwd"}}}`, map[string]any{
			"host.name": "node-1", "log": map[string]any{"file": map[string]any{}},
			"labels.claimed_host_name": "other-node", "labels.claimed_log_file_path": "/etc/passwd",
		}},
	} {
		ev := &event.Event{Type: "service", Node: "node-1", Path: "/var/log/app.log", Fields: fields, Line: []byte(c.line)}
		doc := newDoc()
		p.fill(ev, doc)
		got := doc.Map()
		for k, v := range c.want {
			if !reflect.DeepEqual(got[k], v) {
				t.Errorf("%s: %s = %#v, want %#v", c.line, k, got[k], v)
			}
		}
		if v := got["log.file.path"]; v != "/var/log/app.log" {
			t.Errorf("%s: log.file.path = %v", c.line, v)
		}
		if h, ok := got["host"].(map[string]any); ok && h["name"] != nil {
			t.Errorf("%s: a second host.name %v", c.line, h["name"])
		}
	}
}

// TestResentIsNotATag: a line flagged resent gets the same document as the
// first delivery: the flag says how it travelled, not what it is.
func TestResentIsNotATag(t *testing.T) {
	p, err := newParsers(ParsersConfig{})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		flags []string
		want  any
	}{
		{[]string{event.FlagResent}, nil},
		{[]string{event.FlagTruncated, event.FlagResent}, []string{event.FlagTruncated}},
		{[]string{event.FlagTruncated}, []string{event.FlagTruncated}},
	} {
		ev := event.Event{Type: "plain", Line: []byte("x"), ReadTime: time.Now(), Flags: tt.flags}
		doc := newDoc()
		p.fill(&ev, doc)
		got, _ := doc.Get("tags")
		if fmt.Sprint(got) != fmt.Sprint(tt.want) || (tt.want == nil) != (got == nil) {
			t.Errorf("flags %v: tags %v, want %v", tt.flags, got, tt.want)
		}
	}
}
