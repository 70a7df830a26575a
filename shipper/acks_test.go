package shipper

import "testing"

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
