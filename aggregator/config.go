package aggregator

import (
	"errors"
	"fmt"
	"net/url"
	"path"
	"strings"
	"time"

	"github.com/sluicelog/sluice/aggregator/pipeline"
	"github.com/sluicelog/sluice/geoip"
	"github.com/sluicelog/sluice/internal/backoff"
	"github.com/sluicelog/sluice/internal/config"
	"github.com/sluicelog/sluice/internal/kafkaclient"
	"github.com/sluicelog/sluice/internal/kibana"
	"github.com/sluicelog/sluice/internal/secret"
	"github.com/sluicelog/sluice/internal/telemetry"
	"github.com/sluicelog/sluice/internal/template"
	"github.com/sluicelog/sluice/internal/tlsconfig"
	"github.com/sluicelog/sluice/parser"
)

// Config is the configuration of `sluice aggregate`.
type Config struct {
	Kafka         KafkaConfig          `yaml:"kafka"`
	Elasticsearch ElasticsearchConfig  `yaml:"elasticsearch"`
	Parsers       ParsersConfig        `yaml:"parsers"`
	GeoIP         geoip.Config         `yaml:"geoip"`
	HTTP          telemetry.HTTPConfig `yaml:"http"`
	Log           telemetry.LogConfig  `yaml:"log"`

	// Pipelines filter and reshape documents by document type, after
	// parsing and GeoIP and before the index name is rendered.
	Pipelines pipeline.Config `yaml:"pipelines"`
	// Tests is the directory of `sluice test` cases, relative to the
	// configuration file (default pipeline-tests next to it).
	Tests string `yaml:"tests"`
	// Kibana is where `sluice setup` imports the dashboards; optional, and
	// not used by `sluice aggregate`.
	Kibana kibana.Config `yaml:"kibana"`
	// ShutdownTimeout bounds how long a stop (SIGTERM, SIGHUP) waits for
	// the records in flight to be delivered and committed (default 10s).
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout"`
}

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

// ParsersConfig configures the document type parsers.
type ParsersConfig struct {
	// NginxFormat is the nginx log_format of nginx access logs, or the
	// name of one (parser.NginxFormatNames: combined, main, sluice, traced).
	NginxFormat string `yaml:"nginx_format"`
	// NginxFormats give files whose path matches a glob their own format
	// (a log_format string or a name, as NginxFormat); the first match
	// wins, other files use NginxFormat.
	NginxFormats []NginxFormatConfig `yaml:"nginx_formats"`
	// DecodeJSONFields are the service members whose string value, if it
	// holds a JSON object, is decoded into the document (default [log],
	// Docker's json-file member; [] decodes none).
	DecodeJSONFields []string `yaml:"decode_json_fields"`
	// MaxFields bounds the fields one service line may add to the index
	// mapping; members beyond it go into labels.overflow (default 256).
	MaxFields int `yaml:"max_fields"`
	// Routes are the rules that derive http.route from nginx lines'
	// paths, by path prefix (one per service location); the built-in id
	// patterns apply without them.
	Routes []RouteConfig `yaml:"routes"`
}

// NginxFormatConfig is one entry of parsers.nginx_formats.
type NginxFormatConfig struct {
	// Path is a glob of the shipper's file paths (path.Match: * does not
	// cross /), e.g. /var/log/nginx/legacy*.
	Path string `yaml:"path"`
	// Format is a log_format string or a name.
	Format string `yaml:"format"`
}

// RouteConfig is one rule of parsers.routes (see parser.RouteRule).
type RouteConfig struct {
	Prefix    string   `yaml:"prefix"`
	Templates []string `yaml:"templates"`
	IDs       []string `yaml:"ids"`
	Keep      []string `yaml:"keep"`
}

// rule is c as a parser rule.
func (c RouteConfig) rule() parser.RouteRule {
	return parser.RouteRule{Prefix: c.Prefix, Templates: c.Templates, IDs: c.IDs, Keep: c.Keep}
}

// Defaults for local use.
const (
	DefaultBroker        = "127.0.0.1:9092"
	DefaultElasticsearch = "http://127.0.0.1:9200"
	DefaultListen        = "127.0.0.1:9601"
	DefaultIndex         = "logs-{type}-{service}-{environment}"
	// DefaultDataStream is elasticsearch.index with data_stream: Elastic's
	// {type}-{dataset}-{namespace}, e.g. logs-nginx.access-prod.
	DefaultDataStream   = "logs-{event.dataset}-{environment}"
	DefaultGroup        = "sluice-aggregator"
	DefaultDeadLetter   = "sluice-dead-letter"
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

// DefaultConfig is the aggregator's configuration before its file: every
// default, written once. SetDefaults gives its values to the keys left out.
func DefaultConfig() Config {
	yes, alsoYes := true, true
	return Config{
		Kafka: KafkaConfig{
			Brokers:         []string{DefaultBroker},
			Group:           DefaultGroup,
			Topics:          []string{"logs-service", "logs-nginx"},
			DeadLetterTopic: DefaultDeadLetter,
			MaxPollRecords:  5000,
			SessionTimeout:  45 * time.Second,
		},
		Elasticsearch: ElasticsearchConfig{
			Addresses: []string{DefaultElasticsearch},
			// Index and Action follow data_stream: see SetDefaults.
			BulkBytes:     5 << 20,
			Workers:       4,
			FlushInterval: DefaultFlushInterval,
			Template:      &yes,
			TemplateName:  "sluice",
			RetryMax:      30 * time.Second,
			AcceptTime:    AcceptTimeConfig{Past: DefaultAcceptPast, Future: DefaultAcceptFuture},
			Dedupe:        &alsoYes,
		},
		Parsers: ParsersConfig{
			MaxFields:        parser.DefaultMaxFields,
			DecodeJSONFields: parser.DefaultDecodeJSON,
		},
		HTTP:            telemetry.HTTPConfig{Listen: DefaultListen},
		ShutdownTimeout: 10 * time.Second,
	}
}

// SetDefaults gives the keys left out (or zero) their DefaultConfig
// values, and those that follow from others theirs (the index and action
// of a data stream). Calling it again changes nothing.
func (c *Config) SetDefaults() {
	c.Kafka.Brokers = config.SplitList(c.Kafka.Brokers)
	if len(c.Kafka.Brokers) == 0 {
		c.Kafka.Brokers = nil // an empty list takes the default too
	}
	if len(c.Kafka.Topics) == 0 {
		c.Kafka.Topics = nil
	}
	es := &c.Elasticsearch
	es.Addresses = config.SplitURLs(es.Addresses)
	if len(es.Addresses) == 0 {
		es.Addresses = nil
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
	config.FillZero(c, DefaultConfig())
	c.Kafka.Security.SetDefaults()
	es.Layout.SetDefaults()
	c.HTTP.SetDefaults()
	c.GeoIP.SetDefaults()
	c.Pipelines.SetDefaults()
}

// Validate rejects values the aggregator cannot run with, every one at
// once (errors.Join), each naming its key. Call SetDefaults first.
func (c *Config) Validate() error {
	var errs []error
	add := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	for i, b := range c.Kafka.Brokers {
		if !strings.Contains(b, ":") {
			errs = append(errs, config.Errorf(config.Index("kafka.brokers", i), "%q has no port; write host:port, e.g. kafka:9092", b))
		}
	}
	for i, t := range c.Kafka.Topics {
		if t == "" || template.TopicName(t) != t || strings.ContainsAny(t, "{} ") {
			errs = append(errs, config.Errorf(config.Index("kafka.topics", i), "%q is not a Kafka topic name", t))
		}
	}
	if c.Kafka.MaxPollRecords < 1 {
		errs = append(errs, config.Errorf("kafka.max_poll_records", "must be at least 1"))
	}
	if c.Kafka.SessionTimeout < 6*time.Second || c.Kafka.SessionTimeout > 30*time.Minute {
		errs = append(errs, config.Errorf("kafka.session_timeout", "must be between 6s and 30m (the broker's usual limits), got %s", c.Kafka.SessionTimeout))
	}
	add(c.Kafka.Security.Validate("kafka"))
	es := c.Elasticsearch
	for i, a := range es.Addresses {
		if u, err := url.Parse(a); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, config.Errorf(config.Index("elasticsearch.addresses", i), "%q must be a URL such as http://127.0.0.1:9200 (a password's special characters percent-encoded)", redactURL(a)))
		}
		if strings.HasPrefix(a, "http://") && (es.TLS.Enabled || es.TLS.Configured()) {
			errs = append(errs, config.Errorf(config.Index("elasticsearch.addresses", i), "%q is plain HTTP while elasticsearch.tls is set; write https://", redactURL(a)))
		}
	}
	add(es.TLS.Validate("elasticsearch.tls"))
	index, err := template.Parse(es.Index)
	if err != nil {
		errs = append(errs, config.Errorf("elasticsearch.index", "%v", err))
	} else {
		add(checkTemplateFields("elasticsearch.index", index))
	}
	if es.Action != "index" && es.Action != "create" {
		errs = append(errs, config.Errorf("elasticsearch.action", "%q must be index or create", es.Action))
	}
	if es.DataStream && es.Action != "create" {
		errs = append(errs, config.Errorf("elasticsearch.action", "must be create with elasticsearch.data_stream (a data stream takes no other write); remove it or write create"))
	}
	if index != nil {
		add(es.Layout.Validate("elasticsearch", index))
	}
	if len(es.Retention) > 0 && es.Template != nil && !*es.Template {
		errs = append(errs, config.Errorf("elasticsearch.retention", "is applied by Sluice's index templates, which elasticsearch.template: false turns off; remove one of them"))
	}
	password, apiKey, err := es.credentials()
	add(err)
	if err != nil {
		// Read neither: what follows is about them.
	} else if apiKey.IsSet() && es.Username != "" {
		errs = append(errs, config.Errorf("elasticsearch.api_key", "set either api_key or username/password, not both"))
	} else if password.IsSet() && es.Username == "" {
		errs = append(errs, config.Errorf("elasticsearch.username", "is required with a password"))
	} else if es.Username != "" && !password.IsSet() {
		errs = append(errs, config.Errorf("elasticsearch.password", "is required with a username; set password (e.g. \"${ELASTICSEARCH_PASSWORD}\") or password_file"))
	}
	if err == nil && (password.IsSet() || apiKey.IsSet()) && !es.AllowPlaintext {
		for i, a := range es.Addresses {
			if strings.HasPrefix(a, "http://") {
				errs = append(errs, config.Errorf(config.Index("elasticsearch.addresses", i), "%q is plain HTTP, which would send the credentials unencrypted; "+
					"write https:// (with elasticsearch.tls.ca_file for a private CA), or set elasticsearch.allow_plaintext: true on a network you trust", redactURL(a)))
			}
		}
	}
	if es.BulkBytes < 64<<10 {
		errs = append(errs, config.Errorf("elasticsearch.bulk_bytes", "must be at least 65536, got %d", es.BulkBytes))
	}
	if es.Workers < 1 || es.Workers > 64 {
		errs = append(errs, config.Errorf("elasticsearch.workers", "must be between 1 and 64, got %d", es.Workers))
	}
	if es.FlushInterval <= 0 || es.FlushInterval > time.Minute {
		errs = append(errs, config.Errorf("elasticsearch.flush_interval", "must be a duration between 1ms and 1m such as 250ms, got %s", es.FlushInterval))
	}
	if es.RetryMax <= 0 {
		errs = append(errs, config.Errorf("elasticsearch.retry_max", "must be a positive duration such as 30s"))
	}
	add(c.HTTP.Validate("http"))
	add(c.Log.Validate("log"))
	if c.ShutdownTimeout < 0 {
		errs = append(errs, config.Errorf("shutdown_timeout", "must be a positive duration such as 10s"))
	}
	if es.AcceptTime.Past < 0 {
		errs = append(errs, config.Errorf("elasticsearch.accept_time.past", "must be a positive duration such as 720h (30 days), got %s", es.AcceptTime.Past))
	}
	if es.AcceptTime.Future < 0 {
		errs = append(errs, config.Errorf("elasticsearch.accept_time.future", "must be a positive duration such as 24h, got %s", es.AcceptTime.Future))
	}
	add(c.GeoIP.Validate("geoip"))
	add(c.Kibana.Validate("kibana"))
	for i, name := range c.Parsers.DecodeJSONFields {
		if strings.TrimSpace(name) == "" {
			errs = append(errs, config.Errorf("parsers.decode_json_fields", "entry %d is empty: name a member such as log, or remove it", i))
		}
	}
	if m := c.Parsers.MaxFields; m < 1 || m > maxMaxFields {
		errs = append(errs, config.Errorf("parsers.max_fields", "must be between 1 and %d (well below the index's limit of %d fields, which all services and tenants share), got %d", maxMaxFields, totalFieldsLimit, m))
	}
	parsersBefore := len(errs)
	for i, r := range c.Parsers.Routes {
		if _, err := parser.NewRoutes([]parser.RouteRule{r.rule()}); err != nil {
			_, msg, _ := strings.Cut(err.Error(), ": ") // the rule's number is in the key
			errs = append(errs, config.Errorf(fmt.Sprintf("parsers.routes[%d]", i), "%s; e.g. {prefix: /api/v1/orders, templates: [/api/v1/orders/{id}/lines/{line}]}", msg))
		}
	}
	for i, f := range c.Parsers.NginxFormats {
		key := fmt.Sprintf("parsers.nginx_formats[%d]", i)
		if _, err := path.Match(f.Path, ""); err != nil || f.Path == "" {
			errs = append(errs, config.Errorf(key+".path", "must be a glob of file paths, e.g. /var/log/nginx/legacy*; got %q", f.Path))
		}
		if f.Format == "" {
			errs = append(errs, config.Errorf(key+".format", "is missing; give nginx's log_format string, or one of the names %s", strings.Join(parser.NginxFormatNames, ", ")))
		} else if _, err := compileNginx(f.Format); err != nil {
			errs = append(errs, config.Errorf(key+".format", "%v; give nginx's log_format string, or one of the names %s", err, strings.Join(parser.NginxFormatNames, ", ")))
		}
	}
	if len(errs) > parsersBefore {
		// routes or nginx_formats said what is wrong; newParsers would again.
	} else if _, err := newParsers(c.Parsers); err != nil {
		errs = append(errs, config.Errorf("parsers.nginx_format", "%v; give nginx's log_format string, or one of the names %s", err, strings.Join(parser.NginxFormatNames, ", ")))
	}
	add(c.Pipelines.Validate("pipelines"))
	return errors.Join(errs...)
}

// esRetry is the pause between attempts to deliver to Elasticsearch: from
// 100ms up to elasticsearch.retry_max, jittered over its upper half so that
// workers and indices do not retry in step.
func esRetry(retryMax time.Duration) backoff.Policy {
	return backoff.Policy{Initial: 100 * time.Millisecond, Max: retryMax, Jitter: 0.5}
}
