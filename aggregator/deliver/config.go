package deliver

import (
	"time"

	"github.com/sluicelog/sluice/internal/backoff"
	"github.com/sluicelog/sluice/internal/config"
	"github.com/sluicelog/sluice/internal/secret"
	"github.com/sluicelog/sluice/internal/tlsconfig"
)

// ElasticsearchConfig is where documents are indexed.
type ElasticsearchConfig struct {
	Addresses []string `yaml:"addresses"`
	// Index is a template over the event's fields (default
	// logs-{type}-{service}-{environment}); {+2006.01.02} adds the date of
	// the event's @timestamp.
	Index string `yaml:"index"`
	// Username and Password (or PasswordFile, a file holding it) for basic
	// authentication.
	Username     string       `yaml:"username"`
	Password     secret.Value `yaml:"password"`
	PasswordFile string       `yaml:"password_file"`
	// APIKey (the base64 encoded "id:api_key" Elasticsearch returns as
	// "encoded"), or APIKeyFile, a file holding it.
	APIKey     secret.Value `yaml:"api_key"`
	APIKeyFile string       `yaml:"api_key_file"`
	// TLS is for https:// addresses: the CA to trust, a client certificate.
	TLS tlsconfig.Config `yaml:"tls"`
	// AllowPlaintext lets credentials go to http:// addresses, where
	// anyone on the path reads them: refused unless asked for.
	AllowPlaintext bool `yaml:"allow_plaintext"`
	// Action is index (default) or create (for data streams; a 409 on the
	// deterministic id then means already delivered).
	Action string `yaml:"action"`
	// BulkBytes bounds the body of one bulk request (default 5 MiB).
	BulkBytes int `yaml:"bulk_bytes"`
	// Workers is how many bulk requests are in flight (default 4).
	Workers int `yaml:"workers"`
	// FlushInterval is how long a bulk request being filled may wait for
	// more documents once Kafka has no more to give (default 250ms): a
	// request goes out at bulk_bytes or at this age, whichever comes first.
	FlushInterval time.Duration `yaml:"flush_interval"`
	// Template installs Sluice's index template at start (default true).
	Template *bool `yaml:"template"`
	// TemplateName names the index template (default sluice); give each
	// index naming scheme its own.
	TemplateName string `yaml:"template_name"`
	// RetryMax is the longest pause between retries (default 30s).
	RetryMax time.Duration `yaml:"retry_max"`
	// AcceptTime bounds the event times that get a dated index of their
	// own, with a date in Index.
	AcceptTime AcceptTimeConfig `yaml:"accept_time"`
	// Dedupe looks records that may have been indexed before up by id
	// across their index's dates, data stream or alias before writing them
	// (default true); see dedupe.go.
	Dedupe *bool `yaml:"dedupe"`
	// Layout is index and lifecycle settings of the index template.
	Layout `yaml:",inline"`
}

// AcceptTimeConfig is the window around a line's read time within which its
// @timestamp picks its dated index. A time outside it (a clock in 1970, a
// year 2134 typo) would create an index per bad date until the cluster's
// shard limit refuses every line: such a document goes to the index named
// with template.OutOfRange for its date, with @timestamp set to the read
// time, the line's own time in event.original_timestamp, and the tag
// timestamp_out_of_range. Measured from the read time, never the clock at
// indexing, so that a replay years later routes each line as before.
type AcceptTimeConfig struct {
	// Past is how old a time may be (default 720h, 30 days: a backfill of
	// last month's files still gets its daily indices).
	Past time.Duration `yaml:"past"`
	// Future is how far ahead (default 24h: a local time written as UTC is
	// at most 14h ahead, so only broken clocks go further).
	Future time.Duration `yaml:"future"`
}

// Layout is how documents are laid out in Elasticsearch: data streams or
// indices, their shards and replicas, storage, and how long data is kept.
// The index template carries it (see estemplate.go).
type Layout struct {
	// DataStream makes the names of Index data streams (default false):
	// write-once backing indices that roll over, action create, and
	// data_stream.* fields. With it Index defaults to
	// logs-{event.dataset}-{environment}.
	DataStream bool `yaml:"data_stream"`
	// Shards is each index's number of primary shards (default 1).
	Shards int `yaml:"shards"`
	// Replicas is each shard's number of copies (default 1; 0 on a single
	// node, which can never place a replica).
	Replicas *int `yaml:"replicas"`
	// Codec is default or best_compression (smaller on disk, a little more
	// CPU to index and read stored fields).
	Codec string `yaml:"codec"`
	// IndexMode is standard (default) or logsdb (sorted by host and time,
	// with synthetic _source where the licence allows).
	IndexMode string `yaml:"index_mode"`
	// Retention is how long documents are kept, by document type and
	// environment: keys default, <type>, */<environment> and
	// <type>/<environment>, values such as 30d or 12h. Data streams get
	// Elasticsearch's data stream lifecycle (data_retention); dated indices
	// an ILM policy that deletes each index once that old. Empty: kept for
	// ever.
	Retention map[string]string `yaml:"retention"`
}

// Defaults of the elasticsearch section.
const (
	DefaultElasticsearch = "http://127.0.0.1:9200"
	DefaultIndex         = "logs-{type}-{service}-{environment}"
	// DefaultDataStream is elasticsearch.index with data_stream: Elastic's
	// {type}-{dataset}-{namespace}, e.g. logs-nginx.access-prod.
	DefaultDataStream   = "logs-{event.dataset}-{environment}"
	DefaultAcceptPast   = 30 * 24 * time.Hour
	DefaultAcceptFuture = 24 * time.Hour
	// DefaultFlushInterval: a line waits at most this long in a request
	// being filled, which with the request itself keeps its
	// acknowledgement under a second; yet at a steady 5,000 lines/s
	// requests carry about 1,250 documents, not a poll's handful, and
	// Elasticsearch's cost per request (coordination, the translog fsync)
	// is small against its cost per document (benchmarks/RESULTS.md).
	// Logstash waits 50ms for a batch of 125, Filebeat's memory queue up
	// to 10s for 1,600 events; between the two, nearer the first.
	DefaultFlushInterval = 250 * time.Millisecond
)

// DefaultElasticsearchConfig is the elasticsearch section before the
// configuration file: every default, written once. Index and Action follow
// data_stream: see SetDefaults.
func DefaultElasticsearchConfig() ElasticsearchConfig {
	yes, alsoYes := true, true
	return ElasticsearchConfig{
		Addresses:     []string{DefaultElasticsearch},
		BulkBytes:     5 << 20,
		Workers:       4,
		FlushInterval: DefaultFlushInterval,
		Template:      &yes,
		TemplateName:  "sluice",
		RetryMax:      30 * time.Second,
		AcceptTime:    AcceptTimeConfig{Past: DefaultAcceptPast, Future: DefaultAcceptFuture},
		Dedupe:        &alsoYes,
	}
}

// SetDefaults gives the keys left out (or zero) their
// DefaultElasticsearchConfig values, and the index and action theirs,
// which follow data_stream. Calling it again changes nothing.
func (es *ElasticsearchConfig) SetDefaults() {
	es.Addresses = config.SplitURLs(es.Addresses)
	if len(es.Addresses) == 0 {
		es.Addresses = nil // an empty list takes the default too
	}
	if es.DataStream {
		if es.Index == "" {
			es.Index = DefaultDataStream
		}
		if es.Action == "" {
			es.Action = "create" // the only write a data stream takes
		}
	}
	if es.Index == "" {
		es.Index = DefaultIndex
	}
	if es.Action == "" {
		es.Action = "index"
	}
	config.FillZero(es, DefaultElasticsearchConfig())
	es.Layout.SetDefaults()
}

// Retry is the pause between attempts to deliver to Elasticsearch (a bulk
// request, a waiting index): from 100ms up to elasticsearch.retry_max,
// jittered over its upper half so that workers and indices do not retry in
// step.
func Retry(retryMax time.Duration) backoff.Policy {
	return backoff.Policy{Initial: 100 * time.Millisecond, Max: retryMax, Jitter: 0.5}
}
