package consume

import (
	"time"

	"github.com/sluicelog/sluice/internal/kafkaclient"
)

// KafkaConfig is where records are consumed from.
type KafkaConfig struct {
	Brokers []string `yaml:"brokers"`
	// Group is the consumer group; aggregators sharing it share the
	// partitions (default sluice-aggregator).
	Group  string   `yaml:"group"`
	Topics []string `yaml:"topics"`
	// DeadLetterTopic receives records Elasticsearch rejects for good,
	// with the reason in headers (default sluice-dead-letter).
	DeadLetterTopic string `yaml:"dead_letter_topic"`
	// MaxPollRecords bounds the records processed per round (default 5000): memory against fewer commits.
	MaxPollRecords int `yaml:"max_poll_records"`
	// SessionTimeout is how long the group waits for a silent member before
	// giving its partitions to the others (default 45s).
	SessionTimeout time.Duration `yaml:"session_timeout"`
	// Security is kafka.tls and kafka.sasl.
	Security kafkaclient.Config `yaml:",inline"`
}
