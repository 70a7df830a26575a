package parser

import (
	"math/rand/v2"
	"testing"
	"time"
)

// referenceTimestamp is @timestamp as time's layout engine writes it.
func referenceTimestamp(t time.Time) string { return t.UTC().Format(timestampLayout) }

func TestAppendTimestamp(t *testing.T) {
	times := []time.Time{
		{},
		time.Unix(0, 0),
		time.Date(2026, 11, 25, 11, 0, 0, 123999999, time.FixedZone("", 3600)),
		time.Date(2026, 12, 31, 23, 59, 59, 999999999, time.UTC),
		time.Date(2024, 2, 29, 0, 0, 0, 1e6, time.FixedZone("", -9*3600-30*60)),
		time.Date(0, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(9999, 12, 31, 23, 59, 59, 999e6, time.UTC),
		time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC), // past 9999: falls back
		time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Unix(1e11, 5e8),
		time.Unix(0, 1<<62),
	}
	r := rand.New(rand.NewPCG(3, 4))
	for range 10000 {
		// Years -100 to 10100 in random zones.
		sec := r.Int64N(320e9) - 65e9
		times = append(times, time.Unix(sec, r.Int64N(1e9)).In(time.FixedZone("", (r.IntN(28)-14)*3600)))
	}
	for _, tm := range times {
		if got, want := formatTime(tm), referenceTimestamp(tm); got != want {
			t.Errorf("formatTime(%v) = %q, want %q", tm, got, want)
		}
	}
}

func FuzzAppendTimestamp(f *testing.F) {
	f.Add(int64(1764064800), int64(123456789))
	f.Add(int64(-62135596800), int64(0))
	f.Add(int64(253402300799), int64(999999999))
	f.Fuzz(func(t *testing.T, sec, nsec int64) {
		tm := time.Unix(sec, nsec)
		if got, want := formatTime(tm), referenceTimestamp(tm); got != want {
			t.Fatalf("formatTime(%d, %d) = %q, want %q", sec, nsec, got, want)
		}
	})
}

func BenchmarkFormatTime(b *testing.B) {
	tm := time.Date(2026, 11, 25, 11, 0, 0, 123999999, time.FixedZone("", 3600))
	b.Run("layout", func(b *testing.B) {
		b.ReportAllocs()
		var buf []byte
		for b.Loop() {
			buf = tm.UTC().AppendFormat(buf[:0], timestampLayout)
		}
	})
	b.Run("direct", func(b *testing.B) {
		b.ReportAllocs()
		var buf []byte
		for b.Loop() {
			buf = appendTimestamp(buf[:0], tm)
		}
	})
}

// TestTimesOutsideYears0To9999 reads no time whose UTC year has other than
// four digits: "9999-12-31T23:59:59-01:00" is 10000-01-01T00:59:59Z, which
// @timestamp used to hold with five digits and the index date fell back
// from to year 1 ("logs-...-0001.01.01"). The line keeps its read time.
func TestTimesOutsideYears0To9999(t *testing.T) {
	for _, s := range []string{"9999-12-31T23:59:59-01:00", "9999-12-31 23:30:00-0100", "0000-01-01T00:00:00+01:00"} {
		if tm, ok := parseDateTime(s); ok {
			t.Errorf("parseDateTime(%q) = %v, want not read", s, tm)
		}
	}
	if tm, ok := parseTimeLocal("31/Dec/9999:23:59:59 -0100"); ok {
		t.Errorf("parseTimeLocal read %v, want not read", tm)
	}
	for _, s := range []string{"9999-12-31T23:59:59Z", "9999-12-31T23:59:59+01:00", "0000-01-01T00:00:00Z", "0000-01-01T01:00:00+01:00"} {
		if _, ok := parseDateTime(s); !ok {
			t.Errorf("parseDateTime(%q) not read, want read", s)
		}
	}
	doc := NewDoc(4)
	if err := ParseService([]byte(`{"@timestamp":"9999-12-31T23:59:59-01:00","message":"m"}`), doc); err != nil {
		t.Fatal(err)
	}
	if v, ok := doc.Get("@timestamp"); ok {
		t.Errorf("@timestamp = %v, want none (the read time is used)", v)
	}
	if v, _ := doc.Get("_@timestamp"); v != "9999-12-31T23:59:59-01:00" {
		t.Errorf("_@timestamp = %v, want the raw value", v)
	}
}
