package kafkaclient

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
)

// MaxMessageBytes reads topic's max.message.bytes: the largest record batch
// Kafka accepts into it (its own setting, or the broker's default).
// A topic just created may be unknown to the broker answering for a moment:
// that is retried for up to 5 s.
func MaxMessageBytes(ctx context.Context, adm *kadm.Client, topic string) (int32, error) {
	var rc kadm.ResourceConfig
	for try := 0; ; try++ {
		configs, err := adm.DescribeTopicConfigs(ctx, topic)
		if err == nil {
			rc, err = configs.On(topic, nil)
		}
		if err == nil {
			err = rc.Err
		}
		if err == nil {
			break
		}
		if !errors.Is(err, kerr.UnknownTopicOrPartition) || try == 25 {
			return 0, fmt.Errorf("reading max.message.bytes of %s: %w", topic, err)
		}
		select {
		case <-ctx.Done():
			return 0, fmt.Errorf("reading max.message.bytes of %s: %w", topic, ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
	for _, c := range rc.Configs {
		if c.Key == "max.message.bytes" && c.Value != nil {
			v, err := strconv.ParseInt(*c.Value, 10, 32)
			if err != nil {
				return 0, fmt.Errorf("max.message.bytes of %s: %w", topic, err)
			}
			return int32(v), nil
		}
	}
	return 0, fmt.Errorf("%s has no max.message.bytes", topic)
}
