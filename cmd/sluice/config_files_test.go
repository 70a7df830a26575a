package main

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/sluicelog/sluice/aggregator"
	"github.com/sluicelog/sluice/internal/testenv"
	"github.com/sluicelog/sluice/runner"
	"github.com/sluicelog/sluice/shipper"
	"github.com/sluicelog/sluice/shipper/kubernetes"
)

// configDir holds the configuration test data: *.good.yaml, loaded and
// compared with the structs below, and *.bad.yaml, each refused with its
// message below (every error at once, each naming its key). A file's
// name starts with the command it configures: shipper-, aggregator- or
// run-.
var configDir = filepath.Join("..", "..", "testdata", "config")

// loadConfigFile loads path as `sluice check` and the commands do, by the
// kind its name starts with.
func loadConfigFile(t *testing.T, path string) (any, error) {
	t.Helper()
	switch name := filepath.Base(path); {
	case strings.HasPrefix(name, "shipper-"):
		return loadShipper(path)
	case strings.HasPrefix(name, "aggregator-"):
		return loadAggregator(path)
	case strings.HasPrefix(name, "run-"):
		return loadRun(path)
	}
	t.Fatalf("%s: name it shipper-, aggregator- or run-", path)
	return nil, nil
}

// configEnv is what ${VAR} in the test data stands for: files made by
// the test (a CA, a client certificate, secrets).
func configEnv(t *testing.T) map[string]string {
	dir := t.TempDir()
	ca := testenv.NewCA(t, dir, "ca")
	cert, key := ca.Issue(t, dir, "client", "client")
	pw, empty := filepath.Join(dir, "pw"), filepath.Join(dir, "empty")
	if err := os.WriteFile(pw, []byte("pw-from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"DIR": dir, "CA_FILE": ca.CertFile, "CERT_FILE": cert, "KEY_FILE": key, "PW_FILE": pw, "EMPTY_FILE": empty}
	for k, v := range env {
		t.Setenv(k, v)
	}
	return env
}

func defaultShipper(node string, inputs ...shipper.InputConfig) shipper.Config {
	c := shipper.DefaultConfig()
	c.Node, c.Registry, c.Inputs = node, "/var/lib/sluice", inputs
	c.Kafka.BatchBytes = 1<<20 + 64<<10 // follows max_line_bytes
	c.Kafka.Security.SetDefaults()      // kafkaclient's own
	c.HTTP.SetDefaults()                // telemetry's own
	return c
}

func defaultAggregator() aggregator.Config {
	c := aggregator.DefaultConfig()
	c.Elasticsearch.Index, c.Elasticsearch.Action = aggregator.DefaultIndex, "index"
	// memory_limit's 192 MiB without GeoIP: a quarter of the working
	// memory, (192 - 16) / 2 MiB, over workers + 1 requests.
	c.Elasticsearch.BulkBytes = 4587520
	c.Kafka.Security.SetDefaults()
	c.Elasticsearch.Layout.SetDefaults()
	c.HTTP.SetDefaults()
	c.GeoIP.SetDefaults()
	return c
}

func TestGoodConfigs(t *testing.T) {
	service := shipper.InputConfig{Type: "service", Paths: []string{"/var/log/app/*.log"}, Format: shipper.FormatPlain}
	want := map[string]func() any{
		"shipper-defaults.good.yaml": func() any { return defaultShipper("web-1", service) },
		"shipper-set.good.yaml": func() any {
			c := defaultShipper("web-1", shipper.InputConfig{Type: "nginx", Paths: []string{"/var/log/nginx/access.log"}, Format: shipper.FormatCRI,
				Fields: map[string]string{"service": "shop"}})
			c.Kafka.Brokers = []string{"kafka-0:9092", "kafka-1:9092"}
			c.Kafka.Partitions, c.Kafka.Compression, c.Kafka.Linger = 12, "lz4", 20*time.Millisecond
			c.MaxLineBytes, c.MaxInFlightBytes = 2<<20, 16<<20
			c.Kafka.BatchBytes = 2<<20 + 64<<10
			c.HTTP.Listen = "0.0.0.0:9600"
			return c
		},
		"shipper-containers.good.yaml": func() any {
			c := defaultShipper("node-7",
				shipper.InputConfig{Type: "service", Paths: []string{"/var/log/app/*.log"}, Format: shipper.FormatPlain, ExcludeLines: []string{"^DEBUG"},
					Multiline: &shipper.MultilineConfig{Preset: "java", MaxLines: 200, MaxBytes: 1 << 20, Timeout: time.Second}},
				shipper.InputConfig{Type: "container", Paths: []string{"/var/log/containers/*.log"}, Format: shipper.FormatCRI, IncludeLines: []string{"ERROR", "WARN"},
					Multiline: &shipper.MultilineConfig{Pattern: `^\s`, Match: shipper.MatchAfter, MaxLines: 500, MaxBytes: 1 << 20, Timeout: 3 * time.Second}})
			c.Kubernetes.Enabled, c.Kubernetes.Labels = true, []string{}
			c.Kubernetes.Environments = []kubernetes.EnvironmentRule{{Namespace: "*-prod", Environment: "production"}}
			c.Reload.Watch = true
			return c
		},
		"aggregator-defaults.good.yaml": func() any { return defaultAggregator() },
		"aggregator-data-stream.good.yaml": func() any {
			c := defaultAggregator()
			c.Kafka.Brokers, c.Kafka.Group = []string{"kafka:9092"}, "sluice-eu"
			es := &c.Elasticsearch
			es.Addresses, es.DataStream, es.Workers, es.RetryMax = []string{"http://es-0:9200"}, true, 8, time.Minute
			es.Index, es.Action = aggregator.DefaultDataStream, "create"
			es.BulkBytes = 2555904 // memory_limit's share over 8 + 1 requests
			c.Parsers.DecodeJSONFields = []string{}
			return c
		},
	}
	configEnv(t)
	files, _ := filepath.Glob(filepath.Join(configDir, "*.good.yaml"))
	if len(files) == 0 {
		t.Fatal("no *.good.yaml in " + configDir)
	}
	for _, path := range files {
		name := filepath.Base(path)
		t.Run(name, func(t *testing.T) {
			got, err := loadConfigFile(t, path)
			if err != nil {
				t.Fatal(err)
			}
			if run, ok := got.(runner.Config); ok {
				checkRunDefaults(t, run)
				return
			}
			expected, ok := want[name]
			if !ok {
				t.Fatalf("no expected configuration for %s in TestGoodConfigs", name)
			}
			if w := expected(); !reflect.DeepEqual(got, w) {
				t.Fatalf("loaded\n%+v\nwant\n%+v", got, w)
			}
		})
	}
}

// checkRunDefaults checks run-defaults.good.yaml: run mode's parts, and
// the shipper's and aggregator's defaults it takes.
func checkRunDefaults(t *testing.T, got runner.Config) {
	t.Helper()
	ship := defaultShipper("box-1", shipper.InputConfig{Type: "service", Paths: []string{"/var/log/app/*.log"}, Format: shipper.FormatPlain})
	if !reflect.DeepEqual(got.Config, ship) {
		t.Errorf("shipper keys\n%+v\nwant\n%+v", got.Config, ship)
	}
	agg := defaultAggregator()
	zero := 0
	agg.Elasticsearch.Replicas = &zero // one process on one machine
	if !reflect.DeepEqual(got.Elasticsearch, agg.Elasticsearch) || !reflect.DeepEqual(got.Parsers, agg.Parsers) {
		t.Errorf("aggregator keys\n%+v\nwant\n%+v", got.Elasticsearch, agg.Elasticsearch)
	}
	if got.Queue != (runner.QueueConfig{MaxBytes: 16 << 20, Batch: 5000}) || got.DeadLetterFile != "/var/lib/sluice/dead-letter.ndjson" {
		t.Errorf("queue %+v, dead_letter_file %q", got.Queue, got.DeadLetterFile)
	}
	if kind, err := got.OutputKind(); kind != runner.OutputStdout || err != nil {
		t.Errorf("output %q, %v", kind, err)
	}
}

// badConfigs are the messages of the *.bad.yaml files, ${VAR} as in
// configEnv. Each line is one error.
var badConfigs = map[string]string{
	"aggregator-address-bad-escape.bad.yaml":          "elasticsearch.addresses[0]: \"https://xxxxx@es:9200\" must be a URL such as http://127.0.0.1:9200 (a password's special characters percent-encoded)",
	"aggregator-address-that-does-not-parse.bad.yaml": "elasticsearch.addresses[0]: \"http://xxxxx@es:92 00\" must be a URL such as http://127.0.0.1:9200 (a password's special characters percent-encoded)",
	"aggregator-api-key-and-file.bad.yaml":            "elasticsearch.api_key_file: both the value and its _file are set; keep one",
	"aggregator-api-key-file-and-username.bad.yaml": `elasticsearch.api_key: set either api_key or username/password, not both
elasticsearch.addresses[0]: "http://127.0.0.1:9200" is plain HTTP, which would send the credentials unencrypted; write https:// (with elasticsearch.tls.ca_file for a private CA), or set elasticsearch.allow_plaintext: true on a network you trust`,
	"aggregator-api-key-file-empty.bad.yaml":            "elasticsearch.api_key_file: secret file ${EMPTY_FILE} is empty",
	"aggregator-api-key-over-http.bad.yaml":             "elasticsearch.addresses[1]: \"http://es-1:9200\" is plain HTTP, which would send the credentials unencrypted; write https:// (with elasticsearch.tls.ca_file for a private CA), or set elasticsearch.allow_plaintext: true on a network you trust",
	"aggregator-decode-json-fields-empty-name.bad.yaml": "parsers.decode_json_fields: entry 1 is empty: name a member such as log, or remove it",
	"aggregator-every-error.bad.yaml": `kafka.brokers[0]: "kafka" has no port; write host:port, e.g. kafka:9092
kafka.max_poll_records: must be at least 1
kafka.session_timeout: must be between 6s and 30m (the broker's usual limits), got 1s
elasticsearch.addresses[0]: "es:9200" must be a URL such as http://127.0.0.1:9200 (a password's special characters percent-encoded)
elasticsearch.action: "upsert" must be index or create
elasticsearch.workers: must be between 1 and 64, got 100
parsers.max_fields: must be between 1 and 1000 (well below the index's limit of 2000 fields, which all services and tenants share), got -1`,
	"aggregator-flush-interval-negative.bad.yaml":      "elasticsearch.flush_interval: must be a duration between 1ms and 1m such as 250ms, got -1s",
	"aggregator-flush-interval-too-long.bad.yaml":      "elasticsearch.flush_interval: must be a duration between 1ms and 1m such as 250ms, got 5m0s",
	"aggregator-kafka-sasl-without-mechanism.bad.yaml": "kafka.sasl.mechanism: is required with a username or password: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512",
	"aggregator-kafka-sasl-without-tls.bad.yaml":       "kafka.tls.enabled: is false while SASL is on: the password and every record would cross the network unencrypted; use a SASL_SSL listener with kafka.tls.enabled: true, or set kafka.sasl.allow_plaintext: true for a SASL_PLAINTEXT listener on a network you trust",
	"aggregator-key-without-cert.bad.yaml":             "elasticsearch.tls.cert_file: cert_file and key_file go together: set both for a client certificate, or neither",
	"aggregator-max-fields-below-1.bad.yaml":           "parsers.max_fields: must be between 1 and 1000 (well below the index's limit of 2000 fields, which all services and tenants share), got -1",
	"aggregator-max-fields-near-the-limit.bad.yaml":    "parsers.max_fields: must be between 1 and 1000 (well below the index's limit of 2000 fields, which all services and tenants share), got 1990",
	"aggregator-missing-ca-file.bad.yaml":              "elasticsearch.tls.ca_file: reading CA file: open ${DIR}/nope.crt: no such file or directory",
	"aggregator-negative-accept-time.bad.yaml":         "elasticsearch.accept_time.past: must be a positive duration such as 720h (30 days), got -1h0m0s",
	"aggregator-password-over-http.bad.yaml":           "elasticsearch.addresses[0]: \"http://127.0.0.1:9200\" is plain HTTP, which would send the credentials unencrypted; write https:// (with elasticsearch.tls.ca_file for a private CA), or set elasticsearch.allow_plaintext: true on a network you trust",
	"aggregator-password-without-username.bad.yaml": `elasticsearch.username: is required with a password
elasticsearch.addresses[0]: "http://127.0.0.1:9200" is plain HTTP, which would send the credentials unencrypted; write https:// (with elasticsearch.tls.ca_file for a private CA), or set elasticsearch.allow_plaintext: true on a network you trust`,
	"aggregator-route-ids-do-not-compile.bad.yaml":   "parsers.routes[0]: ids: error parsing regexp: missing closing ): `(`; e.g. {prefix: /api/v1/orders, templates: [/api/v1/orders/{id}/lines/{line}]}",
	"aggregator-route-prefix-without-slash.bad.yaml": "parsers.routes[1]: prefix \"api/v1/orders\" must start with /; e.g. {prefix: /api/v1/orders, templates: [/api/v1/orders/{id}/lines/{line}]}",
	"aggregator-stall-after-too-short.bad.yaml":      "http.stall_after: must be at least 1s (e.g. 60s), got 10ms",
	"aggregator-tls-with-an-http-address.bad.yaml":   "elasticsearch.addresses[1]: \"http://u:xxxxx@es-1:9200\" is plain HTTP while elasticsearch.tls is set; write https://",
	"aggregator-unknown-tls-key.bad.yaml":            "kafka.tls.ca: unknown key; check its spelling and the configuration reference in docs/configuration.md",
	"aggregator-username-without-password.bad.yaml":  "elasticsearch.password: is required with a username; set password (e.g. \"${ELASTICSEARCH_PASSWORD}\") or password_file",
	"aggregator-memory-misfit.bad.yaml":              "memory_limit: 128MiB does not fit (elasticsearch.workers (32) + 1) × elasticsearch.bulk_bytes (8MiB): 305 MiB of work in flight, 56 MiB available after the GeoIP databases and the collector's headroom; raise memory_limit to 1200MiB, or lower those keys, or remove them to have them derived from memory_limit",
	"run-aggregator-key.bad.yaml":                    "elasticsearch.action: \"upsert\" must be index or create",
	"run-file-without-path.bad.yaml":                 "output.file.path: is required: the file documents are appended to, e.g. /var/lib/sluice/documents.ndjson",
	"run-kafka-section.bad.yaml":                     "kafka: sluice run has no Kafka: remove this section (lines go through an in-process queue; see queue.max_bytes)",
	"run-missing-registry.bad.yaml":                  "registry: is required: the directory where file offsets are kept, e.g. /var/lib/sluice",
	"run-memory-under-queue.bad.yaml":                "memory_limit: 32MiB leaves nothing for the processing after twice queue.max_bytes and max_in_flight_bytes (40MiB); raise it to at least 232MiB or remove it",
	"run-memory-too-small-for-workers.bad.yaml":      "memory_limit: 216MiB does not fit (elasticsearch.workers (32) + 1) × elasticsearch.bulk_bytes (8MiB): 338 MiB of work in flight, 100 MiB available after the GeoIP databases and the collector's headroom; raise memory_limit to 1200MiB, or lower those keys, or remove them to have them derived from memory_limit",
	"run-negative-batch.bad.yaml":                    "queue.batch: must be at least 1, got -1",
	"run-no-output.bad.yaml":                         "output: is required: set output.file.path, output.stdout: {} or elasticsearch.addresses",
	"run-queue-too-small.bad.yaml":                   "queue.max_bytes: 1000 cannot hold one line of max_line_bytes plus 64 KiB of headers; raise it or lower max_line_bytes",
	"run-shipper-key.bad.yaml":                       "max_open_files: must be at least 1, got -1",
	"run-two-outputs.bad.yaml":                       "output: choose one of [file stdout], not several",
	"run-unknown-key.bad.yaml":                       "output.stderr: unknown key; check its spelling and the configuration reference in docs/configuration.md",
	"shipper-broker-without-port.bad.yaml":           "kafka.brokers[0]: \"kafka\" has no port; write host:port, e.g. kafka:9092",
	"shipper-compression.bad.yaml":                   "kafka.compression: \"brotli\" is not a codec; use zstd, lz4, snappy, gzip or none",
	"shipper-every-error.bad.yaml": `registry: is required: the directory where file offsets are kept, e.g. /var/lib/sluice
inputs[0].type: "servise" is not a document type Sluice parses; did you mean service? (types other than service, nginx, container are indexed as raw text)
inputs[0].paths[0]: "var/log/app.log" must be an absolute path glob such as /var/log/app/*.log
kafka.brokers[0]: "kafka" has no port; write host:port, e.g. kafka:9092
kafka.compression: "brotli" is not a codec; use zstd, lz4, snappy, gzip or none
kafka.producers: must be between 1 and 64, got 100
max_open_files: must be at least 1, got -1
scan_interval: must be a positive duration such as 1s`,
	"shipper-kubernetes.bad.yaml": `kubernetes.labels[0]: "app.kubernetes.io/[" is not a valid glob; write a label key such as app.kubernetes.io/name, or a glob such as app.kubernetes.io/*
kubernetes.environments[0].environment: is required: the environment of the namespaces matching "*-prod", e.g. production
kubernetes.delete_grace: must not be negative; a deleted pod's last lines are read after it is gone, e.g. 5m`,
	"shipper-multiline-and-filters.bad.yaml": `inputs[0].multiline.pattern: is set with preset "java"; use one of them
inputs[0].multiline.max_lines: must be at least 2, got 1
inputs[0].include_lines[0]: "(" is not a regular expression (Go RE2 syntax): error parsing regexp: missing closing ): ` + "`(`" + `
inputs[0].exclude_lines[0]: is empty, which matches every line; remove it
inputs[1].multiline.match: "around" must be after (matching lines join the line before them) or before (they join the line after them)
inputs[1].multiline.max_bytes: must be between 1 and max_line_bytes (1048576), got 4194304: an event is one Kafka record`,
	"shipper-follow-without-roots.bad.yaml": "inputs[0].symlinks.roots: is required with symlinks.follow: list the directories links may point into, e.g. /var/log/pods",
	"shipper-partitioning.bad.yaml":         "kafka.partitioning: \"random\" is not a partitioning; use spread (batches over every partition) or file (a file's lines in one partition, in order)",
	"shipper-partitions.bad.yaml":           "kafka.partitions: must be at least 1, got -1",
	"shipper-producers.bad.yaml":            "kafka.producers: must be between 1 and 64, got 100",
	"shipper-relative-root.bad.yaml":        "inputs[0].symlinks.roots[0]: \"pods\" must be an absolute directory other than /, without glob characters, e.g. /var/log/pods",
	"shipper-root-slash.bad.yaml":           "inputs[0].symlinks.roots[0]: \"/\" must be an absolute directory other than /, without glob characters, e.g. /var/log/pods",
	"shipper-roots-without-follow.bad.yaml": "inputs[0].symlinks.follow: is false, so symlinks.roots is unused: set follow: true to follow links into them, or remove roots",
}

func TestBadConfigs(t *testing.T) {
	env := configEnv(t)
	files, _ := filepath.Glob(filepath.Join(configDir, "*.bad.yaml"))
	var names []string
	for _, path := range files {
		name := filepath.Base(path)
		names = append(names, name)
		t.Run(name, func(t *testing.T) {
			want, ok := badConfigs[name]
			if !ok {
				t.Fatalf("no expected message for %s in badConfigs", name)
			}
			for k, v := range env {
				want = strings.ReplaceAll(want, "${"+k+"}", v)
			}
			_, err := loadConfigFile(t, path)
			if err == nil {
				t.Fatalf("loaded; want %s", want)
			}
			if err.Error() != want {
				t.Fatalf("error\n%s\nwant\n%s", err, want)
			}
			if strings.Contains(err.Error(), "pw-inline") || strings.Contains(err.Error(), "pw-from-file") {
				t.Fatalf("the error prints a secret: %v", err)
			}
			var joined interface{ Unwrap() []error }
			if strings.Contains(want, "\n") && !errors.As(err, &joined) {
				t.Fatalf("%T: not every error joined", err)
			}
		})
	}
	sort.Strings(names)
	for name := range badConfigs {
		if _, found := sort.Find(len(names), func(i int) int { return strings.Compare(name, names[i]) }); !found {
			t.Errorf("badConfigs has %s, which is not in %s", name, configDir)
		}
	}
}
