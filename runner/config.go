package runner

import (
	"errors"
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

// DefaultConfig is `sluice run`'s configuration before its file: the
// shipper's and the aggregator's defaults, and run mode's own, each
// written once. SetDefaults gives its values to the keys left out.
func DefaultConfig() Config {
	agg := aggregator.DefaultConfig()
	c := Config{Config: shipper.DefaultConfig(),
		Elasticsearch: agg.Elasticsearch, Parsers: agg.Parsers, GeoIP: agg.GeoIP, Pipelines: agg.Pipelines,
		Queue: QueueConfig{MaxBytes: 16 << 20, Batch: 5000}}
	// One process on one machine, usually beside a single-node
	// Elasticsearch, where a replica could never be placed.
	zero := 0
	c.Elasticsearch.Replicas = &zero
	return c
}

// SetDefaults gives the keys left out (or zero) their DefaultConfig
// values, and those that follow from others theirs (as the shipper's and
// the aggregator's SetDefaults do; dead_letter_file from registry).
// Calling it again changes nothing.
func (c *Config) SetDefaults() {
	if !c.defaulted {
		c.defaulted = true
		c.kafkaGiven = !reflect.DeepEqual(c.Kafka, shipper.KafkaConfig{})
		c.esGiven = len(config.SplitURLs(c.Elasticsearch.Addresses)) > 0
	}
	if len(config.SplitURLs(c.Elasticsearch.Addresses)) == 0 {
		c.Elasticsearch.Addresses = nil // an empty list takes the default too
	}
	// The shipper's side first: memory_limit sets apart what it holds,
	// and the processing's derived sizes (bulk_bytes, geoip.cache_size)
	// come from the rest before the other defaults fill what is left.
	c.Config.SetDefaults()
	def := DefaultConfig()
	if c.Queue.MaxBytes == 0 {
		c.Queue.MaxBytes = def.Queue.MaxBytes
	}
	if c.MemoryLimit == 0 {
		c.MemoryLimit = aggregator.DefaultMemoryLimit + c.shipperReserve()
	}
	if c.Elasticsearch.Replicas == nil {
		c.Elasticsearch.Replicas = def.Elasticsearch.Replicas
	}
	agg := c.aggregatorConfig()
	agg.SetDefaults()
	c.Elasticsearch, c.Parsers, c.GeoIP, c.Pipelines = agg.Elasticsearch, agg.Parsers, agg.GeoIP, agg.Pipelines
	config.FillZero(c, def)
	if c.DeadLetterFile == "" && c.Registry != "" {
		c.DeadLetterFile = filepath.Join(c.Registry, "dead-letter.ndjson")
	}
}

// Validate rejects values `sluice run` cannot run with, every one at once
// (errors.Join), each naming its key. Call SetDefaults first.
func (c *Config) Validate() error {
	var errs []error
	add := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	if c.kafkaGiven {
		add(config.Errorf("kafka", "sluice run has no Kafka: remove this section (lines go through an in-process queue; see queue.max_bytes)"))
	}
	add(c.Config.Validate())
	if c.MemoryLimit <= c.shipperReserve() {
		add(config.Errorf("memory_limit", "%s leaves nothing for the processing after twice queue.max_bytes and max_in_flight_bytes (%s); raise it to at least %s or remove it",
			c.MemoryLimit, c.shipperReserve(), aggregator.DefaultMemoryLimit+c.shipperReserve()))
	}
	agg := c.aggregatorConfig()
	aggErr := agg.Validate()
	if c.MemoryLimit <= c.shipperReserve() {
		aggErr = withoutKey(aggErr, "memory_limit") // said above, once
	}
	add(aggErr)
	if _, err := c.OutputKind(); err != nil {
		add(err)
	}
	if c.Queue.MaxBytes < int64(c.MaxLineBytes)+64<<10 {
		add(config.Errorf("queue.max_bytes", "%d cannot hold one line of max_line_bytes plus 64 KiB of headers; raise it or lower max_line_bytes", c.Queue.MaxBytes))
	}
	if c.Queue.Batch < 1 {
		add(config.Errorf("queue.batch", "must be at least 1, got %d", c.Queue.Batch))
	}
	return errors.Join(errs...)
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
// its memory_limit is what the shipper's side leaves. Its kafka section is
// unused: the aggregator's defaults, which pass its Validate.
func (c *Config) aggregatorConfig() aggregator.Config {
	return aggregator.Config{Kafka: aggregator.DefaultConfig().Kafka,
		Elasticsearch: c.Elasticsearch, Parsers: c.Parsers, GeoIP: c.GeoIP, Pipelines: c.Pipelines, HTTP: c.HTTP, Log: c.Log,
		MemoryLimit: c.MemoryLimit - c.shipperReserve()}
}

// GoMemoryLimit is the Go runtime's soft memory limit under memory_limit.
// Call SetDefaults first.
func (c *Config) GoMemoryLimit() int64 {
	agg := c.aggregatorConfig()
	return agg.Memory().GoLimit + int64(c.shipperReserve())
}

// withoutKey drops the errors of key from err, a join of config errors.
func withoutKey(err error, key string) error {
	joined, ok := err.(interface{ Unwrap() []error })
	if !ok {
		joined = joinOf{err}
	}
	var kept []error
	for _, e := range joined.Unwrap() {
		var ce *config.Error
		if !errors.As(e, &ce) || ce.Key != key {
			kept = append(kept, e)
		}
	}
	return errors.Join(kept...)
}

// joinOf is one error as a join of one.
type joinOf struct{ err error }

func (j joinOf) Error() string   { return j.err.Error() }
func (j joinOf) Unwrap() []error { return []error{j.err} }
