package aggregator

import (
	"reflect"
	"testing"

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
