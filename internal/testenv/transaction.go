package testenv

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// ProduceTransaction writes records in one committed transaction: the
// partitions then end with a commit marker, an offset no consumer is
// given.
func (s *Stack) ProduceTransaction(t testing.TB, id string, records ...*kgo.Record) {
	t.Helper()
	cl := s.Client(t, kgo.TransactionalID(id))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := cl.BeginTransaction(); err != nil {
		t.Fatalf("beginning a transaction: %v", err)
	}
	if err := cl.ProduceSync(ctx, records...).FirstErr(); err != nil {
		t.Fatalf("producing in a transaction: %v", err)
	}
	if err := cl.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatalf("committing a transaction: %v", err)
	}
}
