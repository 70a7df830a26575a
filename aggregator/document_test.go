package aggregator

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
		if !doc.Has(key) {
			doc.Set(key, v)
		}
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
