package testenv

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kfake"
)

// KfakeCluster starts kfake, franz-go's in-process fake Kafka, with one
// broker, closed when the test ends. Tests of the produce, commit,
// rebalance and oversize paths run on it under -short, so that `go test
// -short ./...` needs no JVM; its Control functions inject errors. kfake
// keeps to max.message.bytes and the consumer group protocol as Kafka
// does, but not to everything (no replication, no outage through a
// proxy): those tests stay on Start's stack.
func KfakeCluster(t testing.TB, opts ...kfake.Opt) *kfake.Cluster {
	t.Helper()
	c, err := kfake.NewCluster(append([]kfake.Opt{kfake.NumBrokers(1)}, opts...)...)
	if err != nil {
		t.Fatalf("kfake: %v", err)
	}
	t.Cleanup(c.Close)
	return c
}

// Kfake returns a Stack whose Kafka is a KfakeCluster; it has no
// Elasticsearch.
func Kfake(t testing.TB, opts ...kfake.Opt) *Stack {
	t.Helper()
	return &Stack{Broker: KfakeCluster(t, opts...).ListenAddrs()[0]}
}

// Kafka is Start's stack in `make test`, and a Kfake one under -short: for
// tests that need only Kafka, and that kfake serves as Kafka would.
func Kafka(t testing.TB) *Stack {
	t.Helper()
	if testing.Short() {
		return Kfake(t)
	}
	return Start(t)
}
