package main

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sluicelog/sluice/internal/testenv"
)

// secured is what the security tests share: the local Kafka's secured
// listeners, an nginx terminating TLS with authentication in front of
// Elasticsearch, and credentials in files.
type secured struct {
	stack *testenv.Stack
	kafka *testenv.SecureKafka
	nginx *testenv.Nginx
	dir   string

	clientCert, clientKey string
	wrongCA               *testenv.CA
	esCA                  *testenv.CA
	scramUser             string
	// Every secret the tests use, to be searched for in output.
	secrets []string
	// Files holding secrets.
	plainPasswordFile, scramPasswordFile, esPasswordFile, esAPIKeyFile string
	esUser                                                             string
	scramPassword, esPassword                                          string
}

func randomSecret(t *testing.T, prefix string) string {
	var b [12]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	return prefix + hex.EncodeToString(b[:])
}

func newSecured(t *testing.T) *secured {
	t.Helper()
	stack := testenv.Start(t)
	s := &secured{stack: stack, kafka: stack.SecureKafka(t), dir: t.TempDir()}
	s.clientCert, s.clientKey = s.kafka.CA.Issue(t, s.dir, "client", "sluice-shipper")
	s.wrongCA = testenv.NewCA(t, s.dir, "wrong-ca")
	s.esCA = testenv.NewCA(t, s.dir, "es-ca")
	esCert, esKey := s.esCA.Issue(t, s.dir, "nginx", "localhost")
	s.scramUser = strings.Replace(testenv.Name(t, "scram"), "-", "_", 1)
	s.scramPassword = randomSecret(t, "scram-")
	s.kafka.CreateSCRAMUser(t, "SCRAM-SHA-256", s.scramUser, s.scramPassword)
	s.kafka.CreateSCRAMUser(t, "SCRAM-SHA-512", s.scramUser, s.scramPassword)
	s.esUser, s.esPassword = "sluice-writer", randomSecret(t, "es-pw-")
	apiKey := randomSecret(t, "es-key-")
	s.nginx = stack.StartNginx(t, testenv.NginxOptions{CertFile: esCert, KeyFile: esKey,
		Username: s.esUser, Password: s.esPassword, APIKey: apiKey})
	s.plainPasswordFile = s.secretFile(t, "kafka-plain-password", s.kafka.PlainPassword)
	s.scramPasswordFile = s.secretFile(t, "kafka-scram-password", s.scramPassword)
	s.esPasswordFile = s.secretFile(t, "es-password", s.esPassword)
	s.esAPIKeyFile = s.secretFile(t, "es-api-key", apiKey)
	s.secrets = []string{s.kafka.PlainPassword, s.scramPassword, s.esPassword, apiKey}
	return s
}

func (s *secured) secretFile(t *testing.T, name, value string) string {
	path := filepath.Join(s.dir, name)
	if err := os.WriteFile(path, []byte(value+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// assertNoSecret fails the test if out holds any secret.
func (s *secured) assertNoSecret(t *testing.T, what, out string) {
	t.Helper()
	for _, sec := range s.secrets {
		if strings.Contains(out, sec) {
			t.Fatalf("%s prints a secret (%.8s...):\n%s", what, sec, out)
		}
	}
}

// shipperConfig writes a shipper config that ships dir/logs/*.log to
// topic, with kafka given as YAML lines under kafka:.
func (s *secured) shipperConfig(t *testing.T, name, topic, kafka string) string {
	path := filepath.Join(s.dir, name+".yaml")
	writeFile(t, path, fmt.Sprintf(`
node: test-node
registry: %[1]s/registry-%[2]s
scan_interval: 200ms
registry_flush: 200ms
inputs:
  - type: service
    paths: ["%[1]s/logs/*.log"]
    fields: {service: checkout, environment: prod}
kafka:
  topic: %[3]s
  partitions: 2
%[4]s
http:
  listen: 127.0.0.1:0
`, s.dir, name, topic, indent(kafka)))
	return path
}

// aggregatorConfig writes an aggregator config consuming topic into
// indices named prefix-..., with kafka and elasticsearch given as YAML
// lines under their keys.
func (s *secured) aggregatorConfig(t *testing.T, name, topic, prefix, kafka, es string) string {
	path := filepath.Join(s.dir, name+".yaml")
	writeFile(t, path, fmt.Sprintf(`
kafka:
  group: %[1]s
  topics: [%[2]s]
  dead_letter_topic: %[1]s-dead-letter
  session_timeout: 6s
%[3]s
elasticsearch:
  index: %[1]s-{type}-{service}-{environment}
  template_name: %[1]s
  retry_max: 1s
%[4]s
http:
  listen: 127.0.0.1:0
`, prefix, topic, indent(kafka), indent(es)))
	return path
}

// indent indents YAML lines by two spaces, turning each leading tab into
// two spaces too (the tests write nesting with tabs).
func indent(yaml string) string {
	lines := strings.Split(strings.Trim(yaml, "\n"), "\n")
	for i, l := range lines {
		trimmed := strings.TrimLeft(l, "\t")
		lines[i] = strings.Repeat("  ", 1+len(l)-len(trimmed)) + trimmed
	}
	return strings.Join(lines, "\n")
}

// TestSecuredPipeline ships lines to Kafka over TLS with a client
// certificate, over SASL PLAIN and over SCRAM-SHA-512 with TLS, and indexes
// them with aggregators consuming over SASL_SSL with SCRAM-SHA-256 and
// writing to Elasticsearch through nginx over HTTPS, once with basic
// authentication and once with an API key. Every secret comes from a file;
// none appears in any process's output.
func TestSecuredPipeline(t *testing.T) {
	if testing.Short() {
		t.Skip("needs Kafka and Elasticsearch")
	}
	s := newSecured(t)
	prefix := testenv.Name(t, "sec")
	const lines = 40
	appendLines(t, filepath.Join(s.dir, "logs", "app.log"), serviceLines(0, lines, "checkout"))

	shippers := []struct{ name, kafka string }{
		{"tls", fmt.Sprintf(`
brokers: ["%s"]
tls:
	enabled: true
	ca_file: %s
	cert_file: %s
	key_file: %s`, s.kafka.SSL, s.kafka.CA.CertFile, s.clientCert, s.clientKey)},
		{"plain", fmt.Sprintf(`
brokers: ["%s"]
sasl:
	mechanism: PLAIN
	username: %s
	password_file: %s
	allow_plaintext: true`, s.kafka.SASLPlaintext, s.kafka.PlainUser, s.plainPasswordFile)},
		{"scram512", fmt.Sprintf(`
brokers: ["%s"]
tls:
	enabled: true
	ca_file: %s
sasl:
	mechanism: SCRAM-SHA-512
	username: %s
	password_file: %s`, s.kafka.SASLSSL, s.kafka.CA.CertFile, s.scramUser, s.scramPasswordFile)},
	}
	for _, sh := range shippers {
		t.Run("ship over "+sh.name, func(t *testing.T) {
			topic := prefix + "-" + sh.name
			p := startSluice(t, "ship", "-c", s.shipperConfig(t, "shipper-"+sh.name, topic, sh.kafka))
			recs := s.stack.ReadTopic(t, topic, lines, time.Minute)
			p.stop()
			if len(recs) != lines {
				t.Fatalf("read %d records from %s, want %d", len(recs), topic, lines)
			}
			s.assertNoSecret(t, "the shipper's output", p.out.String())
		})
	}

	kafka := fmt.Sprintf(`
brokers: ["%s"]
tls:
	enabled: true
	ca_file: %s
sasl:
	mechanism: SCRAM-SHA-256
	username: %s
	password_file: %s`, s.kafka.SASLSSL, s.kafka.CA.CertFile, s.scramUser, s.scramPasswordFile)
	aggregators := []struct{ name, es string }{
		{"basic", fmt.Sprintf(`
addresses: ["%s"]
username: %s
password_file: %s
tls:
	ca_file: %s`, s.nginx.BasicURL, s.esUser, s.esPasswordFile, s.esCA.CertFile)},
		{"apikey", fmt.Sprintf(`
addresses: ["%s"]
api_key_file: %s
tls:
	ca_file: %s`, s.nginx.APIKeyURL, s.esAPIKeyFile, s.esCA.CertFile)},
	}
	for _, ag := range aggregators {
		t.Run("aggregate to elasticsearch with "+ag.name, func(t *testing.T) {
			index := prefix + "-" + ag.name
			s.stack.DeleteIndices(t, index+"-*")
			t.Cleanup(func() { s.stack.ES(t, http.MethodDelete, "/_index_template/"+index, nil, nil) })
			before := strings.Count(s.nginx.AccessLog(), "\n")
			p := startSluice(t, "aggregate", "-c", s.aggregatorConfig(t, "aggregator-"+ag.name, prefix+"-tls", index, kafka, ag.es))
			got := s.stack.WaitCount(t, index+"-*", lines, time.Minute)
			p.stop()
			if got != lines {
				t.Fatalf("indexed %d documents into %s-*, want %d", got, index, lines)
			}
			if n := strings.Count(s.nginx.AccessLog(), "\n") - before; n < 3 {
				t.Fatalf("nginx answered %d requests, want the aggregator's requests to pass through it", n)
			}
			s.assertNoSecret(t, "the aggregator's output", p.out.String())
		})
	}
}

// TestSecurityMisconfigurationFailsFast runs the binary with TLS and
// credentials Kafka or Elasticsearch refuse: each exits non-zero within
// seconds, with a message naming the problem and no secret; none falls
// back to plaintext or retries forever.
func TestSecurityMisconfigurationFailsFast(t *testing.T) {
	if testing.Short() {
		t.Skip("needs Kafka and Elasticsearch")
	}
	s := newSecured(t)
	prefix := testenv.Name(t, "secfail")
	wrongPassword := randomSecret(t, "wrong-pw-")
	s.secrets = append(s.secrets, wrongPassword)
	wrongPasswordFile := s.secretFile(t, "wrong-password", wrongPassword)
	esOK := fmt.Sprintf(`
addresses: ["%s"]
username: %s
password_file: %s
tls:
	ca_file: %s`, s.nginx.BasicURL, s.esUser, s.esPasswordFile, s.esCA.CertFile)
	kafkaOK := fmt.Sprintf(`brokers: ["%s"]`, s.stack.Broker)
	for _, tc := range []struct {
		name, cmd, kafka, es, want string
	}{
		{name: "shipper, wrong CA", cmd: "ship", want: "x509: certificate signed by unknown authority", kafka: fmt.Sprintf(`
brokers: ["%s"]
tls:
	enabled: true
	ca_file: %s
	cert_file: %s
	key_file: %s`, s.kafka.SSL, s.wrongCA.CertFile, s.clientCert, s.clientKey)},
		{name: "shipper, no client certificate", cmd: "ship", want: "kafka TLS: the broker refused the handshake", kafka: fmt.Sprintf(`
brokers: ["%s"]
tls:
	enabled: true
	ca_file: %s`, s.kafka.SSL, s.kafka.CA.CertFile)},
		{name: "shipper, plaintext to the TLS listener", cmd: "ship", want: "is TLS missing", kafka: fmt.Sprintf(`
brokers: ["%s"]`, s.kafka.SSL)},
		{name: "shipper, wrong SCRAM password", cmd: "ship", want: "SASL authentication failed", kafka: fmt.Sprintf(`
brokers: ["%s"]
tls:
	enabled: true
	ca_file: %s
sasl:
	mechanism: SCRAM-SHA-512
	username: %s
	password_file: %s`, s.kafka.SASLSSL, s.kafka.CA.CertFile, s.scramUser, wrongPasswordFile)},
		{name: "aggregator, wrong PLAIN password", cmd: "aggregate", es: esOK, want: "SASL authentication failed", kafka: fmt.Sprintf(`
brokers: ["%s"]
sasl:
	mechanism: PLAIN
	username: %s
	password_file: %s
	allow_plaintext: true`, s.kafka.SASLPlaintext, s.kafka.PlainUser, wrongPasswordFile)},
		{name: "elasticsearch, wrong password", cmd: "aggregate", kafka: kafkaOK, want: "HTTP 401", es: fmt.Sprintf(`
addresses: ["%s"]
username: %s
password_file: %s
tls:
	ca_file: %s`, s.nginx.BasicURL, s.esUser, wrongPasswordFile, s.esCA.CertFile)},
		{name: "elasticsearch, wrong API key", cmd: "aggregate", kafka: kafkaOK, want: "HTTP 401", es: fmt.Sprintf(`
addresses: ["%s"]
api_key_file: %s
tls:
	ca_file: %s`, s.nginx.APIKeyURL, wrongPasswordFile, s.esCA.CertFile)},
		{name: "elasticsearch, wrong CA", cmd: "aggregate", kafka: kafkaOK, want: "x509: certificate signed by unknown authority", es: fmt.Sprintf(`
addresses: ["%s"]
username: %s
password_file: %s
tls:
	ca_file: %s`, s.nginx.BasicURL, s.esUser, s.esPasswordFile, s.wrongCA.CertFile)},
		{name: "elasticsearch, no CA (system roots)", cmd: "aggregate", kafka: kafkaOK, want: "x509: certificate signed by unknown authority", es: fmt.Sprintf(`
addresses: ["%s"]
username: %s
password_file: %s`, s.nginx.BasicURL, s.esUser, s.esPasswordFile)},
		{name: "elasticsearch, http:// to the TLS port", cmd: "aggregate", kafka: kafkaOK, want: "a plain HTTP request was sent to an HTTPS port", es: fmt.Sprintf(`
addresses: ["http://%s"]
username: %s
password_file: %s
allow_plaintext: true`, s.nginx.Plain, s.esUser, s.esPasswordFile)},
		{name: "replay, wrong SCRAM password", cmd: "replay", es: esOK, want: "SASL authentication failed", kafka: fmt.Sprintf(`
brokers: ["%s"]
sasl:
	mechanism: SCRAM-SHA-256
	username: %s
	password_file: %s
	allow_plaintext: true`, s.kafka.SASLPlaintext, s.scramUser, wrongPasswordFile)},
		{name: "elasticsearch, https:// to a plain port", cmd: "aggregate", kafka: kafkaOK, want: "does not speak HTTPS", es: fmt.Sprintf(`
addresses: ["%s"]
tls:
	ca_file: %s`, strings.Replace(s.stack.Elasticsearch, "http://", "https://", 1), s.esCA.CertFile)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			name := strings.NewReplacer(" ", "-", ",", "", "/", "", ":", "", "(", "", ")", "").Replace(tc.name)
			var cfg string
			if tc.cmd == "ship" {
				cfg = s.shipperConfig(t, name, prefix+"-"+name, tc.kafka)
				appendLines(t, filepath.Join(s.dir, "logs", "app.log"), serviceLines(0, 1, "checkout"))
			} else {
				cfg = s.aggregatorConfig(t, name, prefix+"-in", prefix+"-"+name, tc.kafka, tc.es)
				t.Cleanup(func() { s.stack.ES(t, http.MethodDelete, "/_index_template/"+prefix+"-"+name, nil, nil) })
			}
			args := []string{tc.cmd, "-c", cfg}
			if tc.cmd == "replay" {
				args = append(args, "-topic", prefix+"-in")
			}
			start := time.Now()
			code, out := runToExit(t, 20*time.Second, args...)
			took := time.Since(start)
			t.Logf("exit %d after %s: %s", code, took.Round(time.Millisecond), lastLine(out))
			if code != 1 {
				t.Fatalf("exit code %d, want 1; output:\n%s", code, out)
			}
			if !strings.Contains(lastLine(out), tc.want) {
				t.Fatalf("the final error does not say %q:\n%s", tc.want, out)
			}
			if took > 10*time.Second {
				t.Errorf("took %s to fail", took)
			}
			s.assertNoSecret(t, "the output", out)
		})
	}
}

// runToExit runs sluice with args and returns its exit code and output,
// failing the test if it is still running after timeout.
func runToExit(t *testing.T, timeout time.Duration, args ...string) (int, string) {
	t.Helper()
	p := startSluice(t, args...)
	done := make(chan error, 1)
	go func() { done <- p.cmd.Wait() }()
	select {
	case err := <-done:
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			return exit.ExitCode(), p.out.String()
		}
		if err != nil {
			t.Fatal(err)
		}
		return 0, p.out.String()
	case <-time.After(timeout):
		_ = p.cmd.Process.Kill()
		<-done
		t.Fatalf("sluice %s still running after %s:\n%s", args[0], timeout, p.out.String())
		return 0, ""
	}
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return lines[len(lines)-1]
}

// TestCheckNeverPrintsSecrets: `sluice check` on configurations holding
// passwords and API keys, inline, from ${VAR} and from files, valid or not,
// says what is wrong without printing any of them.
func TestCheckNeverPrintsSecrets(t *testing.T) {
	dir := t.TempDir()
	const inline, fromEnv, fromFile = "inline-secret-a1b2", "env-secret-c3d4", "file-secret-e5f6"
	t.Setenv("SLUICE_TEST_SECRET", fromEnv)
	pwFile := filepath.Join(dir, "pw")
	writeFile(t, pwFile, fromFile+"\n")
	ca := testenv.NewCA(t, dir, "ca")
	agg := func(es, kafka string) string {
		return fmt.Sprintf("kafka:\n  brokers: [\"127.0.0.1:9097\"]\n%s\nelasticsearch:\n  addresses: [\"https://127.0.0.1:9200\"]\n%s\n", indent(kafka), indent(es))
	}
	for _, tc := range []struct{ name, yaml, want string }{
		{"valid, every kind of secret", agg("username: u\npassword_file: "+pwFile+"\ntls:\n  ca_file: "+ca.CertFile,
			"sasl:\n  mechanism: scram-sha-512\n  username: u\n  password: ${SLUICE_TEST_SECRET}\ntls:\n  enabled: true\n  ca_file: "+ca.CertFile),
			"valid aggregator configuration"},
		{"valid, api key inline", agg("api_key: "+inline, "sasl:\n  mechanism: PLAIN\n  username: u\n  password_file: "+pwFile+"\n  allow_plaintext: true"),
			"valid aggregator configuration"},
		{"sasl without tls", agg("", "sasl:\n  mechanism: PLAIN\n  username: u\n  password: "+inline),
			"kafka.tls.enabled: is false while SASL is on"},
		{"credentials over http", "kafka:\n  brokers: [\"127.0.0.1:9092\"]\nelasticsearch:\n  addresses: [\"http://127.0.0.1:9200\"]\n  api_key: " + inline + "\n",
			`elasticsearch.addresses[0]: "http://127.0.0.1:9200" is plain HTTP, which would send the credentials unencrypted`},
		{"password and password_file", agg("username: u\npassword: "+inline+"\npassword_file: "+pwFile, ""),
			"elasticsearch.password_file: both the value and its _file are set"},
		{"api key and username", agg("username: u\npassword: ${SLUICE_TEST_SECRET}\napi_key: "+inline, ""),
			"elasticsearch.api_key: set either api_key or username/password, not both"},
		{"username without password", agg("username: u", ""), "elasticsearch.password: is required with a username"},
		{"http with tls", "kafka:\n  brokers: [\"127.0.0.1:9092\"]\nelasticsearch:\n  addresses: [\"http://u:" + inline + "@127.0.0.1:9200\"]\n  tls:\n    ca_file: " + ca.CertFile + "\n",
			`elasticsearch.addresses[0]: "http://u:xxxxx@127.0.0.1:9200" is plain HTTP while elasticsearch.tls is set; write https://`},
		{"kibana url with credentials and a query", agg("", "") + "kibana:\n  url: http://u:" + inline + "@kibana:5601/?x=1\n",
			`kibana.url: "http://u:xxxxx@kibana:5601/?x=1" must not hold credentials`},
		{"kibana password file", agg("", "") + "kibana:\n  url: http://kibana:5601\n  username: u\n  password_file: " + pwFile + "\n",
			"valid aggregator configuration"},
		{"kibana api key and its file", agg("", "") + "kibana:\n  url: http://kibana:5601\n  api_key: " + inline + "\n  api_key_file: " + pwFile + "\n",
			"kibana.api_key_file: both the value and its _file are set"},
		{"comma in an elasticsearch password", "kafka:\n  brokers: [\"127.0.0.1:9092\"]\nelasticsearch:\n  addresses: [\"https://u:" + inline + "," + fromEnv + "@127.0.0.1:9200\"]\n",
			"valid aggregator configuration"},
		{"comma in a password, address wrong", "kafka:\n  brokers: [\"127.0.0.1:9092\"]\nelasticsearch:\n  addresses: [\"https://u:" + inline + "," + fromEnv + "@127.0.0.1:9200\"]\n  tls:\n    ca_file: " + filepath.Join(dir, "nope.crt") + "\n",
			"elasticsearch.tls.ca_file"},
		{"elasticsearch address that does not parse", "kafka:\n  brokers: [\"127.0.0.1:9092\"]\nelasticsearch:\n  addresses: [\"http://u:" + inline + "@127.0.0.1:92 00\"]\n",
			`elasticsearch.addresses[0]: "http://xxxxx@127.0.0.1:92 00" must be a URL`},
		{"unknown sasl mechanism", agg("", "sasl:\n  mechanism: GSSAPI\n  username: u\n  password: "+inline),
			`kafka.sasl.mechanism: "GSSAPI" is not supported`},
		{"kafka tls without enabled", agg("", "tls:\n  ca_file: "+ca.CertFile+"\nsasl:\n  mechanism: PLAIN\n  username: u\n  password: "+inline),
			"kafka.tls.enabled: is false but other kafka.tls keys are set"},
		{"missing key file", agg("", "tls:\n  enabled: true\n  cert_file: "+ca.CertFile+"\n  key_file: "+filepath.Join(dir, "nope.key")),
			"kafka.tls.cert_file: cannot load the client certificate and key"},
		{"shipper with a bad password file", "registry: /tmp/r\ninputs: [{type: service, paths: [/var/log/*.log]}]\nkafka:\n  sasl:\n    mechanism: SCRAM-SHA-256\n    username: u\n    password_file: " + filepath.Join(dir, "nope") + "\n",
			"kafka.sasl.password_file: reading secret file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "-")+".yaml")
			writeFile(t, path, tc.yaml)
			var stdout, stderr bytes.Buffer
			code := run([]string{"check", "-c", path}, &stdout, &stderr)
			out := stdout.String() + stderr.String()
			if !strings.Contains(out, tc.want) {
				t.Fatalf("exit %d, output %q; want %q", code, out, tc.want)
			}
			if wantCode := map[bool]int{true: 0, false: 1}[strings.HasPrefix(tc.want, "valid")]; code != wantCode {
				t.Fatalf("exit %d, want %d: %s", code, wantCode, out)
			}
			for _, sec := range []string{inline, fromEnv, fromFile} {
				if strings.Contains(out, sec) {
					t.Fatalf("check prints a secret: %s", out)
				}
			}
		})
	}
}
