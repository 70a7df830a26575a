package queue

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicelog/sluice/internal/budget"
)

func msg(value string) Message {
	return Message{Record: &kgo.Record{Value: []byte(value)}}
}

func values(ms []Message) []string {
	var out []string
	for _, m := range ms {
		out = append(out, string(m.Record.Value))
	}
	return out
}

func TestTakeReturnsInOrderUpToMax(t *testing.T) {
	tests := []struct {
		name     string
		put      []string
		maxItems int
		want     []string
	}{
		{"fewer than max", []string{"a", "b"}, 10, []string{"a", "b"}},
		{"exactly max", []string{"a", "b", "c"}, 3, []string{"a", "b", "c"}},
		{"more than max", []string{"a", "b", "c"}, 2, []string{"a", "b"}},
		{"max below one takes one", []string{"a", "b"}, 0, []string{"a"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := New(1 << 20)
			for _, v := range tt.put {
				if err := q.Put(context.Background(), msg(v)); err != nil {
					t.Fatal(err)
				}
			}
			got, err := q.Take(context.Background(), tt.maxItems)
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(values(got)) != fmt.Sprint(tt.want) {
				t.Fatalf("took %v, want %v", values(got), tt.want)
			}
		})
	}
}

func TestPutBlocksWhileFullAndResumesAfterTake(t *testing.T) {
	one := budget.Size(msg("0123456789").Record)
	q := New(2 * one)
	ctx := context.Background()
	for i := 0; i < 2; i++ {
		if err := q.Put(ctx, msg("0123456789")); err != nil {
			t.Fatal(err)
		}
	}
	if n, b := q.Len(); n != 2 || b != 2*one {
		t.Fatalf("Len = %d, %d; want 2, %d", n, b, 2*one)
	}
	done := make(chan error, 1)
	go func() { done <- q.Put(ctx, msg("0123456789")) }()
	select {
	case err := <-done:
		t.Fatalf("Put into a full queue returned %v instead of blocking", err)
	case <-time.After(100 * time.Millisecond):
	}
	if _, err := q.Take(ctx, 1); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Put still blocked after Take freed room")
	}
	if _, b := q.Len(); b > 2*one {
		t.Fatalf("queue holds %d bytes, over its bound %d", b, 2*one)
	}
}

func TestOversizedMessageFitsAnEmptyQueue(t *testing.T) {
	q := New(8)
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := q.Put(ctx, msg("far more than eight bytes")); err != nil {
		t.Fatalf("oversized message into an empty queue: %v", err)
	}
	if err := q.Put(ctx, msg("x")); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("second Put = %v, want to block until the deadline", err)
	}
}

func TestPutAndTakeEndWithTheirContext(t *testing.T) {
	q := New(1)
	if err := q.Put(context.Background(), msg("fill")); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- q.Put(ctx, msg("blocked")) }()
	time.Sleep(20 * time.Millisecond)
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("Put after cancel = %v, want context.Canceled", err)
	}
	if n, _ := q.Len(); n != 1 {
		t.Fatalf("a cancelled Put left %d messages, want 1", n)
	}

	empty := New(1 << 10)
	ctx, cancel = context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := empty.Take(ctx, 10); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Take on an empty queue = %v, want context.DeadlineExceeded", err)
	}
}

func TestCloseDrainsThenReportsClosed(t *testing.T) {
	q := New(1 << 10)
	ctx := context.Background()
	if err := q.Put(ctx, msg("a")); err != nil {
		t.Fatal(err)
	}
	waiting := make(chan error, 1)
	empty := New(1 << 10)
	go func() { _, err := empty.Take(ctx, 1); waiting <- err }()
	q.Close()
	empty.Close()
	if err := <-waiting; !errors.Is(err, ErrClosed) {
		t.Fatalf("Take waiting on a closed empty queue = %v, want ErrClosed", err)
	}
	if err := q.Put(ctx, msg("b")); !errors.Is(err, ErrClosed) {
		t.Fatalf("Put after Close = %v, want ErrClosed", err)
	}
	got, err := q.Take(ctx, 10)
	if err != nil || fmt.Sprint(values(got)) != "[a]" {
		t.Fatalf("Take after Close = %v, %v; want [a]", values(got), err)
	}
	if _, err := q.Take(ctx, 10); !errors.Is(err, ErrClosed) {
		t.Fatalf("Take on closed and drained queue = %v, want ErrClosed", err)
	}
}

func TestConcurrentProducersAndConsumerLoseNothing(t *testing.T) {
	q := New(256)
	ctx := context.Background()
	const producers, each = 4, 500
	for p := 0; p < producers; p++ {
		go func() {
			for i := 0; i < each; i++ {
				if err := q.Put(ctx, msg(fmt.Sprintf("%d-%d", p, i))); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	seen := map[string]bool{}
	for len(seen) < producers*each {
		ms, err := q.Take(ctx, 7)
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range values(ms) {
			if seen[v] {
				t.Fatalf("%s taken twice", v)
			}
			seen[v] = true
		}
	}
}
