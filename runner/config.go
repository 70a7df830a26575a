package runner

import (
	"path/filepath"
	"reflect"

	"github.com/sluicelog/sluice/aggregator"
	"github.com/sluicelog/sluice/aggregator/pipeline"
	"github.com/sluicelog/sluice/geoip"
	"github.com/sluicelog/sluice/internal/config"
	"github.com/sluicelog/sluice/shipper"
)

// Config is the configuration of `sluice run`: the shipper's keys, the
// aggregator's processing keys, and where documents go. There is no kafka
// section: records go through an in-process queue.
type Config struct {
	shipper.Config `yaml:",inline"`

	Elasticsearch aggregator.ElasticsearchConfig `yaml:"elasticsearch"`
	Parsers       aggregator.ParsersConfig       `yaml:"parsers"`
	GeoIP         geoip.Config                   `yaml:"geoip"`
	// Pipelines filter and reshape documents by type, as the aggregator's.
	Pipelines pipeline.Config `yaml:"pipelines"`

	// Output chooses the sink: elasticsearch, file or stdout.
	Output OutputConfig `yaml:"output"`
	// Queue bounds the hand-over from the shipper to the sink.
	Queue QueueConfig `yaml:"queue"`
	// DeadLetterFile receives, as NDJSON with the reason, the lines that
	// cannot be delivered (default <registry>/dead-letter.ndjson).
	DeadLetterFile string `yaml:"dead_letter_file"`
	// MemoryLimit is the memory the process may use (default the
	// aggregator's plus shipperReserve): the queue and the lines in
	// flight are set apart, and the stages divide the rest as the
	// aggregator does (aggregator.Memory).
	MemoryLimit config.Bytes `yaml:"memory_limit"`

	defaulted  bool // SetDefaults ran: what was given is known
	kafkaGiven bool // the kafka section was set, which run mode rejects
	esGiven    bool // elasticsearch.addresses was set
}

// OutputConfig chooses one sink. Without any, documents go to
// Elasticsearch if elasticsearch.addresses is set.
type OutputConfig struct {
	// Elasticsearch indexes documents as `sluice aggregate` does, with the
	// elasticsearch section's settings.
	Elasticsearch *struct{} `yaml:"elasticsearch"`
	// File appends documents as NDJSON to a file, synced per batch.
	File *FileOutputConfig `yaml:"file"`
	// Stdout writes documents as NDJSON to standard output.
	Stdout *struct{} `yaml:"stdout"`
}

// FileOutputConfig is output.file.
type FileOutputConfig struct {
	Path string `yaml:"path"`
}

// QueueConfig is the in-process queue between shipper and sink.
type QueueConfig struct {
	// MaxBytes bounds the records queued (default 16 MiB); reading waits
	// while it is reached.
	MaxBytes int64 `yaml:"max_bytes"`
	// Batch is the most records delivered at once (default 5000).
	Batch int `yaml:"batch"`
}

// Outputs.
const (
	OutputElasticsearch = "elasticsearch"
	OutputFile          = "file"
	OutputStdout        = "stdout"
)

// SetDefaults fills unset values. Calling it again changes nothing.
func (c *Config) SetDefaults() {
	if !c.defaulted {
		c.defaulted = true
		c.kafkaGiven = !reflect.DeepEqual(c.Kafka, shipper.KafkaConfig{})
		c.esGiven = len(config.SplitURLs(c.Elasticsearch.Addresses)) > 0
	}
	c.Config.SetDefaults()
	if c.Elasticsearch.Replicas == nil {
		// One process on one machine, usually beside a single-node
		// Elasticsearch, where a replica could never be placed.
		zero := 0
		c.Elasticsearch.Replicas = &zero
	}
	if c.Queue.MaxBytes == 0 {
		c.Queue.MaxBytes = 16 << 20
	}
	if c.MemoryLimit == 0 {
		c.MemoryLimit = aggregator.DefaultMemoryLimit + c.shipperReserve()
	}
	agg := c.aggregatorConfig()
	agg.SetDefaults()
	c.Elasticsearch, c.Parsers, c.GeoIP, c.Pipelines = agg.Elasticsearch, agg.Parsers, agg.GeoIP, agg.Pipelines
	if c.Queue.Batch == 0 {
		c.Queue.Batch = 5000
	}
	if c.DeadLetterFile == "" && c.Registry != "" {
		c.DeadLetterFile = filepath.Join(c.Registry, "dead-letter.ndjson")
	}
}

// Validate rejects values `sluice run` cannot run with. Call SetDefaults
// first.
func (c *Config) Validate() error {
	if c.kafkaGiven {
		return config.Errorf("kafka", "sluice run has no Kafka: remove this section (lines go through an in-process queue; see queue.max_bytes)")
	}
	if err := c.Config.Validate(); err != nil {
		return err
	}
	if c.MemoryLimit <= c.shipperReserve() {
		return config.Errorf("memory_limit", "%s leaves nothing for the processing after twice queue.max_bytes and max_in_flight_bytes (%s); raise it to at least %s or remove it",
			c.MemoryLimit, c.shipperReserve(), aggregator.DefaultMemoryLimit+c.shipperReserve())
	}
	agg := c.aggregatorConfig()
	agg.SetDefaults() // its kafka section, which is unused
	if err := agg.Validate(); err != nil {
		return err
	}
	if _, err := c.OutputKind(); err != nil {
		return err
	}
	if c.Queue.MaxBytes < int64(c.MaxLineBytes)+64<<10 {
		return config.Errorf("queue.max_bytes", "%d cannot hold one line of max_line_bytes plus 64 KiB of headers; raise it or lower max_line_bytes", c.Queue.MaxBytes)
	}
	if c.Queue.Batch < 1 {
		return config.Errorf("queue.batch", "must be at least 1, got %d", c.Queue.Batch)
	}
	return nil
}

// OutputKind returns the chosen output: OutputElasticsearch, OutputFile or
// OutputStdout.
func (c *Config) OutputKind() (string, error) {
	var chosen []string
	if c.Output.Elasticsearch != nil {
		chosen = append(chosen, OutputElasticsearch)
	}
	if c.Output.File != nil {
		if c.Output.File.Path == "" {
			return "", config.Errorf("output.file.path", "is required: the file documents are appended to, e.g. /var/lib/sluice/documents.ndjson")
		}
		chosen = append(chosen, OutputFile)
	}
	if c.Output.Stdout != nil {
		chosen = append(chosen, OutputStdout)
	}
	switch {
	case len(chosen) == 1:
		return chosen[0], nil
	case len(chosen) > 1:
		return "", config.Errorf("output", "choose one of %v, not several", chosen)
	case c.esGiven:
		return OutputElasticsearch, nil
	}
	return "", config.Errorf("output", "is required: set output.file.path, output.stdout: {} or elasticsearch.addresses")
}

// shipperReserve is what memory_limit sets apart for the shipper's side:
// the queue and the lines read but not acknowledged, twice (the
// collector's headroom).
func (c *Config) shipperReserve() config.Bytes {
	return config.Bytes(2 * (c.Queue.MaxBytes + c.MaxInFlightBytes))
}

// aggregatorConfig is the aggregator configuration the processing uses:
// its memory_limit is what the shipper's side leaves.
func (c *Config) aggregatorConfig() aggregator.Config {
	return aggregator.Config{Elasticsearch: c.Elasticsearch, Parsers: c.Parsers, GeoIP: c.GeoIP, Pipelines: c.Pipelines, HTTP: c.HTTP, Log: c.Log,
		MemoryLimit: c.MemoryLimit - c.shipperReserve()}
}

// GoMemoryLimit is the Go runtime's soft memory limit under memory_limit.
// Call SetDefaults first.
func (c *Config) GoMemoryLimit() int64 {
	agg := c.aggregatorConfig()
	return agg.Memory().GoLimit + int64(c.shipperReserve())
}
