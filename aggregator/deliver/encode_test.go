package deliver

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
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

// nested returns doc with its dotted keys (those of nested maps too) as
// nested objects, for documents where no two values claim one path.
func nested(doc map[string]any) map[string]any {
	out := make(map[string]any)
	for k, v := range doc {
		if m, ok := v.(map[string]any); ok {
			v = nested(m)
		}
		at := out
		parts := strings.Split(k, ".")
		for _, p := range parts[:len(parts)-1] {
			next, ok := at[p].(map[string]any)
			if !ok {
				next = make(map[string]any)
				at[p] = next
			}
			at = next
		}
		at[parts[len(parts)-1]] = v
	}
	return out
}

// leaves returns each field of a decoded JSON document and its values, the
// way Elasticsearch indexes them: dotted paths, and a list's members as
// values of its field (objects in lists as their fields).
func leaves(v any) map[string][]string {
	out := make(map[string][]string)
	var walk func(path string, v any)
	walk = func(path string, v any) {
		switch x := v.(type) {
		case map[string]any:
			for k, e := range x {
				if path != "" {
					k = path + "." + k
				}
				walk(k, e)
			}
		case []any:
			for _, e := range x {
				walk(path, e)
			}
		default:
			b, _ := json.Marshal(x)
			out[path] = append(out[path], string(b))
		}
	}
	walk("", v)
	for _, vs := range out {
		slices.Sort(vs)
	}
	return out
}

// assertSameFields checks that got, appendDocument's output, is JSON with
// the fields and values of doc: the document Elasticsearch indexed before
// documents were nested.
func assertSameFields(t testing.TB, got []byte, doc map[string]any) {
	t.Helper()
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("appendDocument wrote invalid JSON %s: %v", got, err)
	}
	if err := json.Unmarshal(stdEncode(t, doc), &w); err != nil {
		t.Fatal(err)
	}
	if g, w := leaves(g), leaves(w); !reflect.DeepEqual(g, w) {
		t.Errorf("appendDocument wrote other fields:\n got %v\nwant %v\n(%s)", g, w, got)
	}
}

func TestAppendDocumentMatchesEncodingJSON(t *testing.T) {
	tests := []struct {
		name string
		doc  map[string]any
	}{
		{"empty", map[string]any{}},
		{"escapes exactly", map[string]any{"m": "q\" b\\ \n\r\t\a\b\f\x00 <&> \u2028\u2029 é \xff"}},
		{"scalars", map[string]any{"s": "x", "i": int64(-42), "n": 7, "f": 0.25, "t": true, "no": false, "nil": nil}},
		{"floats", map[string]any{"a": 1e21, "b": 1e-7, "c": 123456789.125, "d": 0.0, "e": -1e-6, "f": 3.0}},
		{"escapes", map[string]any{"m": "quote \" backslash \\ nl \n cr \r tab \t bell \a nul \x00 <html> & \u2028 \u2029 é 日本"}},
		{"invalid utf8", map[string]any{"m": "a\xffb\xc3(c", "\xfekey": "v"}},
		{"lists", map[string]any{"xff": []string{"1.2.3.4", "10.0.0.1"}, "times": []float64{0.1, 0.25}, "any": []any{"a", int64(1), 1.5, nil, map[string]any{"z": 1, "a": "b"}}}},
		{"nested", map[string]any{"source.geo.location": map[string]any{"lat": 51.5, "lon": -0.12}, "deep": map[string]any{"b": map[string]any{"c": []any{}}}}},
		{"dotted", map[string]any{"log.level": "info", "log.file.path": "/a", "log.offset": int64(3), "http.request.method": "GET",
			"http.response.status_code": int64(200), "http-x": 1.5, "http.request.id": "r", "message": "m", "a.b.c.d": true, "a.e": nil}},
		{"dotted in objects", map[string]any{"m": map[string]any{"x.y": int64(1), "x.z": "s", "w": map[string]any{"p.q": false}}}},
		{"escaped dotted", map[string]any{"é.\"q\"": "v", "é.b": "w", "\xff.x": "y"}},
		{"points", map[string]any{"p": map[string]any{"lat": "a\"", "lon": nil}, "q": map[string]any{"lat": 1.0, "lo": int64(2)}, "r": map[string]any{"lat": 1.0}}},
		{"fallback", map[string]any{"strs": map[string]string{"k": "v"}, "u": uint8(3)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := AppendDocument(nil, parser.DocOf(tt.doc))
			if err != nil {
				t.Fatal(err)
			}
			assertSameJSON(t, got, stdEncode(t, nested(tt.doc)))
			assertSameFields(t, got, tt.doc)
		})
	}
}

// TestAppendDocumentMerges checks documents where two values claim one
// path: objects merge, two values of a field become a list, and a value
// where an object goes keeps the other's dotted key. The document's own
// objects are not changed.
func TestAppendDocumentMerges(t *testing.T) {
	tests := []struct {
		name string
		doc  map[string]any
		want string
	}{
		{"object and dotted keys", map[string]any{"http": map[string]any{"method": "GET", "x.y": int64(1)}, "http.request.id": "r"},
			`{"http":{"method":"GET","request":{"id":"r"},"x":{"y":1}}}`},
		{"one field twice", map[string]any{"host": map[string]any{"name": "a"}, "host.name": "b"},
			`{"host":{"name":["a","b"]}}`},
		{"lists of one field", map[string]any{"tags": map[string]any{"x": []string{"a"}}, "tags.x": []any{"b"}},
			`{"tags":{"x":["a","b"]}}`},
		{"value where an object goes", map[string]any{"a": "x", "a.b": "y", "c": "z"},
			`{"a":"x","a.b":"y","c":"z"}`},
		{"null where an object goes", map[string]any{"a": nil, "a.b": "y"},
			`{"a":null,"a.b":"y"}`},
		{"empty names", map[string]any{"a..b": int64(1), "a.c": int64(2), ".d": int64(3), "e.": int64(4)},
			`{"a..b":1,"a":{"c":2},".d":3,"e.":4}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := fmt.Sprint(tt.doc)
			got, err := AppendDocument(nil, parser.DocOf(tt.doc))
			if err != nil {
				t.Fatal(err)
			}
			assertSameJSON(t, got, []byte(tt.want))
			assertSameFields(t, got, tt.doc)
			if after := fmt.Sprint(tt.doc); after != before {
				t.Errorf("document changed: %s, was %s", after, before)
			}
		})
	}
}

// TestAppendDocumentSortsPaths checks the fast path's output byte for
// byte: members in path order, each object opened once.
func TestAppendDocumentSortsPaths(t *testing.T) {
	doc := parser.NewDoc(8)
	for _, k := range []string{"url.path", "http.response.status_code", "@timestamp", "http.request.method", "http-x", "http.version", "url.original", "event.dataset"} {
		doc.Set(k, k)
	}
	got, err := AppendDocument(nil, doc)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"@timestamp":"@timestamp","event":{"dataset":"event.dataset"},"http":{"request":{"method":"http.request.method"},` +
		`"response":{"status_code":"http.response.status_code"},"version":"http.version"},"http-x":"http-x",` +
		`"url":{"original":"url.original","path":"url.path"}}`
	if string(got) != want {
		t.Errorf("appendDocument:\n got %s\nwant %s", got, want)
	}
}

func TestAppendDocumentRejectsNaN(t *testing.T) {
	for _, f := range []float64{math.NaN(), math.Inf(1), math.Inf(-1)} {
		if _, err := AppendDocument(nil, parser.DocOf(map[string]any{"x": f})); err == nil {
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
		// Keys valid UTF-8: two invalid keys could both be written as
		// U+FFFD, one key twice.
		vk := strings.ToValidUTF8(v, "\uFFFD")
		k = strings.ToValidUTF8(k, "\uFFFD")
		doc := map[string]any{k: v, "i": i, "x": x, "l": []any{v, k}, "m": map[string]any{vk: k}, "m." + k: v}
		got, err := AppendDocument(nil, parser.DocOf(doc))
		if err != nil {
			t.Fatal(err)
		}
		assertSameFields(t, got, doc)
	})
}

// TestAppendFloatMatchesEncodingJSON compares appendFloat with
// encoding/json byte for byte, on numbers appendDecimal writes (n/1e6) and
// on numbers it leaves to strconv.
func TestAppendFloatMatchesEncodingJSON(t *testing.T) {
	values := []float64{
		0, math.Copysign(0, -1), 1, -1, 0.1, 0.001, -0.001, 0.0005, 0.0015, 0.999, 1.5, 3.0, 12.5, 0.253,
		1e-6, -1e-6, 1.5e-6, 1e-7, 0.000001, 0.999999, 123456789.125, 999999999.999999, -999999999.999999,
		1e9, 1e9 - 0.5, 1e9 + 0.5, 1e12, 4.5e15, 1e21, math.MaxFloat64, math.SmallestNonzeroFloat64,
		0.1 + 0.2, 1.0 / 3, math.Pi, 51.5142, -0.1278, 37.751, -97.822,
		math.Nextafter(0.123, 1), math.Nextafter(0.123, 0), math.Nextafter(1e9, 0), math.Nextafter(1e-6, 0),
	}
	for n := int64(-3000); n <= 3000; n++ {
		values = append(values, float64(n)/1e6, float64(n)/1e4, float64(n)/1000, float64(n)/100, float64(n)/10)
	}
	r := rand.New(rand.NewPCG(5, 6))
	for range 100000 {
		values = append(values,
			float64(r.Int64N(2e15)-1e15)/1e6, // n/1e6 up to maxDecimal
			float64(r.Int64N(2e15)-1e15)/1000,
			float64(r.Int64N(2e9)-1e9)/1e4, // coordinates
			r.Float64()*math.Pow(10, float64(r.IntN(30)-10)),
			math.Float64frombits(r.Uint64()),
		)
	}
	for _, f := range values {
		if math.IsNaN(f) || math.IsInf(f, 0) {
			continue
		}
		want, err := json.Marshal(f)
		if err != nil {
			t.Fatal(err)
		}
		got, err := appendFloat(nil, f)
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("appendFloat(%v) = %s, %v; want %s", f, got, err, want)
		}
	}
}

func FuzzAppendFloat(f *testing.F) {
	f.Add(0.123, int64(123))
	f.Add(-1e9+1e-6, int64(-999999999999999))
	f.Add(1e21, int64(1))
	f.Fuzz(func(t *testing.T, x float64, n int64) {
		for _, v := range []float64{x, float64(n) / 1e6, float64(n) / 1000} {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				continue
			}
			want, _ := json.Marshal(v)
			if got, err := appendFloat(nil, v); err != nil || !bytes.Equal(got, want) {
				t.Fatalf("appendFloat(%v) = %s, %v; want %s", v, got, err, want)
			}
		}
	})
}

// TestAppendStringMatchesEncodingJSON compares appendString with
// encoding/json byte for byte on strings of every length up to 72 with one
// byte that needs escaping (or none) at every position.
func TestAppendStringMatchesEncodingJSON(t *testing.T) {
	for n := 0; n <= 72; n++ {
		base := strings.Repeat("abcdefgh", 9)[:n]
		cases := []string{base}
		for i := 0; i < n; i++ {
			for _, c := range []string{`"`, `\`, "\n", "\x00", "\x1f", " ", "~", "\x7f", "\x80", "\xff", "é", "\u2028"} {
				cases = append(cases, base[:i]+c+base[i+1:])
			}
		}
		for _, s := range cases {
			if got, want := appendString(nil, s), stdEncode(t, s); !bytes.Equal(got, want) {
				t.Errorf("appendString(%q) = %s, want %s", s, got, want)
			}
		}
	}
}

// BenchmarkAppendFloat writes the kinds of numbers documents hold: nginx
// times and coordinates (the decimal fast path) and a number with more
// digits (strconv).
func BenchmarkAppendFloat(b *testing.B) {
	for _, bc := range []struct {
		name string
		f    float64
	}{{"time", 0.123}, {"coordinate", -97.822}, {"long", 1.0 / 3}} {
		b.Run(bc.name, func(b *testing.B) {
			var buf []byte
			for b.Loop() {
				buf, _ = appendFloat(buf[:0], bc.f)
			}
		})
	}
}

// TestAppendDocumentPlans checks that documents of several key lists,
// interleaved, each get their own plan, and that a plan found under
// another list's hash is not used for it.
func TestAppendDocumentPlans(t *testing.T) {
	shapes := []map[string]any{
		{"log.level": "info", "message": "a", "service.name": "s"},
		{"log.level": "info", "message": "a", "service.name": "s", "url.path": "/x"},
		{"log.level": "info", "message": "a", "log.level.x": "s"},  // merged
		{"message": "a", "log.level": "info", "service.name": "s"}, // other order
	}
	for range 3 {
		for _, m := range shapes {
			got, err := AppendDocument(nil, parser.DocOf(m))
			if err != nil {
				t.Fatal(err)
			}
			assertSameFields(t, got, m)
		}
	}
	// A plan stored under the hash of another key list.
	a, b := parser.DocOf(shapes[0]), parser.DocOf(shapes[1])
	wrong := newPlan(b.Fields())
	plans.mu.Lock()
	plans.plans[keysHash(a.Fields())] = wrong
	plans.mu.Unlock()
	plans.last.Store(wrong)
	got, err := AppendDocument(nil, a)
	if err != nil {
		t.Fatal(err)
	}
	assertSameFields(t, got, shapes[0])
}

// BenchmarkAppendDocumentMerged measures the rare path: a service line
// whose own "http" object meets the http.request.id the parser sets.
func BenchmarkAppendDocumentMerged(b *testing.B) {
	doc := parser.DocOf(map[string]any{
		"@timestamp": "2026-11-25T10:00:00.000Z", "message": "order placed", "log.level": "info",
		"service.name": "checkout", "service.environment": "prod", "organization.name": "acme",
		"host.name": "node-1", "log.file.path": "/var/log/app.log", "log.offset": int64(1234),
		"event.dataset": "service", "event.created": "2026-11-25T10:00:00.100Z", "event.kind": "event", "ecs.version": "8.11.0",
		"http.request.id": "r-1", "trace.id": "4bf92f3577b34da6a3ce929d0e0e4736", "order_id": "A-1", "duration_ms": 12.5,
		"http": map[string]any{"method": "POST", "path": "/api/v1/orders", "status": int64(201)},
	})
	b.ReportAllocs()
	var buf []byte
	for b.Loop() {
		buf, _ = AppendDocument(buf[:0], doc)
	}
}
