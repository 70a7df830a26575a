package process

import (
	"github.com/sluicelog/sluice/internal/config"
	"github.com/sluicelog/sluice/parser"
)

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
	// UserAgent parses user_agent.original (nginx's $http_user_agent)
	// into user_agent.name, .version, .os.* and .device.name (default
	// true; see package useragent).
	UserAgent *bool `yaml:"user_agent"`
}

// userAgent reports whether parsers.user_agent is on (unset: on).
func (c ParsersConfig) userAgent() bool { return c.UserAgent == nil || *c.UserAgent }

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

// Rule is c as a parser rule.
func (c RouteConfig) Rule() parser.RouteRule {
	return parser.RouteRule{Prefix: c.Prefix, Templates: c.Templates, IDs: c.IDs, Keep: c.Keep}
}

// DefaultParsersConfig is the parsers section before the configuration
// file: every default, written once.
func DefaultParsersConfig() ParsersConfig {
	return ParsersConfig{MaxFields: parser.DefaultMaxFields, DecodeJSONFields: parser.DefaultDecodeJSON,
		UserAgent: new(true)}
}

// SetDefaults gives the keys left out (or zero) their DefaultParsersConfig
// values.
func (c *ParsersConfig) SetDefaults() { config.FillZero(c, DefaultParsersConfig()) }
