package deliver

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"testing"

	"go.uber.org/zap"

	"github.com/sluicelog/sluice/internal/template"
)

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

// TestUpdateLifecycles: the data streams that exist get the retention of
// their template when it changes; streams of other templates are left
// alone, and a node without the data streams API is no error.
func TestUpdateLifecycles(t *testing.T) {
	var puts []string
	api := true
	es := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Elastic-Product", "Elasticsearch")
		w.Header().Set("Content-Type", "application/json")
		if !api {
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprintf(w, `{"error":"no handler found for uri [%s] and method [%s]"}`, r.URL.Path, r.Method)
			return
		}
		switch {
		case r.Method == "GET" && r.URL.Path == "/_data_stream/logs-*-*":
			fmt.Fprint(w, `{"data_streams":[
				{"name":"logs-nginx.access-prod","template":"sluice-retention-nginx","lifecycle":{"enabled":true,"data_retention":"30d"}},
				{"name":"logs-service-prod","template":"sluice","lifecycle":{"enabled":true,"data_retention":"30d"}},
				{"name":"logs-system.syslog-default","template":"logs","lifecycle":{"enabled":true}}]}`)
		case r.Method == "PUT":
			body, _ := io.ReadAll(r.Body)
			puts = append(puts, r.URL.Path+" "+string(body))
			fmt.Fprint(w, `{"acknowledged":true}`)
		default:
			http.NotFound(w, r)
		}
	}))
	defer es.Close()
	client, err := NewESClient(ElasticsearchConfig{Addresses: []string{es.URL}}, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	installed := []InstalledTemplate{{Name: "sluice", Pattern: "logs-*-*", Retention: "30d"}, {Name: "sluice-retention-nginx", Pattern: "logs-nginx.access-*", Retention: "14d"}}
	if err := updateLifecycles(context.Background(), client, installed); err != nil {
		t.Fatal(err)
	}
	want := []string{`/_data_stream/logs-nginx.access-prod/_lifecycle {"data_retention":"14d"}`}
	if !reflect.DeepEqual(puts, want) {
		t.Errorf("lifecycle updates %q, want %q", puts, want)
	}
	api = false
	if err := updateLifecycles(context.Background(), client, installed); err != nil {
		t.Errorf("without the data streams API: %v", err)
	}
}
