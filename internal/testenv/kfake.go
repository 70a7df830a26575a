package testenv

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kfake"
)

// Kfake returns a Stack whose Kafka is kfake, franz-go's in-process fake
// broker, closed when the test ends; it has no Elasticsearch. Tests of the
// produce, commit, rebalance and oversize paths run on it under -short, so
// that `go test -short ./...` needs no JVM. kfake keeps to max.message.bytes
// and consumer group protocol as Kafka does, but not to everything (no
// replication, no outage through a proxy): those stay on Start's stack.
func Kfake(t testing.TB, opts ...kfake.Opt) *Stack {
	t.Helper()
	c, err := kfake.NewCluster(append([]kfake.Opt{kfake.NumBrokers(1)}, opts...)...)
	if err != nil {
		t.Fatalf("kfake: %v", err)
	}
	t.Cleanup(c.Close)
	return &Stack{Broker: c.ListenAddrs()[0]}
}
