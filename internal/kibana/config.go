// Package kibana imports saved objects (data views, visualizations,
// dashboards, maps) into Kibana with its saved objects import API, for
// `sluice setup`.
package kibana

import (
	"net/url"
	"regexp"
	"strings"

	"github.com/sluicelog/sluice/internal/config"
	"github.com/sluicelog/sluice/internal/secret"
)

// Config is where Kibana is and how to authenticate to it. It is optional:
// without a URL, nothing is imported.
type Config struct {
	// URL is Kibana's base URL, e.g. http://kibana:5601, including any
	// server.basePath (http://host/kibana).
	URL      string `yaml:"url"`
	Username string `yaml:"username"`
	// Password, or PasswordFile: a file holding it.
	Password     secret.Value `yaml:"password"`
	PasswordFile string       `yaml:"password_file"`
	// APIKey is the base64 "id:key" credential Elasticsearch returns as
	// "encoded"; it is sent as "Authorization: ApiKey <key>". APIKeyFile is
	// a file holding it.
	APIKey     secret.Value `yaml:"api_key"`
	APIKeyFile string       `yaml:"api_key_file"`
	// Space is the Kibana space to import into (default: the default
	// space).
	Space string `yaml:"space"`
}

// Enabled reports whether a Kibana URL is configured.
func (c *Config) Enabled() bool { return c.URL != "" }

// spaceID is what Kibana accepts as a space identifier.
var spaceID = regexp.MustCompile(`^[a-z0-9_-]+$`)

// Validate checks the configuration found under key (normally "kibana");
// errors name the offending key, e.g. kibana.url.
func (c *Config) Validate(key string) error {
	if !c.Enabled() {
		for _, k := range []struct{ name, value string }{
			{"username", c.Username}, {"password", c.Password.Reveal()}, {"password_file", c.PasswordFile},
			{"api_key", c.APIKey.Reveal()}, {"api_key_file", c.APIKeyFile}, {"space", c.Space},
		} {
			if k.value != "" {
				return config.Errorf(config.Join(key, k.name), "is set but %s is not; set %s to Kibana's address, e.g. http://kibana:5601", config.Join(key, "url"), config.Join(key, "url"))
			}
		}
		return nil
	}
	u, err := url.Parse(c.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return config.Errorf(config.Join(key, "url"), "%q must be a URL such as http://kibana:5601", secret.RedactURL(c.URL))
	}
	if u.User != nil {
		return config.Errorf(config.Join(key, "url"), "%q must not hold credentials; set %s and %s instead",
			secret.RedactURL(c.URL), config.Join(key, "username"), config.Join(key, "password"))
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return config.Errorf(config.Join(key, "url"), "%q must not have a query or fragment; give Kibana's base URL, e.g. http://kibana:5601", secret.RedactURL(c.URL))
	}
	password, apiKey, err := c.credentials(key)
	if err != nil {
		return err
	}
	if apiKey.IsSet() && (c.Username != "" || password.IsSet()) {
		return config.Errorf(config.Join(key, "api_key"), "set either api_key or username/password, not both")
	}
	if password.IsSet() && c.Username == "" {
		return config.Errorf(config.Join(key, "username"), "is required with %s", config.Join(key, "password"))
	}
	if c.Space != "" && !spaceID.MatchString(c.Space) {
		return config.Errorf(config.Join(key, "space"), "%q is not a Kibana space id; ids are lower-case letters, digits, _ and -, e.g. observability", c.Space)
	}
	return nil
}

// credentials returns the password and the API key, read from their files
// when those are set; errors name the key under key.
func (c *Config) credentials(key string) (password, apiKey secret.Value, err error) {
	if password, err = secret.Resolve(c.Password, c.PasswordFile); err != nil {
		return "", "", config.Errorf(config.Join(key, "password_file"), "%v", err)
	}
	if apiKey, err = secret.Resolve(c.APIKey, c.APIKeyFile); err != nil {
		return "", "", config.Errorf(config.Join(key, "api_key_file"), "%v", err)
	}
	return password, apiKey, nil
}

// importURL is the import endpoint in the configured space.
func (c *Config) importURL() string {
	base := strings.TrimRight(c.URL, "/")
	if c.Space != "" && c.Space != "default" {
		base += "/s/" + c.Space
	}
	return base + "/api/saved_objects/_import?overwrite=true"
}
