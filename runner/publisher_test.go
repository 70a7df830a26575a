package runner

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicelog/sluice/internal/queue"
)

// TestQueuePublisherCloseWaitsForAcks checks the shutdown contract: Close
// returns once every published record is acknowledged, and reports the
// records still unacknowledged when its context ends first.
func TestQueuePublisherCloseWaitsForAcks(t *testing.T) {
	q := queue.New(1 << 20)
	p := newQueuePublisher(q)
	ctx := context.Background()
	acked := 0
	for i := 0; i < 3; i++ {
		if err := p.Publish(ctx, &kgo.Record{Value: []byte("line")}, func() { acked++ }); err != nil {
			t.Fatal(err)
		}
	}
	msgs, err := q.Take(ctx, 10)
	if err != nil || len(msgs) != 3 {
		t.Fatalf("took %d messages (%v), want 3", len(msgs), err)
	}
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if err := p.Close(short); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Close with 3 records unacknowledged = %v, want the deadline", err)
	}
	msgs[0].Ack()
	msgs[0].Ack() // a second ack of the same record counts once
	closed := make(chan error, 1)
	go func() { closed <- p.Close(ctx) }()
	msgs[1].Ack()
	select {
	case err := <-closed:
		t.Fatalf("Close returned %v with a record unacknowledged", err)
	case <-time.After(50 * time.Millisecond):
	}
	msgs[2].Ack()
	select {
	case err := <-closed:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not return after every record was acknowledged")
	}
	if acked != 3 {
		t.Fatalf("acked called %d times, want 3", acked)
	}
}

// TestQueuePublisherPublishEndsWithContext checks that a Publish blocked on
// a full queue gives up with its context, and that the record it did not
// hand over does not hold up Close.
func TestQueuePublisherPublishEndsWithContext(t *testing.T) {
	q := queue.New(1)
	p := newQueuePublisher(q)
	if err := p.Publish(context.Background(), &kgo.Record{Value: []byte("fills the queue")}, func() {}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	called := false
	if err := p.Publish(ctx, &kgo.Record{Value: []byte("waits")}, func() { called = true }); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Publish into a full queue = %v, want the deadline", err)
	}
	msgs, _ := q.Take(context.Background(), 10)
	if len(msgs) != 1 {
		t.Fatalf("queue holds %d messages, want only the first", len(msgs))
	}
	msgs[0].Ack()
	if err := p.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if called {
		t.Fatal("the ack of a record never handed over was called")
	}
}
