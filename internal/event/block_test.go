package event

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// TestPooledEncoderReusesBlocksOnlyAfterRelease builds records of several
// shapes (short, long, over the arena limit, with every optional header)
// with a pooled encoder, holding each block as a shipper's burst does: held
// records never change while later ones are built, and once every block is
// released and the encoder idle, building the same records again allocates
// nothing.
func TestPooledEncoderReusesBlocksOnlyAfterRelease(t *testing.T) {
	base := Event{Type: "service", Node: "n1", Path: "/var/log/a.log", FileID: "f-1",
		ReadTime: time.Unix(0, 1764064800123456789), Fields: map[string]string{"service": "checkout"}}
	cases := []struct {
		name string
		line int
		opts bool
	}{
		{"short", 40, false},
		{"typical", 300, false},
		{"optional headers", 300, true},
		{"long", 9000, false},
		{"over the arena limit", maxArenaValue + 1, true},
	}
	flags := []string{FlagTruncated, FlagUnterminated}
	pool := NewBlockPool()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			enc := NewPooledEncoder("logs-service", &base, EncodeFields(base.Fields), pool)
			var held []*Block
			build := func(n int) []*kgo.Record {
				var recs []*kgo.Record
				for i := range n {
					ev := base
					ev.Offset = int64(i)
					ev.Line = bytes.Repeat([]byte{byte('a' + i%26)}, tc.line)
					if tc.opts {
						ev.Flags = flags
						ev.Stream, ev.LogTime = "stderr", time.Unix(0, int64(i))
					}
					recs = append(recs, enc.Record(&ev))
					if blk := enc.Block(); len(held) == 0 || held[len(held)-1] != blk {
						blk.Hold()
						held = append(held, blk)
					}
				}
				return recs
			}
			release := func() {
				enc.Idle()
				for _, blk := range held {
					blk.Release()
				}
				held = held[:0]
			}
			const n = 600 // several blocks of every class
			first := build(n)
			var want []string
			for _, r := range first {
				want = append(want, recordString(r))
			}
			second := build(n) // the first records' blocks are still held
			for i, r := range first {
				if got := recordString(r); got != want[i] {
					t.Fatalf("record %d changed while held:\n got %.80s\nwant %.80s", i, got, want[i])
				}
			}
			for i, r := range second {
				ev, err := Decode(r)
				if err != nil || ev.Offset != int64(i) || len(ev.Line) != tc.line {
					t.Fatalf("record %d decodes to offset %d, %d bytes (%v)", i, ev.Offset, len(ev.Line), err)
				}
			}
			release()
			build(n) // the pool has blocks for every class now
			release()
			allocs := testing.AllocsPerRun(3, func() {
				build(n)
				release()
			})
			// Building n events allocates their line (the test's own) and,
			// over the arena limit, the value; the records' memory nothing.
			wantAllocs := float64(n) + 2 // the test's line per record, slices
			if tc.line > maxArenaValue {
				wantAllocs += n
			}
			if allocs > wantAllocs+float64(n)/10 {
				t.Errorf("building %d records from released blocks made %.0f allocations, want about %.0f", n, allocs, wantAllocs)
			}
		})
	}
}

// recordString is a record's value and headers.
func recordString(r *kgo.Record) string {
	var b strings.Builder
	b.Write(r.Value)
	for _, h := range r.Headers {
		b.WriteString("|" + h.Key + "=" + string(h.Value))
	}
	return b.String()
}

// TestBlockReleasedTooOftenPanics: a release without a hold is a bug that
// would let two users write one block.
func TestBlockReleasedTooOftenPanics(t *testing.T) {
	b := NewBlockPool().get(0)
	b.Release()
	defer func() {
		if recover() == nil {
			t.Fatal("a second Release did not panic")
		}
	}()
	b.Release()
}
