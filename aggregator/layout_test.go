package aggregator

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap/zaptest"

	"github.com/sluicelog/sluice/internal/template"
	"github.com/sluicelog/sluice/internal/testenv"
)

// TestLayoutConfig checks the defaults and refusals of the layout keys.
func TestLayoutConfig(t *testing.T) {
	var c Config
	c.SetDefaults()
	es := c.Elasticsearch
	if es.Shards != 1 || *es.Replicas != 1 || es.Codec != "default" || es.IndexMode != "standard" || es.DataStream ||
		es.Index != DefaultIndex || es.Action != "index" {
		t.Fatalf("defaults: %+v", es)
	}
	c = Config{}
	c.Elasticsearch.DataStream = true
	c.SetDefaults()
	if c.Elasticsearch.Index != DefaultDataStream || c.Elasticsearch.Action != "create" {
		t.Fatalf("data_stream defaults: index %q action %q", c.Elasticsearch.Index, c.Elasticsearch.Action)
	}
	zero := 0
	for _, tc := range []struct {
		name string
		set  func(*ElasticsearchConfig)
		want string // "" for valid
	}{
		{"zero replicas", func(e *ElasticsearchConfig) { e.Replicas = &zero }, ""},
		{"negative replicas", func(e *ElasticsearchConfig) { n := -1; e.Replicas = &n }, "elasticsearch.replicas"},
		{"no shards", func(e *ElasticsearchConfig) { e.Shards = -1 }, "elasticsearch.shards"},
		{"codec", func(e *ElasticsearchConfig) { e.Codec = "zstd" }, "elasticsearch.codec"},
		{"best_compression", func(e *ElasticsearchConfig) { e.Codec = "best_compression" }, ""},
		{"logsdb", func(e *ElasticsearchConfig) { e.IndexMode = "logsdb" }, ""},
		{"mode", func(e *ElasticsearchConfig) { e.IndexMode = "time_series" }, "elasticsearch.index_mode"},
		{"retention without date", func(e *ElasticsearchConfig) { e.Retention = map[string]string{"default": "30d"} }, "elasticsearch.retention: needs data streams or dated indices"},
		{"retention dated", func(e *ElasticsearchConfig) {
			e.Index = "logs-{type}-{environment}-{+2006.01.02}"
			e.Retention = map[string]string{"default": "30d", "nginx": "14d", "*/dev": "3d", "nginx/prod": "7d"}
		}, ""},
		{"retention data stream", func(e *ElasticsearchConfig) {
			e.DataStream, e.Index, e.Action = true, "", ""
			e.Retention = map[string]string{"default": "30d", "nginx": "14d"}
		}, ""},
		{"data stream index action", func(e *ElasticsearchConfig) { e.DataStream, e.Action = true, "index" }, "elasticsearch.action: must be create"},
		{"bad duration", func(e *ElasticsearchConfig) {
			e.DataStream, e.Action = true, ""
			e.Retention = map[string]string{"nginx": "2 weeks"}
		}, "elasticsearch.retention.nginx"},
		{"no type field", func(e *ElasticsearchConfig) {
			e.DataStream, e.Action, e.Index = true, "", "logs-{service}-{environment}"
			e.Retention = map[string]string{"nginx": "1d"}
		}, "has no {type}"},
		{"no environment field", func(e *ElasticsearchConfig) {
			e.DataStream, e.Action, e.Index = true, "", "logs-{type}-x"
			e.Retention = map[string]string{"*/prod": "1d"}
		}, "has no {environment}"},
		{"bad key", func(e *ElasticsearchConfig) {
			e.DataStream, e.Action = true, ""
			e.Retention = map[string]string{"Nginx/": "1d"}
		}, "keys are default"},
	} {
		var c Config
		tc.set(&c.Elasticsearch)
		c.SetDefaults()
		err := c.Validate()
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
	}
}

// TestRetentionRules checks the patterns and order of the rule templates.
func TestRetentionRules(t *testing.T) {
	l := Layout{DataStream: true, Retention: map[string]string{"nginx/prod": "7d", "default": "30d", "*/dev": "3d", "nginx": "14d"}}
	idx, _ := template.Parse(DefaultDataStream)
	rules, err := l.retentionRules("elasticsearch", idx)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range rules {
		got = append(got, fmt.Sprintf("%s %s %d %s", r.name, r.pattern, r.rank, r.keep))
	}
	want := []string{"default logs-*-* 0 30d", "nginx logs-nginx.access-* 1 14d", "all-dev logs-*-dev 2 3d", "nginx-prod logs-nginx.access-prod 3 7d"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("rules:\n got %q\nwant %q", got, want)
	}
}

// TestLayoutTemplateSettings checks what the layout puts in the template.
func TestLayoutTemplateSettings(t *testing.T) {
	zero := 0
	l := Layout{Shards: 3, Replicas: &zero, Codec: "best_compression", IndexMode: "logsdb"}
	tpl := layoutTemplate("logs-*", l, 201, "7d", "sluice-default")
	settings := tpl["template"].(map[string]any)["settings"].(map[string]any)
	for k, want := range map[string]any{"index.number_of_shards": 3, "index.number_of_replicas": 0, "index.codec": "best_compression",
		"index.mode": "logsdb", "index.lifecycle.name": "sluice-default"} {
		if settings[k] != want {
			t.Errorf("%s = %v, want %v", k, settings[k], want)
		}
	}
	if tpl["priority"] != 201 || tpl["data_stream"] != nil {
		t.Errorf("priority %v, data_stream %v", tpl["priority"], tpl["data_stream"])
	}
	l.DataStream = true
	tpl = layoutTemplate("logs-*", l, 200, "7d", "")
	body := tpl["template"].(map[string]any)
	if tpl["data_stream"] == nil || !reflect.DeepEqual(body["lifecycle"], map[string]any{"data_retention": "7d"}) {
		t.Errorf("data stream template: data_stream %v, lifecycle %v", tpl["data_stream"], body["lifecycle"])
	}
	if _, ok := body["settings"].(map[string]any)["index.lifecycle.name"]; ok {
		t.Error("a data stream template names an ILM policy: it would take over from the data stream lifecycle")
	}
}

// TestDataStreamField checks data_stream.* from stream names.
func TestDataStreamFields(t *testing.T) {
	for name, want := range map[string][3]string{
		"logs-nginx.access-prod": {"logs", "nginx.access", "prod"},
		"logs-my-app-prod":       {"logs", "my-app", "prod"},
	} {
		typ, ds, ns, ok := dataStreamFields(name)
		if !ok || [3]string{typ, ds, ns} != want {
			t.Errorf("%s: %q %q %q %v, want %q", name, typ, ds, ns, ok, want)
		}
	}
	for _, name := range []string{"logs", "logs-prod", "-a-b", "logs--", "a-b-"} {
		if _, _, _, ok := dataStreamFields(name); ok {
			t.Errorf("%s: a data stream name", name)
		}
	}
}

// esLayout is a test's own names in Elasticsearch: a prefix for its
// streams or indices and its template, removed when the test ends.
func esLayout(t *testing.T, stack *testenv.Stack) string {
	prefix := strings.ReplaceAll(testenv.Name(t, "ret"), "-", "")
	t.Cleanup(func() {
		stack.ES(t, "DELETE", "/_data_stream/"+prefix+"-*", nil, nil)
		stack.ES(t, "DELETE", "/"+prefix+"-*?ignore_unavailable=true&allow_no_indices=true&expand_wildcards=all", nil, nil)
		stack.ES(t, "DELETE", "/_index_template/"+prefix+"*", nil, nil)
		stack.ES(t, "DELETE", "/_ilm/policy/"+prefix+"-default", nil, nil)
		stack.ES(t, "DELETE", "/_ilm/policy/"+prefix+"-nginx", nil, nil)
	})
	return prefix
}

// processInto runs records through a Processor (sluice run's path, the
// same documents and template as sluice aggregate) into Elasticsearch.
func processInto(t *testing.T, cfg Config, times int, kinds ...string) {
	t.Helper()
	p, err := NewProcessor(cfg, ProcessorOptions{DeadLetters: &DeadLetterFile{}}, prometheus.NewRegistry(), zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := p.Prepare(ctx); err != nil {
		t.Fatal(err)
	}
	for range times {
		for _, kind := range kinds {
			if err := p.Process(ctx, benchRecords(kind, 100)); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// TestDataStreamRetention: with data_stream and retention, documents go to
// data streams named by Elastic's convention, with data_stream.* set; each
// stream has the lifecycle of its rule; a re-delivery adds nothing; and a
// changed rule reaches the streams that exist at the next start.
func TestDataStreamRetention(t *testing.T) {
	stack := testenv.Start(t)
	prefix := esLayout(t, stack)
	var cfg Config
	cfg.Elasticsearch.Addresses = []string{stack.Elasticsearch}
	cfg.Elasticsearch.DataStream = true
	cfg.Elasticsearch.Index = prefix + "-{event.dataset}-{environment}"
	cfg.Elasticsearch.TemplateName = prefix
	zero := 0
	cfg.Elasticsearch.Replicas = &zero
	cfg.Elasticsearch.Retention = map[string]string{"default": "30d", "nginx": "1d"}
	processInto(t, cfg, 2, "nginx", "service") // twice: re-delivered

	nginx, service := prefix+"-nginx.access-prod", prefix+"-service-prod"
	if n := stack.Count(t, nginx); n != 100 {
		t.Errorf("%s holds %d documents, want 100 (each once)", nginx, n)
	}
	if n := stack.Count(t, service); n != 100 {
		t.Errorf("%s holds %d documents, want 100", service, n)
	}
	checkLifecycle := func(stream, want string) {
		t.Helper()
		var got struct {
			DataStreams []struct {
				Name      string `json:"name"`
				Lifecycle struct {
					Enabled       bool   `json:"enabled"`
					DataRetention string `json:"data_retention"`
				} `json:"lifecycle"`
			} `json:"data_streams"`
		}
		if code := stack.ES(t, "GET", "/_data_stream/"+stream+"/_lifecycle", nil, &got); code != 200 || len(got.DataStreams) != 1 {
			t.Fatalf("GET _data_stream/%s/_lifecycle: %d %+v", stream, code, got)
		}
		if l := got.DataStreams[0].Lifecycle; !l.Enabled || l.DataRetention != want {
			t.Errorf("%s: lifecycle %+v, want enabled with data_retention %s", stream, l, want)
		}
	}
	checkLifecycle(nginx, "1d")
	checkLifecycle(service, "30d")
	// Managed by the lifecycle, not ILM, on one shard without replicas.
	var explain struct {
		Indices map[string]struct {
			ManagedByLifecycle bool `json:"managed_by_lifecycle"`
		} `json:"indices"`
	}
	stack.ES(t, "GET", "/"+nginx+"/_lifecycle/explain", nil, &explain)
	for name, e := range explain.Indices {
		if !e.ManagedByLifecycle {
			t.Errorf("backing index %s is not managed by the data stream lifecycle", name)
		}
	}
	var settings map[string]struct {
		Settings map[string]string `json:"settings"`
	}
	stack.ES(t, "GET", "/"+nginx+"/_settings/index.number_of_*?flat_settings=true", nil, &settings)
	for name, s := range settings {
		if s.Settings["index.number_of_replicas"] != "0" || s.Settings["index.number_of_shards"] != "1" {
			t.Errorf("%s: %v, want 1 shard and 0 replicas", name, s.Settings)
		}
	}
	hits := stack.Search(t, nginx, `{"size":1}`)
	if len(hits) != 1 || hits[0]["data_stream.type"] != "logs" || hits[0]["data_stream.dataset"] != "nginx.access" ||
		hits[0]["data_stream.namespace"] != "prod" || hits[0]["event.outcome"] == nil {
		t.Errorf("document: %v", hits)
	}

	// Rules changed: the existing streams follow at the next start, and
	// the nginx template is gone.
	cfg.Elasticsearch.Retention = map[string]string{"default": "7d"}
	processInto(t, cfg, 1, "service")
	checkLifecycle(nginx, "7d")
	checkLifecycle(service, "7d")
	if code := stack.ES(t, "GET", "/_index_template/"+prefix+"-retention-nginx", nil, nil); code != 404 {
		t.Errorf("the removed rule's template: GET %d, want 404", code)
	}
}

// TestDatedIndexRetention: with a date in the index name, retention is an
// ILM policy that deletes each index once that old, named in the indices
// the template creates.
func TestDatedIndexRetention(t *testing.T) {
	stack := testenv.Start(t)
	prefix := esLayout(t, stack)
	var cfg Config
	cfg.Elasticsearch.Addresses = []string{stack.Elasticsearch}
	cfg.Elasticsearch.Index = prefix + "-{type}-{environment}-{+2006.01.02}"
	cfg.Elasticsearch.TemplateName = prefix
	zero := 0
	cfg.Elasticsearch.Replicas = &zero
	cfg.Elasticsearch.Retention = map[string]string{"default": "30d", "nginx": "1d"}
	processInto(t, cfg, 1, "nginx", "service")

	for index, policy := range map[string]string{prefix + "-nginx-prod-2026.11.25": prefix + "-nginx", prefix + "-service-prod-2026.11.25": prefix + "-default"} {
		var explain struct {
			Indices map[string]struct {
				Managed bool   `json:"managed"`
				Policy  string `json:"policy"`
			} `json:"indices"`
		}
		if code := stack.ES(t, "GET", "/"+index+"/_ilm/explain", nil, &explain); code != 200 {
			t.Fatalf("GET %s/_ilm/explain: %d", index, code)
		}
		if e := explain.Indices[index]; !e.Managed || e.Policy != policy {
			t.Errorf("%s: ILM %+v, want managed by %s", index, e, policy)
		}
	}
	var policies map[string]struct {
		Policy struct {
			Phases map[string]struct {
				MinAge  string         `json:"min_age"`
				Actions map[string]any `json:"actions"`
			} `json:"phases"`
		} `json:"policy"`
	}
	stack.ES(t, "GET", "/_ilm/policy/"+prefix+"-nginx", nil, &policies)
	del := policies[prefix+"-nginx"].Policy.Phases["delete"]
	if _, ok := del.Actions["delete"]; !ok || del.MinAge != "1d" {
		b, _ := json.Marshal(policies)
		t.Errorf("policy: %s, want a delete at 1d", b)
	}
}
