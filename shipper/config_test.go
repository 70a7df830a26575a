package shipper

import (
	"strings"
	"testing"
)

func TestValidateNamesTheKey(t *testing.T) {
	tests := []struct {
		name   string
		adjust func(*Config)
		want   string
	}{
		{"broker without port", func(c *Config) { c.Kafka.Brokers = []string{"kafka"} }, "kafka.brokers[0]: "},
		{"partitions", func(c *Config) { c.Kafka.Partitions = -1 }, "kafka.partitions: must be at least 1"},
		{"compression", func(c *Config) { c.Kafka.Compression = "brotli" }, "kafka.compression: "},
		{"partitioning", func(c *Config) { c.Kafka.Partitioning = "random" }, "kafka.partitioning: \"random\" is not a partitioning; use spread"},
		{"producers", func(c *Config) { c.Kafka.Producers = 100 }, "kafka.producers: must be between 1 and 64"},
		{"follow without roots", func(c *Config) { c.Inputs[0].Symlinks.Follow = true }, "inputs[0].symlinks.roots: is required with symlinks.follow"},
		{"roots without follow", func(c *Config) { c.Inputs[0].Symlinks.Roots = []string{"/var/log/pods"} }, "inputs[0].symlinks.follow: is false"},
		{"root /", func(c *Config) { c.Inputs[0].Symlinks = SymlinksConfig{Follow: true, Roots: []string{"/"}} }, "inputs[0].symlinks.roots[0]: \"/\" must be an absolute directory other than /"},
		{"relative root", func(c *Config) { c.Inputs[0].Symlinks = SymlinksConfig{Follow: true, Roots: []string{"pods"}} }, "inputs[0].symlinks.roots[0]: "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Config{Registry: t.TempDir(), Inputs: []InputConfig{{Type: "service", Paths: []string{"/var/log/*.log"}}}}
			c.SetDefaults()
			if err := c.Validate(); err != nil {
				t.Fatalf("the base config is invalid: %v", err)
			}
			tt.adjust(&c)
			err := c.Validate()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Validate() = %v, want an error containing %q", err, tt.want)
			}
		})
	}
}
