package event

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

func TestRecordRoundTrip(t *testing.T) {
	ev := Event{Type: "nginx", Node: "n1", Path: "/var/log/a.log", FileID: "f-1", Offset: 4242,
		ReadTime: time.Unix(0, 1764064800123456789), Fields: map[string]string{"service": "edge"},
		Flags: []string{FlagTruncated}, Line: []byte("raw line")}
	rec := ev.Record("logs-nginx", EncodeFields(ev.Fields))
	if string(rec.Key) != "f-1" || string(rec.Value) != "raw line" || rec.Topic != "logs-nginx" {
		t.Fatalf("record %+v", rec)
	}
	got, err := Decode(rec)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, ev) && !(got.ReadTime.Equal(ev.ReadTime)) {
		t.Fatalf("round trip: got %+v, want %+v", got, ev)
	}
	got.ReadTime = ev.ReadTime
	if !reflect.DeepEqual(got, ev) {
		t.Fatalf("round trip: got %+v, want %+v", got, ev)
	}
}

func TestDecodeRejectsForeignRecords(t *testing.T) {
	for _, rec := range []*kgo.Record{
		{Value: []byte("x")},
		{Headers: []kgo.RecordHeader{{Key: HeaderType, Value: []byte("a")}, {Key: HeaderFile, Value: []byte("f")}, {Key: HeaderOffset, Value: []byte("x")}}},
		{Headers: []kgo.RecordHeader{{Key: HeaderType, Value: []byte("a")}, {Key: HeaderFile, Value: []byte("f")}, {Key: HeaderOffset, Value: []byte("1")}, {Key: HeaderFields, Value: []byte("{")}}},
	} {
		if _, err := Decode(rec); !errors.Is(err, ErrMalformed) {
			t.Errorf("Decode(%v) = %v, want ErrMalformed", rec.Headers, err)
		}
	}
}

func TestDocIDIsDeterministicAndDistinct(t *testing.T) {
	a := DocID("n", "f", 10)
	if a != DocID("n", "f", 10) {
		t.Fatal("same line, different ids")
	}
	for _, other := range []string{DocID("n", "f", 11), DocID("m", "f", 10), DocID("n", "g", 10), DocID("nf", "", 10)} {
		if other == a {
			t.Fatalf("distinct lines share id %s", a)
		}
	}
	if len(a) != 20 {
		t.Fatalf("id %q has %d characters", a, len(a))
	}
}

// TestEncoderRecordsDoNotShareMemory builds many records with one encoder
// (records, header lists and bytes come from shared blocks), with and
// without the optional headers, then checks each still decodes to its own
// event and that appending to one record's headers leaves the next alone.
func TestEncoderRecordsDoNotShareMemory(t *testing.T) {
	base := Event{Type: "service", Node: "n1", Path: "/var/log/a.log", FileID: "f-1",
		ReadTime: time.Unix(0, 1764064800123456789), Fields: map[string]string{"service": "checkout"}}
	enc := NewEncoder("logs-service", &base, EncodeFields(base.Fields))
	var want []Event
	var recs []*kgo.Record
	for i := range 500 {
		ev := base
		ev.Offset = int64(i * 100)
		ev.Line = []byte(strings.Repeat("x", i%97))
		if i%3 == 0 {
			ev.Flags = []string{FlagTruncated}
		}
		if i%5 == 0 {
			ev.Stream, ev.LogTime = "stderr", time.Unix(0, int64(i))
		}
		want = append(want, ev)
		recs = append(recs, enc.Record(&ev))
	}
	for i, rec := range recs {
		if !rec.Timestamp.Equal(base.ReadTime) {
			t.Fatalf("record %d: timestamp %v, want the read time", i, rec.Timestamp)
		}
		rec.Headers = append(rec.Headers, kgo.RecordHeader{Key: "extra", Value: []byte("x")})
		rec.Value = append(rec.Value, '!')
		got, err := Decode(rec)
		if err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
		w := want[i]
		w.Line = append(w.Line, '!')
		if got.Offset != w.Offset || string(got.Line) != string(w.Line) || got.Stream != w.Stream ||
			!got.LogTime.Equal(w.LogTime) || !reflect.DeepEqual(got.Flags, w.Flags) {
			t.Fatalf("record %d decodes to %+v, want %+v", i, got, w)
		}
	}
}

// TestParseInt compares parseInt with strconv.ParseInt, errors included.
func TestParseInt(t *testing.T) {
	inputs := []string{"", "0", "7", "4242", "1764064800123456789", "999999999999999999", "9223372036854775807",
		"9223372036854775808", "9999999999999999999", "10000000000000000000", "18446744073709551616", "-1", "+5", "-9223372036854775808", "12a", " 1", "1 ", "0x10", "1_000", "٣", "00012"}
	for n := int64(1); n > 0 && n < 1e18; n *= 7 {
		inputs = append(inputs, strconv.FormatInt(n, 10), strconv.FormatInt(n-1, 10))
	}
	for _, in := range inputs {
		got, gotErr := parseInt([]byte(in))
		want, wantErr := strconv.ParseInt(in, 10, 64)
		if got != want || fmt.Sprint(gotErr) != fmt.Sprint(wantErr) {
			t.Errorf("parseInt(%q) = %d, %v; want %d, %v", in, got, gotErr, want, wantErr)
		}
	}
}

func FuzzParseInt(f *testing.F) {
	f.Add("1764064800123456789")
	f.Add("-12")
	f.Fuzz(func(t *testing.T, in string) {
		got, gotErr := parseInt([]byte(in))
		want, wantErr := strconv.ParseInt(in, 10, 64)
		if got != want || fmt.Sprint(gotErr) != fmt.Sprint(wantErr) {
			t.Fatalf("parseInt(%q) = %d, %v; want %d, %v", in, got, gotErr, want, wantErr)
		}
	})
}

// BenchmarkDecode decodes the records of one file, as the aggregator does.
func BenchmarkDecode(b *testing.B) {
	ev := Event{Type: "nginx", Node: "node-1", Path: "/var/log/app/prod/acme/checkout/app.log", FileID: "2049-1234567-1764064800000000000",
		ReadTime: time.Unix(0, 1764064800123456789), Fields: map[string]string{"service": "edge", "environment": "prod"}}
	enc := NewEncoder("logs-nginx", &ev, EncodeFields(ev.Fields))
	recs := make([]*kgo.Record, 1024)
	for i := range recs {
		ev.Offset += 300
		ev.Line = []byte("a line")
		recs[i] = enc.Record(&ev)
	}
	b.ReportAllocs()
	var d Decoder
	i := 0
	for b.Loop() {
		if _, err := d.Decode(recs[i%len(recs)]); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// TestDecoderInterleavedFiles decodes records of several files, in runs
// and interleaved, with one decoder, which shares their strings.
func TestDecoderInterleavedFiles(t *testing.T) {
	var events []Event
	var recs []*kgo.Record
	for i := range 3 {
		ev := Event{Type: []string{"nginx", "service", "nginx"}[i], Node: fmt.Sprint("n", i%2), Path: fmt.Sprint("/var/log/", i, ".log"),
			FileID: fmt.Sprint("f-", i), ReadTime: time.Unix(0, int64(i)), Fields: map[string]string{"service": fmt.Sprint("s", i)}}
		enc := NewEncoder("t", &ev, EncodeFields(ev.Fields))
		for j := range 3 {
			ev.Offset, ev.Line = int64(j), []byte(fmt.Sprint("line ", i, j))
			events = append(events, ev)
			recs = append(recs, enc.Record(&ev))
		}
	}
	var d Decoder
	for _, order := range [][]int{{0, 1, 2, 3, 4, 5, 6, 7, 8}, {0, 3, 6, 1, 4, 7, 2, 5, 8}, {8, 0, 0, 5, 5, 1}} {
		for _, k := range order {
			got, err := d.Decode(recs[k])
			if err != nil {
				t.Fatal(err)
			}
			want := events[k]
			if got.Type != want.Type || got.Node != want.Node || got.Path != want.Path || got.FileID != want.FileID ||
				got.Offset != want.Offset || !reflect.DeepEqual(got.Fields, want.Fields) || string(got.Line) != string(want.Line) {
				t.Errorf("record %d: got %+v, want %+v", k, got, want)
			}
		}
	}
}

// referenceDocID is DocID as first written; ids must never change.
func referenceDocID(node, fileID string, offset int64) string {
	h := sha256.New()
	h.Write([]byte(node))
	h.Write([]byte{0})
	h.Write([]byte(fileID))
	var off [8]byte
	binary.BigEndian.PutUint64(off[:], uint64(offset))
	h.Write(off[:])
	var sum [sha256.Size]byte
	return base64.RawURLEncoding.EncodeToString(h.Sum(sum[:0])[:15])
}

// TestDocIDStable pins ids and compares DocID with the reference, also for
// names too long for its stack buffer.
func TestDocIDStable(t *testing.T) {
	pinned := []struct {
		node, file string
		offset     int64
		id         string
	}{
		{"node-1", "2049-1234567-1764064800000000000", 4242, "LLVdYzLbJKSuJ5fXqtKE"},
	}
	for _, p := range pinned {
		if got := DocID(p.node, p.file, p.offset); got != p.id {
			t.Errorf("DocID(%q, %q, %d) = %s, want %s", p.node, p.file, p.offset, got, p.id)
		}
	}
	long := strings.Repeat("n", 200)
	for _, node := range []string{"", "n", "node-1", long} {
		for _, file := range []string{"", "f", "2049-1234567-1764064800000000000", long} {
			for _, off := range []int64{0, 1, 4242, -1, 1 << 62} {
				if got, want := DocID(node, file, off), referenceDocID(node, file, off); got != want {
					t.Errorf("DocID(%q, %q, %d) = %s, want %s", node, file, off, got, want)
				}
			}
		}
	}
}

func BenchmarkDocID(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		_ = DocID("node-1", "2049-1234567-1764064800000000000", 4242)
	}
}

// TestWithFlag adds a flag to a record's headers: to an existing flags
// header, as a new one, or not at all when it is there; the headers given
// are never changed.
func TestWithFlag(t *testing.T) {
	tests := []struct {
		name      string
		flags     string // "" for no flags header
		wantFlags string
		wantHad   bool
	}{
		{"no flags header", "", "truncated", false},
		{"other flags", "unterminated", "unterminated,truncated", false},
		{"already there", "unterminated,truncated", "unterminated,truncated", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := []kgo.RecordHeader{{Key: HeaderType, Value: []byte("service")}}
			if tt.flags != "" {
				in = append(in, kgo.RecordHeader{Key: HeaderFlags, Value: []byte(tt.flags)})
			}
			before := fmt.Sprint(in)
			out, had := WithFlag(in, FlagTruncated)
			var flags string
			for _, h := range out {
				if h.Key == HeaderFlags {
					flags = string(h.Value)
				}
			}
			if flags != tt.wantFlags || had != tt.wantHad || string(out[0].Value) != "service" {
				t.Errorf("flags %q had %v, want %q %v (headers %v)", flags, had, tt.wantFlags, tt.wantHad, out)
			}
			if fmt.Sprint(in) != before {
				t.Errorf("the given headers changed: %v, were %v", in, before)
			}
		})
	}
}

// A line shipped unterminated and the whole line read again from the same
// offset after a lost acknowledgement are two documents: with the same id,
// action: create would keep the partial one and lose the line's end.
func TestUnterminatedDocIDIncludesLength(t *testing.T) {
	partial := Event{Node: "n", FileID: "f", Offset: 10, Flags: []string{FlagUnterminated}, Line: []byte("abc")}
	whole := Event{Node: "n", FileID: "f", Offset: 10, Line: []byte("abcdef")}
	if partial.DocID() == whole.DocID() {
		t.Fatal("an unterminated line and the completed line share an id")
	}
	if whole.DocID() != DocID("n", "f", 10) {
		t.Fatal("a whole line's id changed")
	}
	longer := partial
	longer.Line = []byte("abcd")
	if partial.DocID() == longer.DocID() || partial.DocID() != UnterminatedDocID("n", "f", 10, 3) {
		t.Fatal("unterminated ids do not follow the length")
	}
}
