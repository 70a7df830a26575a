package shipper

import (
	"maps"
	"testing"
)

func TestAckTrackerMovesOnlyInOrder(t *testing.T) {
	tr := newAckTracker(100)
	a := tr.sent(110)
	b := tr.sent(120)
	c := tr.sent(130)
	steps := []struct {
		ack   uint64
		want  int64
		moved bool
	}{
		{b, 100, false}, // a later line acknowledged first does not move the offset
		{c, 100, false},
		{a, 130, true}, // the earliest one releases all three
	}
	for i, s := range steps {
		got, moved := tr.ack(s.ack)
		if got != s.want || moved != s.moved {
			t.Fatalf("step %d: ack(%d) = %d, %v; want %d, %v", i, s.ack, got, moved, s.want, s.moved)
		}
	}
	if n := tr.outstanding(); n != 0 {
		t.Fatalf("outstanding = %d, want 0", n)
	}
	d := tr.sent(140)
	if got, _ := tr.ack(d); got != 140 {
		t.Fatalf("after more lines, offset = %d, want 140", got)
	}
}

// TestAckTrackerStreamEnds: the streams' ends move only with the in-order
// acknowledgement, and those the offset passed are dropped.
func TestAckTrackerStreamEnds(t *testing.T) {
	tr := newAckTracker(0)
	tr.resumeStreams(map[string]int64{"stderr": 40})
	a := tr.sentMarked(10, []streamEnd{{"stdout", 60}}, lineCheck{}) // stdout's event 20-60 shipped, stderr pends at 10
	b := tr.sentMarked(80, []streamEnd{{"stderr", 80}}, lineCheck{})
	tr.ack(b)
	if got, _ := tr.streamEnds(); !maps.Equal(got, map[string]int64{"stderr": 40}) {
		t.Fatalf("streams %v before the first acknowledgement, want the resumed ones", got)
	}
	tr.ack(a)
	if got, ok := tr.streamEnds(); !ok || got != nil {
		t.Fatalf("streams %v at offset %d, want none past it", got, tr.offset())
	}
	c := tr.sentMarked(90, []streamEnd{{"stdout", 120}}, lineCheck{})
	tr.ack(c)
	if got, _ := tr.streamEnds(); !maps.Equal(got, map[string]int64{"stdout": 120}) {
		t.Fatalf("streams %v, want stdout's end past the offset", got)
	}
}
