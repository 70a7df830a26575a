package aggregator

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap/zaptest"

	"github.com/sluicelog/sluice/aggregator/deliver"
	"github.com/sluicelog/sluice/aggregator/internal/records"
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
		{"retention without template", func(e *ElasticsearchConfig) {
			f := false
			e.DataStream, e.Action, e.Template = true, "", &f
			e.Retention = map[string]string{"default": "30d"}
		}, "elasticsearch.template: false"},
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

// esLayout is a test's own names in Elasticsearch: a prefix for its
// streams or indices and its template, removed when the test ends. The
// name is fixed, not random: Elasticsearch's minimal distribution, which
// the local stack runs, creates data streams but has no API to delete them,
// so each run reuses the last one's instead of leaving new ones behind.
func esLayout(t *testing.T, stack *testenv.Stack, prefix string) {
	t.Cleanup(func() {
		stack.ES(t, "DELETE", "/_data_stream/"+prefix+"-*", nil, nil)
		stack.ES(t, "DELETE", "/"+prefix+"-*?ignore_unavailable=true&allow_no_indices=true&expand_wildcards=all", nil, nil)
		stack.ES(t, "DELETE", "/_index_template/"+prefix+"*", nil, nil)
		stack.ES(t, "DELETE", "/_ilm/policy/"+prefix+"-default", nil, nil)
		stack.ES(t, "DELETE", "/_ilm/policy/"+prefix+"-nginx", nil, nil)
	})
}

// processInto runs records through the stages, without Kafka, into
// Elasticsearch.
func processInto(t *testing.T, cfg Config, times int, kinds ...string) error {
	t.Helper()
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	a, err := newStages(cfg, prometheus.NewRegistry(), zaptest.NewLogger(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := a.installTemplate(ctx); err != nil {
		return err
	}
	for range times {
		for _, kind := range kinds {
			if err := a.loop.Process(ctx, records.Of(kind, 100)); err != nil {
				t.Fatal(err)
			}
		}
	}
	return nil
}

// streamLifecycle returns the lifecycle Elasticsearch holds for a data
// stream, from the cluster state, which every distribution serves.
func streamLifecycle(t *testing.T, stack *testenv.Stack, stream string) map[string]any {
	t.Helper()
	var state struct {
		Metadata struct {
			DataStream struct {
				DataStream map[string]struct {
					Lifecycle map[string]any `json:"lifecycle"`
				} `json:"data_stream"`
			} `json:"data_stream"`
		} `json:"metadata"`
	}
	stack.ES(t, "GET", "/_cluster/state/metadata?filter_path=metadata.data_stream.data_stream", nil, &state)
	ds, ok := state.Metadata.DataStream.DataStream[stream]
	if !ok {
		t.Fatalf("no data stream %s", stream)
	}
	return ds.Lifecycle
}

// TestDataStreamRetention: with data_stream and retention, documents go to
// data streams named by Elastic's convention, with data_stream.* set; each
// stream has the lifecycle of its rule attached; a re-delivery adds
// nothing; a rule taken out loses its template.
func TestDataStreamRetention(t *testing.T) {
	stack := testenv.Start(t)
	prefix := "sluicetestretention"
	esLayout(t, stack, prefix)
	var cfg Config
	cfg.Elasticsearch.Addresses = []string{stack.Elasticsearch}
	cfg.Elasticsearch.DataStream = true
	cfg.Elasticsearch.Index = prefix + "-{event.dataset}-{environment}"
	cfg.Elasticsearch.TemplateName = prefix
	zero := 0
	cfg.Elasticsearch.Replicas = &zero
	cfg.Elasticsearch.Retention = map[string]string{"default": "30d", "nginx": "1d"}
	if err := processInto(t, cfg, 2, "nginx", "service"); err != nil { // twice: re-delivered
		t.Fatal(err)
	}

	nginx, service := prefix+"-nginx.access-prod", prefix+"-service-prod"
	if n := stack.Count(t, nginx); n != 100 {
		t.Errorf("%s holds %d documents, want 100 (each once)", nginx, n)
	}
	if n := stack.Count(t, service); n != 100 {
		t.Errorf("%s holds %d documents, want 100", service, n)
	}
	for stream, want := range map[string]string{nginx: "1d", service: "30d"} {
		if l := streamLifecycle(t, stack, stream); l["enabled"] != true || l["data_retention"] != want {
			t.Errorf("%s: lifecycle %v, want enabled with data_retention %s", stream, l, want)
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
	if len(hits) != 1 || hits[0]["data_stream.type"] != prefix || hits[0]["data_stream.dataset"] != "nginx.access" ||
		hits[0]["data_stream.namespace"] != "prod" || hits[0]["event.outcome"] == nil {
		t.Errorf("document: %v", hits)
	}

	// The nginx rule taken out: its template goes, and new streams get
	// the default's lifecycle.
	cfg.Elasticsearch.Retention = map[string]string{"default": "7d"}
	if err := processInto(t, cfg, 1, "service"); err != nil {
		t.Fatal(err)
	}
	if code := stack.ES(t, "GET", "/_index_template/"+prefix+"-retention-nginx", nil, nil); code != 404 {
		t.Errorf("the removed rule's template: GET %d, want 404", code)
	}
	var tpl struct {
		IndexTemplates []struct {
			IndexTemplate struct {
				Template struct {
					Lifecycle map[string]any `json:"lifecycle"`
				} `json:"template"`
			} `json:"index_template"`
		} `json:"index_templates"`
	}
	stack.ES(t, "GET", "/_index_template/"+prefix, nil, &tpl)
	if len(tpl.IndexTemplates) != 1 || tpl.IndexTemplates[0].IndexTemplate.Template.Lifecycle["data_retention"] != "7d" {
		t.Errorf("template: %+v, want the lifecycle keeping 7d", tpl)
	}
	if code := stack.ES(t, "GET", "/_data_stream/"+service, nil, nil); code == 200 {
		// A distribution with the data streams API: existing streams
		// follow the new rules at once.
		if l := streamLifecycle(t, stack, nginx); l["data_retention"] != "7d" {
			t.Errorf("%s after the change: lifecycle %v, want 7d", nginx, l)
		}
	}
}

// TestDatedIndexRetention: with a date in the index name, retention is an
// ILM policy that deletes each index once that old, named in the indices
// the template creates. Where Elasticsearch has no ILM (the local stack's
// minimal distribution) the template is refused with the reason, rather
// than indices kept for ever in silence.
func TestDatedIndexRetention(t *testing.T) {
	stack := testenv.Start(t)
	prefix := strings.ReplaceAll(testenv.Name(t, "ret"), "-", "")
	esLayout(t, stack, prefix)
	var cfg Config
	cfg.Elasticsearch.Addresses = []string{stack.Elasticsearch}
	cfg.Elasticsearch.Index = prefix + "-{type}-{environment}-{+2006.01.02}"
	cfg.Elasticsearch.TemplateName = prefix
	zero := 0
	cfg.Elasticsearch.Replicas = &zero
	cfg.Elasticsearch.Retention = map[string]string{"default": "30d", "nginx": "1d"}
	cfg.SetDefaults()
	_, err := deliver.InstallTemplate(context.Background(), cfg.Elasticsearch)
	if code := stack.ES(t, "GET", "/_ilm/policy", nil, nil); code != 200 {
		if err == nil || !strings.Contains(err.Error(), "needs index lifecycle management (ILM)") {
			t.Fatalf("without ILM: %v, want an error saying retention needs ILM", err)
		}
		t.Skipf("this Elasticsearch has no ILM (%v); the policy's shape is checked by TestDatedIndexRetentionRequests", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	if err := processInto(t, cfg, 1, "nginx", "service"); err != nil {
		t.Fatal(err)
	}
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
}

// TestDatedIndexRetentionRequests checks the ILM policies and templates
// installTemplate sends for dated indices.
func TestDatedIndexRetentionRequests(t *testing.T) {
	got := map[string]map[string]any{}
	es := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Elastic-Product", "Elasticsearch")
		w.Header().Set("Content-Type", "application/json")
		if r.Method == "PUT" {
			var body map[string]any
			_ = json.NewDecoder(r.Body).Decode(&body)
			got[r.URL.Path] = body
			fmt.Fprint(w, `{"acknowledged":true}`)
			return
		}
		http.NotFound(w, r)
	}))
	defer es.Close()
	var cfg Config
	cfg.Elasticsearch.Addresses = []string{es.URL}
	cfg.Elasticsearch.Index = "logs-{type}-{environment}-{+2006.01.02}"
	cfg.Elasticsearch.Retention = map[string]string{"default": "30d", "nginx/prod": "7d"}
	cfg.SetDefaults()
	if _, err := deliver.InstallTemplate(context.Background(), cfg.Elasticsearch); err != nil {
		t.Fatal(err)
	}
	policy := func(name string) string {
		b, _ := json.Marshal(got["/_ilm/policy/"+name]["policy"].(map[string]any)["phases"])
		return string(b)
	}
	if p := policy("sluice-default"); p != `{"delete":{"actions":{"delete":{}},"min_age":"30d"}}` {
		t.Errorf("default policy phases %s", p)
	}
	if p := policy("sluice-nginx-prod"); p != `{"delete":{"actions":{"delete":{}},"min_age":"7d"}}` {
		t.Errorf("nginx/prod policy phases %s", p)
	}
	for path, want := range map[string][3]any{
		"/_index_template/sluice":                      {"logs-*-*-*", float64(200), "sluice-default"},
		"/_index_template/sluice-retention-nginx-prod": {"logs-nginx-prod-*", float64(203), "sluice-nginx-prod"},
	} {
		tpl := got[path]
		if tpl == nil {
			t.Fatalf("no %s in %v", path, got)
		}
		settings := tpl["template"].(map[string]any)["settings"].(map[string]any)
		if g := [3]any{tpl["index_patterns"].([]any)[0], tpl["priority"], settings["index.lifecycle.name"]}; g != want {
			t.Errorf("%s: %v, want %v", path, g, want)
		}
	}
}
