package aggregator

import (
	"errors"
	"fmt"
	"net/url"
	"path"
	"strings"
	"time"

	"github.com/sluicelog/sluice/aggregator/consume"
	"github.com/sluicelog/sluice/aggregator/deliver"
	"github.com/sluicelog/sluice/aggregator/pipeline"
	"github.com/sluicelog/sluice/aggregator/process"
	"github.com/sluicelog/sluice/geoip"
	"github.com/sluicelog/sluice/internal/config"
	"github.com/sluicelog/sluice/internal/kibana"
	"github.com/sluicelog/sluice/internal/secret"
	"github.com/sluicelog/sluice/internal/telemetry"
	"github.com/sluicelog/sluice/internal/template"
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

	Reload telemetry.ReloadConfig `yaml:"reload"`

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
	// MemoryLimit is the memory the aggregator may use (default 192 MiB):
	// what it holds in flight and the Go runtime's soft limit derive from
	// it (memory.go).
	MemoryLimit config.Bytes `yaml:"memory_limit"`
}

// The sections the stages read, under the names the configuration has
// always had.
type (
	KafkaConfig         = consume.KafkaConfig
	ElasticsearchConfig = deliver.ElasticsearchConfig
	AcceptTimeConfig    = deliver.AcceptTimeConfig
	Layout              = deliver.Layout
	ParsersConfig       = process.ParsersConfig
	NginxFormatConfig   = process.NginxFormatConfig
	RouteConfig         = process.RouteConfig
)

// Defaults for local use.
const (
	DefaultBroker        = "127.0.0.1:9092"
	DefaultElasticsearch = deliver.DefaultElasticsearch
	DefaultListen        = "127.0.0.1:9601"
	DefaultIndex         = deliver.DefaultIndex
	DefaultDataStream    = deliver.DefaultDataStream
	DefaultGroup         = "sluice-aggregator"
	DefaultDeadLetter    = "sluice-dead-letter"
	DefaultAcceptPast    = deliver.DefaultAcceptPast
	DefaultAcceptFuture  = deliver.DefaultAcceptFuture
	DefaultFlushInterval = deliver.DefaultFlushInterval
)

// DefaultConfig is the aggregator's configuration before its file: every
// default, written once. SetDefaults gives its values to the keys left out.
func DefaultConfig() Config {
	return Config{
		Kafka: KafkaConfig{
			Brokers:         []string{DefaultBroker},
			Group:           DefaultGroup,
			Topics:          []string{"logs-service", "logs-nginx"},
			DeadLetterTopic: DefaultDeadLetter,
			MaxPollRecords:  5000,
			SessionTimeout:  45 * time.Second,
		},
		Elasticsearch:   deliver.DefaultElasticsearchConfig(),
		Parsers:         process.DefaultParsersConfig(),
		HTTP:            telemetry.HTTPConfig{Listen: DefaultListen},
		ShutdownTimeout: 10 * time.Second,
		MemoryLimit:     DefaultMemoryLimit,
	}
}

// SetDefaults gives the keys left out (or zero) their DefaultConfig
// values, and those that follow from others theirs (the index and action
// of a data stream). Calling it again changes nothing.
func (c *Config) SetDefaults() {
	c.setMemoryDefaults()
	c.Kafka.Brokers = config.SplitList(c.Kafka.Brokers)
	if len(c.Kafka.Brokers) == 0 {
		c.Kafka.Brokers = nil // an empty list takes the default too
	}
	if len(c.Kafka.Topics) == 0 {
		c.Kafka.Topics = nil
	}
	c.Elasticsearch.SetDefaults() // its index and action follow data_stream
	config.FillZero(c, DefaultConfig())
	c.Kafka.Security.SetDefaults()
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
			errs = append(errs, config.Errorf(config.Index("elasticsearch.addresses", i), "%q must be a URL such as http://127.0.0.1:9200 (a password's special characters percent-encoded)", secret.RedactURL(a)))
		}
		if strings.HasPrefix(a, "http://") && (es.TLS.Enabled || es.TLS.Configured()) {
			errs = append(errs, config.Errorf(config.Index("elasticsearch.addresses", i), "%q is plain HTTP while elasticsearch.tls is set; write https://", secret.RedactURL(a)))
		}
	}
	add(es.TLS.Validate("elasticsearch.tls"))
	index, err := template.Parse(es.Index)
	if err != nil {
		errs = append(errs, config.Errorf("elasticsearch.index", "%v", err))
	} else {
		add(process.CheckTemplateFields("elasticsearch.index", index))
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
	password, apiKey, err := es.Credentials()
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
					"write https:// (with elasticsearch.tls.ca_file for a private CA), or set elasticsearch.allow_plaintext: true on a network you trust", secret.RedactURL(a)))
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
	add(c.validateMemory())
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
	if m := c.Parsers.MaxFields; m < 1 || m > deliver.MaxMaxFields {
		errs = append(errs, config.Errorf("parsers.max_fields", "must be between 1 and %d (well below the index's limit of %d fields, which all services and tenants share), got %d", deliver.MaxMaxFields, deliver.TotalFieldsLimit, m))
	}
	parsersBefore := len(errs)
	for i, r := range c.Parsers.Routes {
		if _, err := parser.NewRoutes([]parser.RouteRule{r.Rule()}); err != nil {
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
		} else if _, err := process.CompileNginx(f.Format); err != nil {
			errs = append(errs, config.Errorf(key+".format", "%v; give nginx's log_format string, or one of the names %s", err, strings.Join(parser.NginxFormatNames, ", ")))
		}
	}
	if len(errs) > parsersBefore {
		// routes or nginx_formats said what is wrong; CheckParsers would again.
	} else if err := process.CheckParsers(c.Parsers); err != nil {
		errs = append(errs, config.Errorf("parsers.nginx_format", "%v; give nginx's log_format string, or one of the names %s", err, strings.Join(parser.NginxFormatNames, ", ")))
	}
	add(c.Pipelines.Validate("pipelines"))
	return errors.Join(errs...)
}

// ProcessConfig is what the document building reads.
func (c *Config) ProcessConfig() process.Config {
	return process.Config{Parsers: c.Parsers, Elasticsearch: c.Elasticsearch, GeoIP: c.GeoIP, Pipelines: c.Pipelines}
}

// ConsumeConfig is what the poll loop reads.
func (c *Config) ConsumeConfig() consume.Config {
	m := c.Memory()
	return consume.Config{Kafka: c.Kafka, Elasticsearch: c.Elasticsearch, ShutdownTimeout: c.ShutdownTimeout, StallAfter: c.HTTP.StallAfter,
		Budget: m.Budget, WaitLimit: m.WaitLimit}
}
