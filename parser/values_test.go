package parser

import (
	"fmt"
	"reflect"
	"testing"
)

// TestDocValues checks that values stored in a document's block are the
// values given, of their types, that they outlive Reset and that a full
// block falls back to ordinary interfaces.
func TestDocValues(t *testing.T) {
	d := &Doc{}
	var got, want []any
	for i := range 40 {
		s := fmt.Sprintf("s%d", i)
		got = append(got, d.StringValue(s), d.IntValue(int64(i)*1000), d.FloatValue(float64(i)+0.5))
		want = append(want, s, int64(i)*1000, float64(i)+0.5)
		if i%3 == 0 {
			got = append(got, d.listValue(fmt.Sprintf(" a%d, ,b%d ", i, i)))
			want = append(want, []string{fmt.Sprint("a", i), fmt.Sprint("b", i)})
		}
		if i%7 == 0 {
			d.Reset()
		}
	}
	if d.listValue(" , ") != nil {
		t.Error("empty list is not nil")
	}
	for i := range want {
		if !reflect.DeepEqual(got[i], want[i]) {
			t.Errorf("value %d = %#v, want %#v", i, got[i], want[i])
		}
	}
	// A list in the block has no room to grow into the next values.
	if l := (&Doc{}).listValue("a, b,,"); len(l.([]string)) != 2 || cap(l.([]string)) != 2 {
		t.Errorf("list %#v has capacity %d", l, cap(l.([]string)))
	}
}

func TestDocValuesAllocs(t *testing.T) {
	n := testing.AllocsPerRun(100, func() {
		d := NewDoc(8)
		d.Set("n", d.IntValue(100000)) // no block yet: boxed
		d.Set("a", d.StringValue("x"))
		d.Set("b", d.IntValue(100000))
		d.Set("c", d.FloatValue(0.25))
		d.Set("d", d.listValue("1.2.3.4, 10.0.0.1"))
	})
	if n > 4 { // the Doc, its fields, its values and the first number
		t.Errorf("%v allocations", n)
	}
}

func TestPlainKey(t *testing.T) {
	for key, plain := range map[string]bool{"source.geo.city_name": true, "@timestamp": true, `a"b`: false, `a\b`: false, "é": false, "a\nb": false, "": true} {
		d := NewDoc(0)
		for i := range 10 { // indexed from the ninth field
			d.Set(fmt.Sprint("k", i), i)
		}
		d.SetKey(NewKey(key), 1)
		d.Set(key, 2) // replaced, still found through either hash
		if v, _ := d.GetKey(NewKey(key)); v != 2 || d.Len() != 11 {
			t.Errorf("%q: %v, %d fields", key, v, d.Len())
		}
		f := d.Fields()[10]
		if f.PlainKey() != plain {
			t.Errorf("%q: PlainKey() = %v", key, f.PlainKey())
		}
	}
}
