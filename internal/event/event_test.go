package event

import (
	"errors"
	"reflect"
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
