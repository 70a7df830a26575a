package kafkaclient

import (
	"context"
	"fmt"
	"strconv"

	"github.com/twmb/franz-go/pkg/kadm"
)

// MaxMessageBytes reads topic's max.message.bytes: the largest record batch
// Kafka accepts into it (its own setting, or the broker's default).
func MaxMessageBytes(ctx context.Context, adm *kadm.Client, topic string) (int32, error) {
	configs, err := adm.DescribeTopicConfigs(ctx, topic)
	var rc kadm.ResourceConfig
	if err == nil {
		rc, err = configs.On(topic, nil)
	}
	if err == nil {
		err = rc.Err
	}
	if err != nil {
		return 0, fmt.Errorf("reading max.message.bytes of %s: %w", topic, err)
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
