package budget

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

func TestSize(t *testing.T) {
	r := &kgo.Record{Topic: "logs", Key: []byte("k"), Value: []byte("0123456789"),
		Headers: []kgo.RecordHeader{{Key: "t", Value: []byte("svc")}}}
	if got, want := Size(r), int64(4+1+10+1+3+Overhead); got != want {
		t.Fatalf("Size = %d, want %d", got, want)
	}
}

// granted reports whether Acquire(n) returns within a short while.
func granted(b *Bytes, n int64) bool {
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	return b.Acquire(ctx, n) == nil
}

func TestAcquireWaitsForRoom(t *testing.T) {
	b := New(100)
	if !granted(b, 60) || !b.TryAcquire(40) {
		t.Fatal("100 bytes of a 100-byte budget not granted")
	}
	if b.TryAcquire(1) || granted(b, 1) {
		t.Fatal("granted past the budget")
	}
	got := make(chan error, 1)
	go func() { got <- b.Acquire(context.Background(), 50) }()
	time.Sleep(20 * time.Millisecond)
	b.Release(40)
	select {
	case err := <-got:
		t.Fatalf("granted 50 with 40 free: %v", err)
	case <-time.After(30 * time.Millisecond):
	}
	b.Release(10)
	if err := <-got; err != nil {
		t.Fatal(err)
	}
	if b.Held() != 100 || !b.Full() {
		t.Fatalf("held %d, want 100", b.Held())
	}
}

// A request larger than the budget is granted alone, not never.
func TestOversizeGrantedAlone(t *testing.T) {
	b := New(100)
	b.Charge(10)
	if granted(b, 500) {
		t.Fatal("oversize granted while other bytes are held")
	}
	b.Release(10)
	if !granted(b, 500) {
		t.Fatal("oversize not granted on an empty budget")
	}
	if b.TryAcquire(1) {
		t.Fatal("granted beside an oversize request")
	}
}

// Waiters are served in order: a small request does not overtake a large
// one waiting before it, so that the large one is not starved.
func TestFIFO(t *testing.T) {
	b := New(100)
	b.Charge(90)
	large := make(chan error, 1)
	go func() { large <- b.Acquire(context.Background(), 80) }()
	time.Sleep(20 * time.Millisecond)
	if b.TryAcquire(5) || granted(b, 5) {
		t.Fatal("a small request overtook a waiting large one")
	}
	b.Release(90)
	if err := <-large; err != nil {
		t.Fatal(err)
	}
	if !granted(b, 20) {
		t.Fatal("20 bytes not granted with 20 free")
	}
}

// A waiter that gives up lets the next in line through.
func TestCancelledWaiterLeavesTheLine(t *testing.T) {
	b := New(100)
	b.Charge(50)
	ctx, cancel := context.WithCancel(context.Background())
	first := make(chan error, 1)
	go func() { first <- b.Acquire(ctx, 80) }()
	time.Sleep(20 * time.Millisecond)
	second := make(chan error, 1)
	go func() { second <- b.Acquire(context.Background(), 30) }()
	time.Sleep(20 * time.Millisecond)
	cancel()
	if err := <-first; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled Acquire = %v", err)
	}
	if err := <-second; err != nil {
		t.Fatal(err)
	}
	if b.Held() != 80 {
		t.Fatalf("held %d, want 80", b.Held())
	}
}

func TestClose(t *testing.T) {
	b := New(10)
	b.Charge(10)
	waiting := make(chan error, 1)
	go func() { waiting <- b.Acquire(context.Background(), 5) }()
	time.Sleep(20 * time.Millisecond)
	b.Close()
	if err := <-waiting; !errors.Is(err, ErrClosed) {
		t.Fatalf("waiting Acquire at Close = %v", err)
	}
	b.Release(10)
	if err := b.Acquire(context.Background(), 1); !errors.Is(err, ErrClosed) {
		t.Fatalf("Acquire after Close = %v", err)
	}
}
