package shipper

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/sluicelog/sluice/internal/config"
	"github.com/sluicelog/sluice/internal/kafkaclient"
	"github.com/sluicelog/sluice/internal/telemetry"
	"github.com/sluicelog/sluice/internal/template"
	"github.com/sluicelog/sluice/shipper/kubernetes"
)

// Config is the configuration of `sluice ship`.
type Config struct {
	// Node names this machine in every event; default $NODE_NAME, else the
	// host name.
	Node string `yaml:"node"`
	// Registry is the directory holding the offsets registry.
	Registry string               `yaml:"registry"`
	Inputs   []InputConfig        `yaml:"inputs"`
	Kafka    KafkaConfig          `yaml:"kafka"`
	HTTP     telemetry.HTTPConfig `yaml:"http"`
	Log      telemetry.LogConfig  `yaml:"log"`

	Reload telemetry.ReloadConfig `yaml:"reload"`

	// ScanInterval is how often globs are re-scanned and open files polled
	// for new data (default 1s).
	ScanInterval time.Duration `yaml:"scan_interval"`
	// RegistryFlush is the longest time an acknowledged offset waits before
	// it is written to disk (default 1s).
	RegistryFlush time.Duration `yaml:"registry_flush"`
	// MaxLineBytes cuts longer lines and flags them (default 1 MiB).
	MaxLineBytes int `yaml:"max_line_bytes"`
	// MaxInFlightBytes bounds the bytes read but not yet acknowledged by
	// Kafka (default 4 MiB). When reached, reading waits.
	MaxInFlightBytes int64 `yaml:"max_in_flight_bytes"`
	// UnterminatedLineAfter is how long a final line without a newline
	// waits for the rest before it is shipped as it is (default 5s).
	UnterminatedLineAfter time.Duration `yaml:"unterminated_line_after"`
	// CloseRemovedAfter is how long a file no longer found by the globs
	// (renamed away or deleted) is kept open after its last data, so that
	// late writes are read; then its handle is released (default 30s).
	CloseRemovedAfter time.Duration `yaml:"close_removed_after"`
	// CloseInactive is how long a file read and acknowledged to its end
	// stays open without new data; then its handle is released, and it is
	// opened again when it changes (default 5m). While files wait for
	// max_open_files, files at their end give up their handle at once.
	CloseInactive time.Duration `yaml:"close_inactive"`
	// CleanAfter is how long the registry remembers a file the globs no
	// longer find (default 24h).
	CleanAfter time.Duration `yaml:"clean_after"`
	// MaxOpenFiles caps the files read at once (default 1024); further
	// files wait until others are released, longest-waiting first.
	MaxOpenFiles int `yaml:"max_open_files"`
	// IgnoreOlder skips the existing content of files not written for this
	// long when they are first discovered (default 0: read everything).
	IgnoreOlder time.Duration `yaml:"ignore_older"`
	// ShutdownTimeout bounds how long a SIGTERM waits for in-flight lines.
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout"`
	// Quotas share the node fairly between namespaces and pods (quota.go).
	Quotas QuotaConfig `yaml:"quotas"`
	// Kubernetes adds the pod metadata from the API to container logs
	// (format cri or docker).
	Kubernetes kubernetes.Config `yaml:"kubernetes"`
}

// InputConfig is one kind of file to tail.
type InputConfig struct {
	// Type is the document type, e.g. service or nginx.
	Type string `yaml:"type"`
	// Paths are globs of files to tail.
	Paths []string `yaml:"paths"`
	// Exclude are globs of files to leave alone even if Paths match them.
	Exclude []string `yaml:"exclude"`
	// Fields are static fields attached to every line.
	Fields map[string]string `yaml:"fields"`
	// PathFields turns path segments into fields, e.g.
	// /var/log/services/{environment}/{customer}/{service}/
	PathFields string `yaml:"path_fields"`
	// Format is how lines are framed in the file: plain (default), cri
	// for Kubernetes container logs (/var/log/containers/*.log), whose
	// runtime prefix is stripped and partial lines joined, or docker for
	// Docker's json-file logs, unwrapped and joined the same way.
	Format string `yaml:"format"`
	// Symlinks says whether symbolic links below the globs' literal
	// directories are followed (default: not; opener.go).
	Symlinks SymlinksConfig `yaml:"symlinks"`
	// AllowHardLinks reads files with more than one hard link, which are
	// otherwise refused: such a file may be another's, linked into this
	// input's directory (opener.go).
	AllowHardLinks bool `yaml:"allow_hard_links"`
	// Multiline joins continuation lines (stack traces) into one event
	// (multiline.go); unset, every line is an event.
	Multiline *MultilineConfig `yaml:"multiline"`
	// IncludeLines and ExcludeLines are regular expressions (Go RE2):
	// with IncludeLines only matching lines are shipped, and lines
	// matching ExcludeLines are not (linefilter.go).
	IncludeLines []string `yaml:"include_lines"`
	ExcludeLines []string `yaml:"exclude_lines"`
}

// SymlinksConfig is an input's symbolic link policy.
type SymlinksConfig struct {
	// Follow follows links whose targets are under Roots, e.g. the
	// kubelet's /var/log/containers/*.log, which link into /var/log/pods.
	Follow bool `yaml:"follow"`
	// Roots are the directories links may point into (through further
	// links only into Roots too); required with Follow.
	Roots []string `yaml:"roots"`
}

// Input formats.
const (
	FormatPlain  = "plain"
	FormatCRI    = "cri"
	FormatDocker = "docker"
)

// KafkaConfig is where and how lines are produced.
type KafkaConfig struct {
	Brokers []string `yaml:"brokers"`
	// Topic is a template over the event's fields (default logs-{type}).
	Topic string `yaml:"topic"`
	// Partitions and ReplicationFactor are used when the shipper creates a
	// missing topic (defaults 6 and -1, the broker's default).
	Partitions        int32 `yaml:"partitions"`
	ReplicationFactor int16 `yaml:"replication_factor"`
	// Partitioning: file (the default) keeps each file's lines in one
	// partition, in order (the record key is the file id); spread fills one
	// partition's batch after another, as Kafka's own producer does for
	// records without a key, so that a busy file uses every partition and,
	// with several producers, every core. Documents do not depend on it:
	// their ids and @timestamp come from each line.
	Partitioning string `yaml:"partitioning"`
	// Producers is how many Kafka clients produce in parallel (default 1);
	// each compresses its batches on its own core. Under file partitioning
	// a file's lines all go through one of them.
	Producers int `yaml:"producers"`
	// Compression: zstd (default), lz4, snappy, gzip or none.
	Compression string `yaml:"compression"`
	// Linger is how long a batch waits for more records (default 5ms).
	Linger time.Duration `yaml:"linger"`
	// BatchBytes is the largest record batch (default max_line_bytes plus
	// 64 KiB, room for one cut line and its headers, and at least 1 MiB). Smaller batches
	// pipeline better: while one is on the wire the next is compressed, and
	// the producer holds less memory.
	BatchBytes int32 `yaml:"batch_bytes"`
	// Security is kafka.tls and kafka.sasl.
	Security kafkaclient.Config `yaml:",inline"`
}

// Defaults for local use.
const (
	DefaultBroker = "127.0.0.1:9092"
	DefaultListen = "127.0.0.1:9600"
	DefaultTopic  = "logs-{type}"
)

// Values of kafka.partitioning.
const (
	PartitionFile   = "file"
	PartitionSpread = "spread"
)

// DefaultConfig is the shipper's configuration before its file: every
// default, written once. SetDefaults gives its values to the keys left out.
func DefaultConfig() Config {
	return Config{
		Kafka: KafkaConfig{
			Brokers:           []string{DefaultBroker},
			Topic:             DefaultTopic,
			Partitions:        6,
			ReplicationFactor: -1, // the broker's default
			Compression:       "zstd",
			Producers:         1,
			Partitioning:      PartitionFile,
			Linger:            5 * time.Millisecond,
			// BatchBytes follows max_line_bytes: see SetDefaults.
		},
		HTTP:                  telemetry.HTTPConfig{Listen: DefaultListen},
		ScanInterval:          time.Second,
		RegistryFlush:         time.Second,
		MaxLineBytes:          1 << 20,
		MaxInFlightBytes:      4 << 20,
		UnterminatedLineAfter: 5 * time.Second,
		CloseRemovedAfter:     30 * time.Second,
		CloseInactive:         5 * time.Minute,
		CleanAfter:            24 * time.Hour,
		MaxOpenFiles:          1024,
		ShutdownTimeout:       10 * time.Second,
		Quotas:                DefaultQuotaConfig(),
		Kubernetes:            kubernetes.DefaultConfig(),
	}
}

// DefaultInputConfig is an input's defaults.
func DefaultInputConfig() InputConfig {
	return InputConfig{Format: FormatPlain}
}

// SetDefaults gives the keys left out (or zero) their DefaultConfig
// values, and those that follow from others theirs (node, batch_bytes).
// Calling it again changes nothing.
func (c *Config) SetDefaults() {
	if c.Node == "" {
		c.Node = os.Getenv("NODE_NAME")
	}
	if c.Node == "" {
		c.Node, _ = os.Hostname()
	}
	c.Kafka.Brokers = config.SplitList(c.Kafka.Brokers)
	if len(c.Kafka.Brokers) == 0 {
		c.Kafka.Brokers = nil // an empty list takes the default too
	}
	config.FillZero(c, DefaultConfig())
	for i := range c.Inputs {
		config.FillZero(&c.Inputs[i], DefaultInputConfig())
		if m := c.Inputs[i].Multiline; m != nil {
			m.setDefaults(c.MaxLineBytes)
		}
	}
	if c.Kafka.BatchBytes == 0 {
		// Room for one cut line and its headers, and at least 1 MiB.
		c.Kafka.BatchBytes = int32(max(1<<20, c.MaxLineBytes+64<<10))
	}
	c.Kafka.Security.SetDefaults()
	c.HTTP.SetDefaults()
}

// Validate rejects values the shipper cannot run with, every one at once
// (errors.Join), each naming its key. Call SetDefaults first.
func (c *Config) Validate() error {
	var errs []error
	add := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	if c.Registry == "" {
		add(config.Errorf("registry", "is required: the directory where file offsets are kept, e.g. /var/lib/sluice"))
	}
	if len(c.Inputs) == 0 {
		add(config.Errorf("inputs", "is required: list at least one input with a type and paths"))
	}
	for i := range c.Inputs {
		in := config.Index("inputs", i)
		add(c.Inputs[i].validate(in))
		if m := c.Inputs[i].Multiline; m != nil {
			add(m.validate(config.Join(in, "multiline"), c.MaxLineBytes))
		}
		add(c.Inputs[i].validateFilter(in))
	}
	for i, b := range c.Kafka.Brokers {
		if !strings.Contains(b, ":") {
			add(config.Errorf(config.Index("kafka.brokers", i), "%q has no port; write host:port, e.g. kafka:9092", b))
		}
	}
	if topic, err := template.Parse(c.Kafka.Topic); err != nil {
		add(config.Errorf("kafka.topic", "%v", err))
	} else {
		// A field an input's events do not have renders as "unknown": its
		// lines would go to a topic no aggregator reads.
		for i := range c.Inputs {
			known := c.Inputs[i].fieldNames()
			for _, f := range topic.Fields() {
				if !slices.Contains(known, f) {
					add(config.Errorf("kafka.topic", "{%s} is not a field of inputs[%d]'s lines, whose topic would be named with %q%s; they have: %s",
						f, i, template.Missing, config.DidYouMean(f, known), strings.Join(known, ", ")))
				}
			}
		}
	}
	if c.Kafka.Partitions < 1 {
		add(config.Errorf("kafka.partitions", "must be at least 1, got %d", c.Kafka.Partitions))
	}
	if c.Kafka.ReplicationFactor < -1 {
		add(config.Errorf("kafka.replication_factor", "must be -1 (the broker's default) or at least 1, got %d", c.Kafka.ReplicationFactor))
	}
	if _, err := compressionCodec(c.Kafka.Compression); err != nil {
		add(config.Errorf("kafka.compression", "%v", err))
	}
	if c.Kafka.Producers < 1 || c.Kafka.Producers > 64 {
		add(config.Errorf("kafka.producers", "must be between 1 and 64, got %d", c.Kafka.Producers))
	}
	if c.Kafka.Partitioning != PartitionFile && c.Kafka.Partitioning != PartitionSpread {
		add(config.Errorf("kafka.partitioning", "%q is not a partitioning; use spread (batches over every partition) or file (a file's lines in one partition, in order)", c.Kafka.Partitioning))
	}
	if c.Kafka.Linger < 0 {
		add(config.Errorf("kafka.linger", "must not be negative"))
	}
	if int(c.Kafka.BatchBytes) < c.MaxLineBytes+64<<10 {
		add(config.Errorf("kafka.batch_bytes", "%d is smaller than max_line_bytes plus 64 KiB of headers; raise it or lower max_line_bytes", c.Kafka.BatchBytes))
	}
	add(c.Kafka.Security.Validate("kafka"))
	if c.MaxLineBytes < 1024 {
		add(config.Errorf("max_line_bytes", "must be at least 1024, got %d", c.MaxLineBytes))
	}
	if c.MaxOpenFiles < 1 {
		add(config.Errorf("max_open_files", "must be at least 1, got %d", c.MaxOpenFiles))
	}
	if c.IgnoreOlder < 0 {
		add(config.Errorf("ignore_older", "must not be negative; 0 reads every file whole"))
	}
	if c.MaxInFlightBytes < int64(c.MaxLineBytes)*2 {
		add(config.Errorf("max_in_flight_bytes", "must be at least twice max_line_bytes (%d)", c.MaxLineBytes))
	}
	add(c.HTTP.Validate("http"))
	add(c.Log.Validate("log"))
	add(c.Quotas.validate("quotas"))
	add(c.Kubernetes.Validate("kubernetes"))
	for _, d := range []struct {
		key string
		d   time.Duration
	}{{"scan_interval", c.ScanInterval}, {"registry_flush", c.RegistryFlush}, {"shutdown_timeout", c.ShutdownTimeout},
		{"unterminated_line_after", c.UnterminatedLineAfter}, {"close_removed_after", c.CloseRemovedAfter}, {"close_inactive", c.CloseInactive}, {"clean_after", c.CleanAfter}} {
		if d.d <= 0 {
			add(config.Errorf(d.key, "must be a positive duration such as 1s"))
		}
	}
	return errors.Join(errs...)
}

// inputTypes returns the document type of each input, for the metrics
// created at start.
func (c Config) inputTypes() []string {
	types := make([]string, 0, len(c.Inputs))
	for _, in := range c.Inputs {
		types = append(types, in.Type)
	}
	return types
}

func (in *InputConfig) validate(key string) error {
	var errs []error
	if in.Type == "" {
		errs = append(errs, config.Errorf(config.Join(key, "type"), "is required: the document type, e.g. service or nginx"))
	} else if template.IndexValue(in.Type) != in.Type {
		errs = append(errs, config.Errorf(config.Join(key, "type"), "%q must be lower case letters, digits, '-' or '_'", in.Type))
	} else if n, ok := config.Nearest(in.Type, KnownTypes); ok {
		errs = append(errs, config.Errorf(config.Join(key, "type"), "%q is not a document type Sluice parses; did you mean %s? (types other than %s are indexed as raw text)",
			in.Type, n, strings.Join(KnownTypes, ", ")))
	}
	if len(in.Paths) == 0 {
		errs = append(errs, config.Errorf(config.Join(key, "paths"), "is required: list globs of files to tail"))
	}
	for j, p := range in.Paths {
		if !filepath.IsAbs(p) {
			errs = append(errs, config.Errorf(config.Index(config.Join(key, "paths"), j), "%q must be an absolute path glob such as /var/log/app/*.log", p))
		}
		if err := checkGlob(p); err != nil {
			errs = append(errs, config.Errorf(config.Index(config.Join(key, "paths"), j), "%q is not a valid glob: %v", p, err))
		}
	}
	for j, p := range in.Exclude {
		if err := checkGlob(p); err != nil {
			errs = append(errs, config.Errorf(config.Index(config.Join(key, "exclude"), j), "%q is not a valid glob: %v", p, err))
		}
	}
	if in.Format != FormatPlain && in.Format != FormatCRI && in.Format != FormatDocker {
		errs = append(errs, config.Errorf(config.Join(key, "format"), "%q must be plain, cri or docker", in.Format))
	}
	if in.Symlinks.Follow && len(in.Symlinks.Roots) == 0 {
		errs = append(errs, config.Errorf(config.Join(key, "symlinks.roots"), "is required with symlinks.follow: list the directories links may point into, e.g. /var/log/pods"))
	}
	if !in.Symlinks.Follow && len(in.Symlinks.Roots) > 0 {
		errs = append(errs, config.Errorf(config.Join(key, "symlinks.follow"), "is false, so symlinks.roots is unused: set follow: true to follow links into them, or remove roots"))
	}
	for j, r := range in.Symlinks.Roots {
		if !filepath.IsAbs(r) || filepath.Clean(r) == "/" || strings.ContainsAny(r, "*?[\\") {
			errs = append(errs, config.Errorf(config.Index(config.Join(key, "symlinks.roots"), j), "%q must be an absolute directory other than /, without glob characters, e.g. /var/log/pods", r))
		}
	}
	if in.PathFields != "" {
		if _, err := compilePathFields(in.PathFields); err != nil {
			errs = append(errs, config.Errorf(config.Join(key, "path_fields"), "%v", err))
		}
	}
	return errors.Join(errs...)
}

// checkGlob says what is wrong with a malformed glob, where filepath.Match
// only says that something is.
func checkGlob(glob string) error {
	if _, err := filepath.Match(glob, ""); err == nil {
		return nil
	}
	for i := 0; i < len(glob); i++ {
		switch glob[i] {
		case '\\':
			i++
			if i >= len(glob) {
				return errors.New("it ends with a lone \\")
			}
		case '[':
			end := strings.IndexByte(glob[i+1:], ']')
			if end < 0 {
				return fmt.Errorf("the [ at byte %d is never closed; write \\[ for a literal [", i+1)
			}
			if end == 0 || (end == 1 && glob[i+1] == '^') {
				return fmt.Errorf("the character class at byte %d is empty", i+1)
			}
			i += end + 1
		}
	}
	return errors.New("malformed character class (a range like [z-a], or a - at an odd place)")
}
