package aggregator

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sluicelog/sluice/aggregator/deliver"
	"github.com/sluicelog/sluice/internal/config"
	"github.com/sluicelog/sluice/internal/testenv"
)

// TestValidateCredentialsAndTLS: the elasticsearch and kafka security keys
// are checked at start, with the key path and the fix, and no error
// prints a secret.
func TestValidateCredentialsAndTLS(t *testing.T) {
	dir := t.TempDir()
	ca := testenv.NewCA(t, dir, "ca")
	cert, key := ca.Issue(t, dir, "client", "client")
	pwFile := filepath.Join(dir, "pw")
	if err := os.WriteFile(pwFile, []byte("pw-from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, yaml, want string
	}{
		{"basic auth from a file over https", `
elasticsearch:
  addresses: ["https://es:9200"]
  username: sluice
  password_file: ` + pwFile + `
  tls: {ca_file: ` + ca.CertFile + `, cert_file: ` + cert + `, key_file: ` + key + `}`, ""},
		{"api key from a file over http, allowed", `
elasticsearch:
  api_key_file: ` + pwFile + `
  allow_plaintext: true`, ""},
		{"api key over http", `
elasticsearch:
  addresses: ["https://es-0:9200", "http://es-1:9200"]
  api_key_file: ` + pwFile, `elasticsearch.addresses[1]: "http://es-1:9200" is plain HTTP, which would send the credentials unencrypted`},
		{"password over http", `
elasticsearch:
  username: u
  password: pw-inline`, `elasticsearch.addresses[0]: "http://127.0.0.1:9200" is plain HTTP, which would send the credentials unencrypted`},
		{"kafka sasl without tls", `
kafka:
  sasl: {mechanism: PLAIN, username: u, password: pw-inline}`, "kafka.tls.enabled: is false while SASL is on"},
		{"kafka sasl and tls", `
kafka:
  tls: {enabled: true, ca_file: ` + ca.CertFile + `}
  sasl: {mechanism: SCRAM-SHA-256, username: u, password_file: ` + pwFile + `}`, ""},
		{"api key file empty", `
elasticsearch:
  api_key_file: ` + empty, "elasticsearch.api_key_file: secret file " + empty + " is empty"},
		{"api key and file", `
elasticsearch:
  api_key: pw-inline
  api_key_file: ` + pwFile, "elasticsearch.api_key_file: both the value and its _file are set; keep one"},
		{"api key file and username", `
elasticsearch:
  username: u
  password: pw-inline
  api_key_file: ` + pwFile, "elasticsearch.api_key: set either api_key or username/password, not both"},
		{"password without username", `
elasticsearch:
  password_file: ` + pwFile, "elasticsearch.username: is required with a password"},
		{"username without password", `
elasticsearch:
  addresses: ["https://es:9200"]
  username: u`, "elasticsearch.password: is required with a username"},
		{"tls with an http address", `
elasticsearch:
  addresses: ["https://es-0:9200", "http://u:pw-inline@es-1:9200"]
  tls: {ca_file: ` + ca.CertFile + `}`, `elasticsearch.addresses[1]: "http://u:xxxxx@es-1:9200" is plain HTTP while elasticsearch.tls is set; write https://`},
		{"missing ca file", `
elasticsearch:
  addresses: ["https://es:9200"]
  tls: {ca_file: ` + filepath.Join(dir, "nope.crt") + `}`, "elasticsearch.tls.ca_file: reading CA file: open " + filepath.Join(dir, "nope.crt") + ": no such file or directory"},
		{"key without cert", `
elasticsearch:
  addresses: ["https://es:9200"]
  tls: {key_file: ` + key + `}`, "elasticsearch.tls.cert_file: cert_file and key_file go together"},
		{"kafka sasl without mechanism", `
kafka:
  sasl: {username: u, password: pw-inline}`, "kafka.sasl.mechanism: is required with a username or password"},
		{"address that does not parse", `
elasticsearch:
  addresses: ["http://u:pw-inline@es:92 00"]`, `elasticsearch.addresses[0]: "http://xxxxx@es:92 00" must be a URL`},
		{"address with a bad escape in its password", `
elasticsearch:
  addresses: ["https://u:pw-inline%zz@es:9200"]`, `elasticsearch.addresses[0]: "https://xxxxx@es:9200" must be a URL`},
		{"decode_json_fields with an empty name", `
parsers:
  decode_json_fields: [log, ""]`, "parsers.decode_json_fields: entry 1 is empty"},
		{"max_fields below 1", `
parsers:
  max_fields: -1`, "parsers.max_fields: must be between 1 and 1000"},
		{"max_fields near the index's limit", `
parsers:
  max_fields: 1990`, "parsers.max_fields: must be between 1 and 1000"},
		{"route prefix without a slash", `
parsers:
  routes:
    - {prefix: /api}
    - {prefix: api/v1/orders}`, `parsers.routes[1]: prefix "api/v1/orders" must start with /`},
		{"route id pattern that does not compile", `
parsers:
  routes: [{prefix: /, ids: ["("]}]`, "parsers.routes[0]: ids: error parsing regexp"},
		{"unknown tls key", `
kafka:
  tls:
    enabled: true
    ca: x`, "kafka.tls.ca: unknown key"},
		{"negative accept_time", `
elasticsearch:
  accept_time: {past: -1h}`, "elasticsearch.accept_time.past: must be a positive duration"},
		{"accept_time and dedupe", `
elasticsearch:
  index: "logs-{type}-{+2006.01.02}"
  accept_time: {past: 2160h, future: 2h}
  dedupe: false`, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var cfg Config
			err := config.Decode([]byte(tc.yaml), &cfg, func(string) (string, bool) { return "", false })
			if err == nil {
				cfg.SetDefaults()
				err = cfg.Validate()
			}
			if tc.want == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
				t.Fatalf("error = %v\nwant prefix %s", err, tc.want)
			}
			if strings.Contains(err.Error(), "pw-inline") || strings.Contains(err.Error(), "pw-from-file") {
				t.Fatalf("the error prints a secret: %v", err)
			}
		})
	}
}

// TestAddressesKeepPasswordsWhole: a comma in an address's password does not
// split the address list (and so print the rest of the password as an
// address); a comma before another URL does.
func TestAddressesKeepPasswordsWhole(t *testing.T) {
	var cfg Config
	env := func(name string) (string, bool) {
		return "https://u:pw-inline,rest@es-0:9200,http://es-1:9200", name == "ES_URLS"
	}
	if err := config.Decode([]byte(`elasticsearch: {addresses: ["${ES_URLS}"]}`), &cfg, env); err != nil {
		t.Fatal(err)
	}
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	if got := cfg.Elasticsearch.Addresses; len(got) != 2 || got[0] != "https://u:pw-inline,rest@es-0:9200" || got[1] != "http://es-1:9200" {
		t.Fatalf("addresses = %q", got)
	}
	if got := strings.Join(deliver.RedactURLs(cfg.Elasticsearch.Addresses), " "); strings.Contains(got, "pw-inline") || strings.Contains(got, "rest") {
		t.Fatalf("logged addresses %q print the password", got)
	}
}

// TestStallAfterConfig: http.stall_after defaults to 60s, is read as a
// duration, and a value too small to mean a stall is refused by key.
func TestStallAfterConfig(t *testing.T) {
	for _, tc := range []struct{ yaml, want string }{
		{"http:\n  stall_after: 5m\n", ""},
		{"http:\n  stall_after: 10ms\n", "http.stall_after: must be at least 1s"},
	} {
		checkConfig(t, tc.yaml, tc.want)
	}
	var cfg Config
	cfg.SetDefaults()
	if cfg.HTTP.StallAfter != 60*time.Second {
		t.Errorf("default stall_after = %s, want 60s", cfg.HTTP.StallAfter)
	}
}

// TestFlushIntervalConfig: elasticsearch.flush_interval defaults to 250ms,
// is read as a duration, and a value out of range is refused by key.
func TestFlushIntervalConfig(t *testing.T) {
	for _, tc := range []struct{ yaml, want string }{
		{"elasticsearch:\n  flush_interval: 2s\n", ""},
		{"elasticsearch:\n  flush_interval: -1s\n", "elasticsearch.flush_interval: must be a duration between 1ms and 1m"},
		{"elasticsearch:\n  flush_interval: 5m\n", "elasticsearch.flush_interval: must be a duration between 1ms and 1m"},
	} {
		checkConfig(t, tc.yaml, tc.want)
	}
	var cfg Config
	cfg.SetDefaults()
	if cfg.Elasticsearch.FlushInterval != 250*time.Millisecond {
		t.Errorf("default flush_interval = %s, want 250ms", cfg.Elasticsearch.FlushInterval)
	}
}

// checkConfig loads yaml as a configuration file, with defaults, and checks
// that it is valid (want "") or refused with an error containing want.
func checkConfig(t *testing.T, yaml, want string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "aggregator.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	var cfg Config
	err := config.Load(path, &cfg)
	if err == nil {
		cfg.SetDefaults()
		err = cfg.Validate()
	}
	if want == "" {
		if err != nil {
			t.Errorf("%q: %v", yaml, err)
		}
		return
	}
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("%q: error %v, want %q", yaml, err, want)
	}
}

// TestNginxFormatsConfig checks that parsers.nginx_formats are validated:
// good entries taken, bad ones refused with the key named.
func TestNginxFormatsConfig(t *testing.T) {
	var cfg Config
	cfg.SetDefaults()
	cfg.Parsers.NginxFormats = []NginxFormatConfig{{Path: "/var/log/nginx/legacy*", Format: "combined"}}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []struct {
		entry NginxFormatConfig
		key   string
	}{
		{NginxFormatConfig{Path: "[", Format: "combined"}, "parsers.nginx_formats[0].path"},
		{NginxFormatConfig{Format: "combined"}, "parsers.nginx_formats[0].path"},
		{NginxFormatConfig{Path: "/x*"}, "parsers.nginx_formats[0].format"},
		{NginxFormatConfig{Path: "/x*", Format: "$a$b"}, "parsers.nginx_formats[0].format"},
	} {
		cfg.Parsers.NginxFormats = []NginxFormatConfig{bad.entry}
		if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), bad.key) {
			t.Errorf("%+v: %v, want an error naming %s", bad.entry, err, bad.key)
		}
	}
}

// TestConfigValidatesPipelines rejects a bad pipeline at start, naming its
// key path.
func TestConfigValidatesPipelines(t *testing.T) {
	var cfg Config
	src := `
elasticsearch: {}
pipelines:
  nginx:
    - {name: a, remove_fields: [x]}
    - {name: b, drop: {}}
`
	if err := config.Decode([]byte(src), &cfg, func(string) (string, bool) { return "", false }); err != nil {
		t.Fatal(err)
	}
	cfg.SetDefaults()
	want := "pipelines.nginx[1].drop.if: a drop step needs a condition, e.g. drop: {if: {equals: {url.original: /healthz}}}"
	if err := cfg.Validate(); err == nil || err.Error() != want {
		t.Fatalf("Validate = %v, want %s", err, want)
	}
}
