package event

import (
	"errors"
	"reflect"
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
