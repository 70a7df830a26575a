package runner

import (
	"testing"

	"github.com/sluicelog/sluice/internal/config"
)

func decode(t *testing.T, yaml string) (Config, error) {
	t.Helper()
	var c Config
	if err := config.Decode([]byte(yaml), &c, func(string) (string, bool) { return "", false }); err != nil {
		return c, err
	}
	c.SetDefaults()
	return c, c.Validate()
}

func TestLoadTestdataConfig(t *testing.T) {
	var c Config
	if err := config.Load("testdata/config.yaml", &c); err != nil {
		t.Fatal(err)
	}
	c.SetDefaults()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	out, _ := c.OutputKind()
	checks := []struct {
		name      string
		got, want any
	}{
		{"node", c.Node, "box-1"},
		{"output", out, OutputFile},
		{"output.file.path", c.Output.File.Path, "/var/lib/sluice/documents.ndjson"},
		{"queue.max_bytes", c.Queue.MaxBytes, int64(8 << 20)},
		{"queue.batch", c.Queue.Batch, 1000},
		{"dead_letter_file", c.DeadLetterFile, "/var/lib/sluice/rejected.ndjson"},
		{"elasticsearch.index", c.Elasticsearch.Index, "logs-{type}-{service}"},
		{"elasticsearch.workers (default)", c.Elasticsearch.Workers, 4},
		{"elasticsearch.replicas (default: one node)", *c.Elasticsearch.Replicas, 0},
		{"http.listen", c.HTTP.Listen, "127.0.0.1:9602"},
		{"max_line_bytes (shipper default)", c.MaxLineBytes, 1 << 20},
	}
	for _, ch := range checks {
		if ch.got != ch.want {
			t.Errorf("%s = %v, want %v", ch.name, ch.got, ch.want)
		}
	}
}

const base = `
registry: /var/lib/sluice
inputs: [{type: service, paths: ["/var/log/*.log"]}]
`

func TestOutputChoice(t *testing.T) {
	tests := []struct {
		name, extra, want string
	}{
		{"file", "output: {file: {path: /tmp/docs.ndjson}}", OutputFile},
		{"stdout", "output: {stdout: {}}", OutputStdout},
		{"elasticsearch explicitly", "output: {elasticsearch: {}}", OutputElasticsearch},
		{"elasticsearch by its addresses", "elasticsearch: {addresses: [\"http://es:9200\"]}", OutputElasticsearch},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := decode(t, base+tt.extra)
			if err != nil {
				t.Fatal(err)
			}
			if got, _ := c.OutputKind(); got != tt.want {
				t.Fatalf("output %q, want %q", got, tt.want)
			}
		})
	}
}

func TestDefaults(t *testing.T) {
	c, err := decode(t, base+"output: {stdout: {}}")
	if err != nil {
		t.Fatal(err)
	}
	if c.DeadLetterFile != "/var/lib/sluice/dead-letter.ndjson" {
		t.Errorf("dead_letter_file = %q, want it in the registry directory", c.DeadLetterFile)
	}
	if c.Queue.MaxBytes != 16<<20 || c.Queue.Batch != 5000 {
		t.Errorf("queue = %+v, want 16 MiB and 5000", c.Queue)
	}
	// memory_limit: the aggregator's, plus the shipper's side twice; the
	// stages divide what is left as the aggregator would.
	if c.MemoryLimit != 232<<20 || c.GoMemoryLimit() != (232-16)<<20 {
		t.Errorf("memory_limit %s, Go limit %d", c.MemoryLimit, c.GoMemoryLimit())
	}
	if agg := c.aggregatorConfig(); agg.MemoryLimit != 192<<20 || c.Elasticsearch.BulkBytes != 4480<<10 /* (192 MiB - 16 MiB) / 2 / 4 / (workers+1), in 64 KiB */ {
		t.Errorf("stages' memory_limit %s, bulk_bytes %d", agg.MemoryLimit, c.Elasticsearch.BulkBytes)
	}
	again := c
	again.SetDefaults()
	if err := again.Validate(); err != nil || again.MemoryLimit != c.MemoryLimit || again.Elasticsearch.BulkBytes != c.Elasticsearch.BulkBytes {
		t.Errorf("defaults applied twice: %v", err)
	}
}
