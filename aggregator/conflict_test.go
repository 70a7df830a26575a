package aggregator

import (
	"reflect"
	"testing"

	"github.com/sluicelog/sluice/parser"
)

func TestMoveAside(t *testing.T) {
	tests := []struct {
		name   string
		doc    parser.Doc
		reason string
		want   parser.Doc
		ok     bool
	}{
		{"concrete where object", parser.Doc{"error": "boom", "message": "m"},
			"document_parsing_exception: [1:55] object mapping for [error] tried to parse field [error] as object, but found a concrete value",
			parser.Doc{"labels.moved_error": "boom", "message": "m", "tags": []string{"mapping_conflict"}}, true},
		{"object where keyword", parser.Doc{"user": map[string]any{"id": int64(1)}},
			"failed to parse field [user] of type [keyword] in document with id 'x'",
			parser.Doc{"labels.moved_user": `{"id":1}`, "tags": []string{"mapping_conflict"}}, true},
		{"nested path", parser.Doc{"http": map[string]any{"status": "ok", "x": 1}, "tags": []string{"truncated"}},
			"failed to parse field [http.status] of type [long]",
			parser.Doc{"http": map[string]any{"x": 1}, "labels.moved_http_status": "ok", "tags": []string{"truncated", "mapping_conflict"}}, true},
		{"no field", parser.Doc{"a": 1}, "Limit of total fields [2000] has been exceeded", nil, false},
		{"no brackets", parser.Doc{"a": 1}, "something else", nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			orig := reflect.ValueOf(tt.doc).Len()
			got, ok := moveAside(tt.doc, tt.reason)
			if ok != tt.ok || (ok && !reflect.DeepEqual(got, tt.want)) {
				t.Fatalf("moveAside = %v, %v; want %v, %v", got, ok, tt.want, tt.ok)
			}
			if len(tt.doc) != orig {
				t.Fatal("the original document was changed")
			}
		})
	}
}
