package aggregator

import (
	"bytes"
	"encoding/json"
	"math"
	"testing"

	"github.com/sluicelog/sluice/parser"
)

// stdEncode is what encoding/json writes for doc, without HTML escaping.
func stdEncode(t testing.TB, doc any) []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(doc); err != nil {
		t.Fatal(err)
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n"))
}

// assertSameJSON checks that got is valid JSON equal to want, and that each
// key and value is written as want writes it: the same text once the
// members of each object are in the same order.
func assertSameJSON(t testing.TB, got, want []byte) {
	t.Helper()
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("appendDocument wrote invalid JSON %s: %v", got, err)
	}
	if err := json.Unmarshal(want, &w); err != nil {
		t.Fatal(err)
	}
	// Re-encoding sorts the keys; equal text means equal documents, and
	// since strings went through a decode, escapes are compared by value.
	if g, w := stdEncode(t, g), stdEncode(t, w); !bytes.Equal(g, w) {
		t.Errorf("appendDocument:\n got %s\nwant %s", g, w)
	}
	// Byte for byte, for single-member objects, where order cannot differ.
	if bytes.Count(want, []byte(":")) == 1 && !bytes.Equal(got, want) {
		t.Errorf("appendDocument:\n got %s\nwant %s", got, want)
	}
}

func TestAppendDocumentMatchesEncodingJSON(t *testing.T) {
	tests := []struct {
		name string
		doc  parser.Doc
	}{
		{"empty", parser.Doc{}},
		{"escapes exactly", parser.Doc{"m": "q\" b\\ \n\r\t\a\b\f\x00 <&> \u2028\u2029 é \xff"}},
		{"scalars", parser.Doc{"s": "x", "i": int64(-42), "n": 7, "f": 0.25, "t": true, "no": false, "nil": nil}},
		{"floats", parser.Doc{"a": 1e21, "b": 1e-7, "c": 123456789.125, "d": 0.0, "e": -1e-6, "f": 3.0}},
		{"escapes", parser.Doc{"m": "quote \" backslash \\ nl \n cr \r tab \t bell \a nul \x00 <html> & \u2028 \u2029 é 日本"}},
		{"invalid utf8", parser.Doc{"m": "a\xffb\xc3(c", "\xfekey": "v"}},
		{"lists", parser.Doc{"xff": []string{"1.2.3.4", "10.0.0.1"}, "times": []float64{0.1, 0.25}, "any": []any{"a", int64(1), 1.5, nil, map[string]any{"z": 1, "a": "b"}}}},
		{"nested", parser.Doc{"source.geo.location": map[string]any{"lat": 51.5, "lon": -0.12}, "deep": map[string]any{"b": map[string]any{"c": []any{}}}}},
		{"fallback", parser.Doc{"strs": map[string]string{"k": "v"}, "u": uint8(3)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := appendDocument(nil, tt.doc)
			if err != nil {
				t.Fatal(err)
			}
			assertSameJSON(t, got, stdEncode(t, tt.doc))
		})
	}
}

func TestAppendDocumentRejectsNaN(t *testing.T) {
	for _, f := range []float64{math.NaN(), math.Inf(1), math.Inf(-1)} {
		if _, err := appendDocument(nil, parser.Doc{"x": f}); err == nil {
			t.Errorf("%v: no error", f)
		}
	}
}

func FuzzAppendDocument(f *testing.F) {
	f.Add("key", "value", int64(1), 1.5)
	f.Add("\xff", "a\"\\\n\u2028\x01", int64(-1), 1e-9)
	f.Fuzz(func(t *testing.T, k, v string, i int64, x float64) {
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return
		}
		doc := parser.Doc{k: v, "i": i, "x": x, "l": []any{v, k}, "m": map[string]any{v: k}}
		got, err := appendDocument(nil, doc)
		if err != nil {
			t.Fatal(err)
		}
		assertSameJSON(t, got, stdEncode(t, doc))
	})
}
