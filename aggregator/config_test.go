package aggregator

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

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
		{"api key from a file", `
elasticsearch:
  api_key_file: ` + pwFile, ""},
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
