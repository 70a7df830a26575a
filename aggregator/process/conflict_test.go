package process

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/sluicelog/sluice/aggregator/deliver"
	"github.com/sluicelog/sluice/parser"
)

func TestMoveAside(t *testing.T) {
	tests := []struct {
		name   string
		doc    map[string]any
		reason string
		want   map[string]any
		ok     bool
	}{
		{"concrete where object", map[string]any{"error": "boom", "message": "m"},
			"document_parsing_exception: [1:55] object mapping for [error] tried to parse field [error] as object, but found a concrete value",
			map[string]any{"labels.moved_error": "boom", "message": "m", "tags": []string{"mapping_conflict"}}, true},
		{"object where keyword", map[string]any{"user": map[string]any{"id": int64(1)}},
			"failed to parse field [user] of type [keyword] in document with id 'x'",
			map[string]any{"labels.moved_user": `{"id":1}`, "tags": []string{"mapping_conflict"}}, true},
		{"nested path", map[string]any{"http": map[string]any{"status": "ok", "x": 1}, "tags": []string{"truncated"}},
			"failed to parse field [http.status] of type [long]",
			map[string]any{"http": map[string]any{"x": 1}, "labels.moved_http_status": "ok", "tags": []string{"truncated", "mapping_conflict"}}, true},
		{"no field", map[string]any{"a": 1}, "Limit of total fields [2000] has been exceeded", nil, false},
		{"no brackets", map[string]any{"a": 1}, "something else", nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc := parser.DocOf(tt.doc)
			got, ok := moveAside(doc, tt.reason)
			if ok != tt.ok || (ok && !reflect.DeepEqual(got.Map(), tt.want)) {
				t.Fatalf("moveAside = %v, %v; want %v, %v", got, ok, tt.want, tt.ok)
			}
			if !reflect.DeepEqual(doc.Map(), tt.doc) {
				t.Fatalf("the original document was changed: %v", doc)
			}
		})
	}
}

// The conflict retry rebuilds a document from its JSON: moving a field
// aside there must give what moving it aside in the original gives.
func TestMoveAsideOfRebuiltDocument(t *testing.T) {
	docs := []map[string]any{
		{"error": "boom", "message": "m", "n": int64(12345678901234567), "f": 0.25},
		{"http": map[string]any{"status": "ok", "x": int64(1)}, "tags": []string{"truncated", "geoip_miss"}, "xff": []string{"1.2.3.4", "10.0.0.1"}},
		{"source.geo.location": map[string]any{"lat": 52.37, "lon": 4.89}, "user": map[string]any{"id": int64(7)}, "ok": true, "none": nil},
	}
	reasons := []string{
		"object mapping for [error] tried to parse field [error] as object, but found a concrete value",
		"failed to parse field [http.status] of type [long]",
		"failed to parse field [user] of type [keyword]",
	}
	for i, m := range docs {
		orig := parser.DocOf(m)
		src, err := deliver.AppendDocument(nil, orig)
		if err != nil {
			t.Fatal(err)
		}
		rebuilt, err := docOfJSON(src)
		if err != nil {
			t.Fatal(err)
		}
		again, _ := deliver.AppendDocument(nil, rebuilt)
		if !jsonEqual(t, src, again) {
			t.Fatalf("doc %d: rebuilt as %s, want %s", i, again, src)
		}
		want, ok1 := moveAside(orig, reasons[i])
		got, ok2 := moveAside(rebuilt, reasons[i])
		if !ok1 || !ok2 {
			t.Fatalf("doc %d: moved aside %v in the original, %v rebuilt", i, ok1, ok2)
		}
		wantJSON, _ := deliver.AppendDocument(nil, want)
		gotJSON, _ := deliver.AppendDocument(nil, got)
		if !jsonEqual(t, wantJSON, gotJSON) {
			t.Errorf("doc %d: retry of the rebuilt document\n%s\nwant\n%s", i, gotJSON, wantJSON)
		}
	}
	if _, err := docOfJSON([]byte(`["not", "an", "object"]`)); err == nil {
		t.Error("docOfJSON took an array")
	}
}

func jsonEqual(t *testing.T, a, b []byte) bool {
	t.Helper()
	var x, y any
	if err := json.Unmarshal(a, &x); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &y); err != nil {
		t.Fatal(err)
	}
	return reflect.DeepEqual(x, y)
}

// fitter moves aside, before indexing, what the template's explicit
// mapping would make Elasticsearch reject, and leaves the rest alone.
func TestFitMapping(t *testing.T) {
	tag := []string{"mapping_conflict"}
	tests := []struct {
		name string
		doc  map[string]any
		want map[string]any
	}{
		{"fits", map[string]any{"message": "m", "error.message": "e", "http": map[string]any{"response": map[string]any{"status_code": int64(200)}}, "order_id": "A-1"},
			map[string]any{"message": "m", "error.message": "e", "http": map[string]any{"response": map[string]any{"status_code": int64(200)}}, "order_id": "A-1"}},
		{"wrong scalar type is left to ignore_malformed", map[string]any{"http.response.status_code": "n/a"},
			map[string]any{"http.response.status_code": "n/a"}},
		{"string where object", map[string]any{"error": "short", "error.message": "long"},
			map[string]any{"error.message": "long", "labels.moved_error": "short", "tags": tag}},
		{"list where object", map[string]any{"user": []any{"a", "b"}},
			map[string]any{"labels.moved_user": `["a","b"]`, "tags": tag}},
		{"object where keyword", map[string]any{"service.name": map[string]any{"id": int64(1)}},
			map[string]any{"labels.moved_service_name": `{"id":1}`, "tags": tag}},
		{"below a keyword", map[string]any{"message.x": "y", "tags": []string{"truncated"}},
			map[string]any{"labels.moved_message_x": "y", "tags": []string{"truncated", "mapping_conflict"}}},
		{"nested", map[string]any{"http": map[string]any{"response": "fast", "x": int64(1)}},
			map[string]any{"http": map[string]any{"x": int64(1)}, "labels.moved_http_response": "fast", "tags": tag}},
		{"geo_point and flattened take objects", map[string]any{"source.geo.location": map[string]any{"lat": 1.0, "lon": 2.0}, "labels.overflow": map[string]any{"a": map[string]any{"b": "c"}}},
			map[string]any{"source.geo.location": map[string]any{"lat": 1.0, "lon": 2.0}, "labels.overflow": map[string]any{"a": map[string]any{"b": "c"}}}},
		{"flattened takes only objects", map[string]any{"labels.overflow": "plain"},
			map[string]any{"labels.moved_labels_overflow": "plain", "tags": tag}},
		{"list of objects with a misfit goes whole", map[string]any{"event": []any{map[string]any{"action": map[string]any{"x": int64(1)}}}},
			map[string]any{"labels.moved_event": `[{"action":{"x":1}}]`, "tags": tag}},
		{"dynamic fields are not checked", map[string]any{"status": map[string]any{"code": int64(1)}, "nginx.x": "y"},
			map[string]any{"status": map[string]any{"code": int64(1)}, "nginx.x": "y"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc := parser.DocOf(tt.doc)
			var f fitter
			f.fit(doc)
			if !reflect.DeepEqual(doc.Map(), tt.want) {
				t.Errorf("got  %v\nwant %v", doc.Map(), tt.want)
			}
			// Again, with what it remembers of the first time.
			doc = parser.DocOf(tt.doc)
			f.fit(doc)
			if !reflect.DeepEqual(doc.Map(), tt.want) {
				t.Errorf("got  %v\nwant %v", doc.Map(), tt.want)
			}
		})
	}
}

// templatePaths finds every path of the template, objects and fields, and
// nothing else.
func TestTemplatePaths(t *testing.T) {
	n := 0
	var walk func(prefix string, m *mappingNode)
	walk = func(prefix string, m *mappingNode) {
		for name, sub := range m.props {
			n++
			if got := templatePaths.find(prefix + name); got != sub {
				t.Errorf("%s%s: found %v, want %v", prefix, name, got, sub)
			}
			walk(prefix+name+".", sub)
		}
	}
	walk("", templateMapping)
	if n < 40 {
		t.Fatalf("only %d paths in the template", n)
	}
	for _, p := range []string{"", "x", "messag", "messages", "source.ipx", "source.", ".source", "http.response.status_cod", "order_id"} {
		if got := templatePaths.find(p); got != nil {
			t.Errorf("%q found %v", p, got)
		}
	}
}
