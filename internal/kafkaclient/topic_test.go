package kafkaclient

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicelog/sluice/internal/testenv"
)

// EnsureTopic creates a missing topic with the given max.message.bytes,
// and reads the limit of one made beforehand (by kfake, an in-process
// broker: no Kafka needed).
func TestEnsureTopic(t *testing.T) {
	c := testenv.KfakeCluster(t)
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	spec := Topic{Name: "logs", Partitions: 3, ReplicationFactor: -1, MaxMessageBytes: 2 << 20}
	got, err := EnsureTopic(ctx, adm, spec, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !got.Created || got.MaxMessageBytes != spec.MaxMessageBytes || got.LimitErr != nil {
		t.Fatalf("new topic: %+v, want created with %d", got, spec.MaxMessageBytes)
	}
	if v, err := MaxMessageBytes(ctx, adm, "logs"); err != nil || v != spec.MaxMessageBytes {
		t.Fatalf("created topic's max.message.bytes = %d, %v; want %d", v, err, spec.MaxMessageBytes)
	}
	details, err := adm.ListTopics(ctx, "logs")
	if err != nil || len(details["logs"].Partitions) != 3 {
		t.Fatalf("created topic: %+v, %v; want 3 partitions", details["logs"], err)
	}

	// An operator's topic with a smaller limit: read, not changed.
	small := "8192"
	if _, err := adm.CreateTopic(ctx, 1, -1, map[string]*string{"max.message.bytes": &small}, "theirs"); err != nil {
		t.Fatal(err)
	}
	got, err = EnsureTopic(ctx, adm, Topic{Name: "theirs", Partitions: 3, ReplicationFactor: -1, MaxMessageBytes: 2 << 20}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got.Created || got.MaxMessageBytes != 8192 || got.LimitErr != nil {
		t.Fatalf("existing topic: %+v, want not created, limit 8192", got)
	}

	// A limit that cannot be read is reported, not an error of creation.
	got, err = EnsureTopic(ctx, adm, Topic{Name: "theirs", MaxMessageBytes: 2 << 20},
		func(context.Context, *kadm.Client, string) (int32, error) { return 0, context.DeadlineExceeded })
	if err != nil || got.LimitErr == nil {
		t.Fatalf("unreadable limit: %+v, %v; want LimitErr", got, err)
	}

	// Kafka unreachable: creation fails, for the caller to retry.
	c.Close()
	short, cancelShort := context.WithTimeout(ctx, time.Second)
	defer cancelShort()
	if _, err := EnsureTopic(short, adm, Topic{Name: "other", Partitions: 1, ReplicationFactor: -1, MaxMessageBytes: 1 << 20}, nil); err == nil {
		t.Fatal("EnsureTopic with Kafka gone succeeded")
	}
}
