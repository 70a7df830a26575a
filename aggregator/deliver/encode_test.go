package deliver

import (
	"bytes"
	"encoding/json"
	"math"
	"math/rand/v2"
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
		{"points", map[string]any{"p": map[string]any{"lat": "a\"", "lon": nil}, "q": map[string]any{"lat": 1.0, "lo": int64(2)}, "r": map[string]any{"lat": 1.0}}},
		{"fallback", map[string]any{"strs": map[string]string{"k": "v"}, "u": uint8(3)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := AppendDocument(nil, parser.DocOf(tt.doc))
			if err != nil {
				t.Fatal(err)
			}
			assertSameJSON(t, got, stdEncode(t, tt.doc))
		})
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
		doc := map[string]any{k: v, "i": i, "x": x, "l": []any{v, k}, "m": map[string]any{v: k}}
		got, err := AppendDocument(nil, parser.DocOf(doc))
		if err != nil {
			t.Fatal(err)
		}
		assertSameJSON(t, got, stdEncode(t, doc))
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
