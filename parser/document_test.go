package parser

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"testing"
)

// checkAgainst fails t unless d holds exactly the fields of want, finds
// each, and finds no other key of keys.
func checkAgainst(t *testing.T, d *Doc, want map[string]any, keys []string) {
	t.Helper()
	if got := d.Map(); !reflect.DeepEqual(got, want) || d.Len() != len(want) {
		t.Fatalf("document %v (%d fields), want %v", got, d.Len(), want)
	}
	for _, k := range keys {
		v, ok := d.Get(k)
		w, wok := want[k]
		if ok != wok || !reflect.DeepEqual(v, w) || d.Has(k) != wok {
			t.Fatalf("Get(%q) = %v, %v; want %v, %v", k, v, ok, w, wok)
		}
		key := NewKey(k)
		if v, ok := d.GetKey(key); ok != wok || !reflect.DeepEqual(v, w) || d.HasKey(key) != wok {
			t.Fatalf("GetKey(%q) = %v, %v; want %v, %v", k, v, ok, w, wok)
		}
	}
	seen := map[string]bool{}
	for k := range d.All() {
		if seen[k] {
			t.Fatalf("key %q twice", k)
		}
		seen[k] = true
	}
}

// TestDocOperations sets, replaces and deletes fields in documents small
// enough to be searched in turn and large enough to be indexed, comparing
// with a map after every step.
func TestDocOperations(t *testing.T) {
	for _, n := range []int{1, linearFields, linearFields + 1, 40, 300} {
		var keys []string
		for i := range n + 5 {
			keys = append(keys, fmt.Sprintf("field.%d", i))
		}
		d := &Doc{}
		want := map[string]any{}
		step := func(op string, k string, v any) {
			t.Helper()
			switch op {
			case "set":
				d.Set(k, v)
				want[k] = v
			case "delete":
				_, had := want[k]
				if d.Delete(k) != had {
					t.Fatalf("Delete(%q) = %v, want %v", k, !had, had)
				}
				delete(want, k)
			}
			checkAgainst(t, d, want, keys)
		}
		for round := range 2 { // the second round reuses the memory after Reset
			for i := range n {
				step("set", keys[i], i)
			}
			for i := 0; i < n; i += 3 {
				step("set", keys[i], fmt.Sprint("replaced ", i))
			}
			for i := 0; i < n; i += 2 {
				step("delete", keys[i], nil)
			}
			step("delete", keys[n+1], nil) // absent
			for i := 0; i < n; i += 4 {
				step("set", keys[i], int64(i))
			}
			for i := n - 1; i >= 0; i-- {
				step("delete", keys[i], nil)
			}
			step("set", "x", round)
			d.Reset()
			want = map[string]any{}
			checkAgainst(t, d, want, keys)
		}
	}
}

func TestDocOfCloneAndJSON(t *testing.T) {
	m := map[string]any{"b": "2", "a": int64(1), "c": map[string]any{"d": []string{"e"}}}
	d := DocOf(m)
	if got := d.Map(); !reflect.DeepEqual(got, m) {
		t.Errorf("DocOf(%v).Map() = %v", m, got)
	}
	if d.Fields()[0].Key != "a" || d.Fields()[2].Key != "c" {
		t.Errorf("DocOf keeps the keys in order: %v", d.Fields())
	}
	c := d.Clone()
	c.Set("a", "changed")
	c.Delete("b")
	if v, _ := d.Get("a"); v != int64(1) || !d.Has("b") {
		t.Errorf("changing a clone changed the original: %v", d)
	}
	b, err := d.MarshalJSON()
	if err != nil || string(b) != `{"a":1,"b":"2","c":{"d":["e"]}}` {
		t.Errorf("MarshalJSON = %s, %v", b, err)
	}
	if s := fmt.Sprint(d); s != string(b) {
		t.Errorf("String = %s", s)
	}
	// Encoded as a map is, HTML escapes included or not.
	html := DocOf(map[string]any{"m": "<b>&</b>", "n": map[string]any{"x": "<"}})
	for _, escape := range []bool{true, false} {
		var got, want bytes.Buffer
		for _, w := range []struct {
			b *bytes.Buffer
			v any
		}{{&got, html}, {&want, html.Map()}} {
			enc := json.NewEncoder(w.b)
			enc.SetEscapeHTML(escape)
			if err := enc.Encode(w.v); err != nil {
				t.Fatal(err)
			}
		}
		if got.String() != want.String() {
			t.Errorf("escaping HTML %v: encoded %s, want %s", escape, got.String(), want.String())
		}
	}
	var zero Doc
	if zero.Len() != 0 || zero.Has("a") {
		t.Error("the zero Doc is not empty")
	}
	zero.Delete("a")
	zero.Set("a", 1)
	if v, ok := zero.Get("a"); !ok || v != 1 {
		t.Errorf("zero Doc: Get = %v, %v", v, ok)
	}
}

// FuzzDoc applies operations read from the input to a document and to a
// map, and compares them after each.
func FuzzDoc(f *testing.F) {
	f.Add([]byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 128, 129, 130, 255})
	f.Add([]byte("set many keys then delete them all: \x80\x81\x82\x83\x84\x85\x86\x87\x88\x89"))
	f.Fuzz(func(t *testing.T, ops []byte) {
		// Keys from a small alphabet, so that sets replace and deletes
		// hit; some share a prefix and a length.
		var keys []string
		for i := range 48 {
			keys = append(keys, fmt.Sprintf("k%d", i), fmt.Sprintf("source.geo.%02d", i))
		}
		d := &Doc{}
		want := map[string]any{}
		for i, op := range ops {
			k := keys[int(op&0x7f)%len(keys)]
			byKey := i%3 == 1 // Key and string operations mixed
			switch {
			case op == 0xff:
				d.Reset()
				clear(want)
			case op&0x80 != 0:
				_, had := want[k]
				if byKey && d.DeleteKey(NewKey(k)) != had || !byKey && d.Delete(k) != had {
					t.Fatalf("Delete(%q) = %v, want %v", k, !had, had)
				}
				delete(want, k)
			case byKey:
				d.SetKey(NewKey(k), i)
				want[k] = i
			default:
				d.Set(k, i)
				want[k] = i
			}
			checkAgainst(t, d, want, keys)
		}
	})
}

// benchKeys are the fields of an nginx document with GeoIP, as the
// aggregator builds it.
var benchKeys = []string{"source.address", "source.ip", "@timestamp", "http.request.method", "url.original", "http.version",
	"http.response.status_code", "http.response.body.bytes", "http.request.referrer", "user_agent.original",
	"nginx.request_time", "event.duration", "nginx.upstream_response_time", "nginx.x_forwarded_for",
	"service.name", "service.environment", "event.dataset", "event.created", "host.name", "log.file.path", "log.offset",
	"client.ip", "source.geo.location", "source.geo.country_iso_code", "source.geo.country_name", "source.geo.region_name",
	"source.geo.region_iso_code", "source.geo.city_name", "source.geo.continent_name", "source.geo.continent_code",
	"source.geo.postal_code", "source.geo.timezone"}

// BenchmarkDoc builds, reads, walks and resets a document the size of an
// nginx document, and the same with a map.
func BenchmarkDoc(b *testing.B) {
	lookups := []string{"source.ip", "nginx.x_forwarded_for", "url.original", "user_agent.original", "nginx.http_cookie", "nginx", "@timestamp", "service.name"}
	var v any = "value"
	b.Run("Doc", func(b *testing.B) {
		d := NewDoc(40)
		n := 0
		for b.Loop() {
			for _, k := range benchKeys {
				d.Set(k, v)
			}
			for _, k := range lookups {
				if d.Has(k) {
					n++
				}
			}
			for _, f := range d.Fields() {
				n += len(f.Key)
			}
			d.Reset()
		}
	})
	b.Run("map", func(b *testing.B) {
		m := make(map[string]any, 40)
		n := 0
		for b.Loop() {
			for _, k := range benchKeys {
				m[k] = v
			}
			for _, k := range lookups {
				if _, ok := m[k]; ok {
					n++
				}
			}
			for k := range m {
				n += len(k)
			}
			clear(m)
		}
	})
}
