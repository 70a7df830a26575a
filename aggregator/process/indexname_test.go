package process

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/sluicelog/sluice/aggregator/deliver"
	"github.com/sluicelog/sluice/internal/event"
	"github.com/sluicelog/sluice/internal/template"
	"github.com/sluicelog/sluice/parser"
)

// TestIndexNamesMatchIndexName checks that the cached names are the names
// indexName renders, for names from the event's fields, from the document,
// with dates, and when the cache starts over.
func TestIndexNamesMatchIndexName(t *testing.T) {
	at := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	fields := func(kv ...string) map[string]string {
		m := map[string]string{}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	events := []struct {
		name string
		ev   event.Event
		doc  map[string]any
	}{
		{"event fields", event.Event{Type: "nginx", Node: "n1", Path: "/a", Fields: fields("service", "edge", "environment", "prod")}, map[string]any{}},
		{"same values, another map", event.Event{Type: "nginx", Node: "n2", Path: "/b", Fields: fields("service", "edge", "environment", "prod")}, map[string]any{}},
		{"other type", event.Event{Type: "service", Node: "n1", Path: "/a", Fields: fields("service", "edge", "environment", "prod")}, map[string]any{}},
		{"from the document", event.Event{Type: "service", Node: "n1", Path: "/a", Fields: fields("environment", "prod")},
			map[string]any{"service.name": "checkout"}},
		{"from another document", event.Event{Type: "service", Node: "n1", Path: "/a", Fields: fields("environment", "prod")},
			map[string]any{"service.name": "billing"}},
		{"empty field reads the document", event.Event{Type: "service", Node: "n1", Path: "/a", Fields: fields("service", "", "environment", "prod")},
			map[string]any{"service.name": "cart"}},
		{"missing everywhere", event.Event{Type: "service", Node: "n1", Path: "/a"}, map[string]any{}},
		{"hostile values", event.Event{Type: "Nginx", Node: "n1", Path: "/a", Fields: fields("service", "..Edge*,x", "environment", "-Prod")}, map[string]any{}},
		// Values whose concatenations are equal must not share a name.
		{"ab+c", event.Event{Type: "t", Fields: fields("service", "ab", "environment", "c")}, map[string]any{}},
		{"a+bc", event.Event{Type: "t", Fields: fields("service", "a", "environment", "bc")}, map[string]any{}},
		{"node and path", event.Event{Type: "t", Node: "node-7", Path: "/var/log/x.log", Fields: fields("service", "s")}, map[string]any{}},
		{"other node and path", event.Event{Type: "t", Node: "node-8", Path: "/var/log/y.log", Fields: fields("service", "s")}, map[string]any{}},
	}
	for _, tmpl := range []string{deliver.DefaultIndex, "logs-{type}-{service}-{environment}-{+2006.01.02}", "{node}.{path}-{service}", "static-index"} {
		idx, err := template.Parse(tmpl)
		if err != nil {
			t.Fatal(err)
		}
		names := newIndexNames(idx)
		for round := range 3 { // the second and third rounds hit the cache
			for _, e := range events {
				ev := e.ev
				doc := parser.DocOf(e.doc)
				doc.Set("@timestamp", at.Format(time.RFC3339Nano))
				want := indexName(idx, &ev, doc)
				if got := names.name(&ev, doc); got != want {
					t.Errorf("%s, %s, round %d: name %q, want %q", tmpl, e.name, round, got, want)
				}
			}
		}
	}
}

// TestIndexNamesBounded checks that the cache starts over past its bound
// and still names correctly.
func TestIndexNamesBounded(t *testing.T) {
	idx, _ := template.Parse(deliver.DefaultIndex)
	names := newIndexNames(idx)
	for i := range 3 * maxIndexNames {
		ev := event.Event{Type: "nginx", Fields: map[string]string{"service": fmt.Sprint("s", i%(2*maxIndexNames)), "environment": "prod"}}
		if got, want := names.name(&ev, &parser.Doc{}), indexName(idx, &ev, &parser.Doc{}); got != want {
			t.Fatalf("event %d: name %q, want %q", i, got, want)
		}
		if len(names.cache) > maxIndexNames {
			t.Fatalf("cache holds %d names, more than %d", len(names.cache), maxIndexNames)
		}
	}
}

// BenchmarkIndexName compares rendering each name with the cache.
func BenchmarkIndexName(b *testing.B) {
	idx, _ := template.Parse(deliver.DefaultIndex)
	ev := event.Event{Type: "nginx", Node: "node-1", Path: "/var/log/app.log", Fields: map[string]string{"service": "edge", "environment": "prod"}}
	doc := &parser.Doc{}
	b.Run("render", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = indexName(idx, &ev, doc)
		}
	})
	b.Run("cached", func(b *testing.B) {
		b.ReportAllocs()
		names := newIndexNames(idx)
		for b.Loop() {
			_ = names.name(&ev, doc)
		}
	})
}

// TestBadTimesMakeOneIndex replays the incident: 600 service lines dated at
// random between 1970 and 2134 into a daily index made about 470 indices.
// Outside elasticsearch.accept_time they now all go to one out-of-range
// index, tagged, with @timestamp the read time and their own time kept;
// the same line always gets the same index, whatever the clock says when
// it is indexed.
func TestBadTimesMakeOneIndex(t *testing.T) {
	var cfg Config
	cfg.SetDefaults()
	cfg.Elasticsearch.Index = "logs-{type}-{service}-{+2006.01.02}"
	b, err := newBuilder(cfg, prometheus.NewRegistry(), zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	read := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	b.window.now = func() time.Time { return read.Add(400 * 24 * time.Hour) } // only for records without a read time
	names := map[string]int{}
	first := map[int]string{}
	for round := range 2 {
		r := rand.New(rand.NewPCG(1, 2))
		for i := range 600 {
			at := time.Unix(r.Int64N(time.Date(2134, 1, 1, 0, 0, 0, 0, time.UTC).Unix()), 0).UTC()
			ev := event.Event{Type: "service", Node: "n", Offset: int64(i), ReadTime: read, Fields: map[string]string{"service": "api"},
				Line: fmt.Appendf(nil, `{"@timestamp":%q,"message":"m"}`, at.Format(time.RFC3339))}
			doc := newDoc()
			_, keep, _, name := b.build(&ev, doc)
			if !keep {
				t.Fatal("dropped")
			}
			if round == 0 {
				names[name]++
				first[i] = name
				if name == "logs-service-api-out-of-range" {
					if !hasTag(doc, tagTimeOutOfRange) {
						t.Errorf("line %d (%s) in %s is not tagged", i, at, name)
					}
					if v, _ := doc.Get("event.original_timestamp"); v != at.Format("2006-01-02T15:04:05.000Z") {
						t.Errorf("line %d: event.original_timestamp = %v, want %s", i, v, at)
					}
					if v, _ := doc.Get("@timestamp"); v != read.Format(time.RFC3339Nano) {
						t.Errorf("line %d: @timestamp = %v, want the read time", i, v)
					}
				}
			} else if name != first[i] {
				t.Errorf("line %d went to %s, then to %s", i, first[i], name)
			}
		}
		b.window.now = func() time.Time { return read.Add(-400 * 24 * time.Hour) }
	}
	if len(names) > 32 || names["logs-service-api-out-of-range"] < 590 {
		t.Errorf("600 bad times made %d indices: %v", len(names), names)
	}
	// A time within the window keeps its day.
	ev := event.Event{Type: "service", ReadTime: read, Fields: map[string]string{"service": "api"},
		Line: []byte(`{"@timestamp":"2026-12-05T23:00:00Z","message":"m"}`)}
	doc := newDoc()
	if _, _, _, name := b.build(&ev, doc); name != "logs-service-api-2026.12.05" || hasTag(doc, tagTimeOutOfRange) {
		t.Errorf("a time of yesterday went to %s", name)
	}
}
