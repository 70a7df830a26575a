package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	kibanaobjects "github.com/sluicelog/sluice/deploy/kibana"
	"github.com/sluicelog/sluice/internal/testenv"
	"github.com/sluicelog/sluice/parser"
)

// kibanaStub stands in for Kibana's import API.
type kibanaStub struct {
	srv    *httptest.Server
	status int
	answer string

	mu       sync.Mutex
	requests int
	method   string
	path     string
	query    string
	auth     string
	xsrf     string
	file     []byte
}

func newKibanaStub(t *testing.T, status int, answer string) *kibanaStub {
	k := &kibanaStub{status: status, answer: answer}
	k.srv = httptest.NewServer(http.HandlerFunc(k.serve))
	t.Cleanup(k.srv.Close)
	return k
}

func (k *kibanaStub) serve(w http.ResponseWriter, r *http.Request) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.requests++
	k.method, k.path, k.query = r.Method, r.URL.Path, r.URL.RawQuery
	k.auth, k.xsrf = r.Header.Get("Authorization"), r.Header.Get("kbn-xsrf")
	if _, params, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err == nil {
		if p, err := multipart.NewReader(r.Body, params["boundary"]).NextPart(); err == nil && p.FormName() == "file" {
			k.file, _ = io.ReadAll(p)
		}
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(k.status)
	_, _ = io.WriteString(w, k.answer)
}

// importAnswer is what Kibana answers to a successful import of the
// objects in sluice.ndjson.
func importAnswer(t *testing.T) string {
	t.Helper()
	var results []map[string]any
	for _, line := range bytes.Split(bytes.TrimSpace(kibanaobjects.SavedObjects), []byte("\n")) {
		var o struct {
			Type, ID   string
			Attributes struct{ Title string }
		}
		if err := json.Unmarshal(line, &o); err != nil {
			t.Fatal(err)
		}
		results = append(results, map[string]any{"type": o.Type, "id": o.ID, "meta": map[string]any{"title": o.Attributes.Title}})
	}
	b, _ := json.Marshal(map[string]any{"success": true, "successCount": len(results), "successResults": results})
	return string(b)
}

// writeSetupConfig writes an aggregator config whose index names and
// template are the test's own.
func writeSetupConfig(t *testing.T, esURL, name, kibana string) string {
	t.Helper()
	cfg := fmt.Sprintf(`elasticsearch:
  addresses: [%q]
  index: %s-{type}-{service}-{environment}
  template_name: %s
%s`, esURL, name, name, kibana)
	p := filepath.Join(t.TempDir(), "aggregator.yaml")
	if err := os.WriteFile(p, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// cleanupTemplate deletes the test's index template and indices at the end.
func cleanupTemplate(t *testing.T, s *testenv.Stack, name string) {
	t.Cleanup(func() {
		s.DeleteIndices(t, name+"-*")
		s.ES(t, http.MethodDelete, "/_index_template/"+name, nil, nil)
	})
}

// mappingType returns the type of the dotted field in an Elasticsearch
// mapping's properties.
func mappingType(props map[string]any, field string) string {
	parts := strings.Split(field, ".")
	for i, p := range parts {
		def, ok := props[p].(map[string]any)
		if !ok {
			return ""
		}
		if i == len(parts)-1 {
			typ, _ := def["type"].(string)
			return typ
		}
		props, _ = def["properties"].(map[string]any)
	}
	return ""
}

// wantMapping is what the template must map, and what an index created
// from it must hold.
var wantMapping = map[string]string{
	"@timestamp":                "date",
	"message":                   "text",
	"source.ip":                 "ip",
	"source.geo.location":       "geo_point",
	"service.name":              "keyword",
	"service.environment":       "keyword",
	"organization.name":         "keyword",
	"log.level":                 "keyword",
	"http.response.status_code": "long",
	"nginx.request_time":        "float",
}

func TestSetupInstallsTemplateAndDashboards(t *testing.T) {
	s := testenv.Start(t)
	name := testenv.Name(t, "setup")
	cleanupTemplate(t, s, name)
	kb := newKibanaStub(t, http.StatusOK, importAnswer(t))
	cfgPath := writeSetupConfig(t, s.Elasticsearch, name,
		fmt.Sprintf("kibana:\n  url: %s\n  username: elastic\n  password: changeme\n  space: ops\n", kb.srv.URL))

	var stdout, stderr bytes.Buffer
	if code := run([]string{"setup", "-c", cfgPath}, &stdout, &stderr); code != 0 {
		t.Fatalf("sluice setup exited %d:\n%s%s", code, stdout.String(), stderr.String())
	}
	out := stdout.String()
	for _, want := range []string{
		fmt.Sprintf("elasticsearch: installed index template %q for indices %s-*-*-*", name, name),
		`kibana: imported index-pattern "logs-*" (id sluice-logs)`,
		`kibana: imported dashboard "Sluice overview" (id sluice-overview)`,
		`kibana: imported map "Client locations" (id sluice-client-locations)`,
		"kibana: dashboard at " + kb.srv.URL + "/s/ops/app/dashboards#/view/sluice-overview",
		`kibana: imported search "Request by id" (id sluice-request-by-id)`,
		"kibana: dashboard at " + kb.srv.URL + "/s/ops/app/dashboards#/view/sluice-api-performance",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}

	// The template in Elasticsearch.
	var got struct {
		IndexTemplates []struct {
			Name          string `json:"name"`
			IndexTemplate struct {
				IndexPatterns []string `json:"index_patterns"`
				Priority      int      `json:"priority"`
				Template      struct {
					Mappings struct {
						Properties map[string]any `json:"properties"`
					} `json:"mappings"`
				} `json:"template"`
			} `json:"index_template"`
		} `json:"index_templates"`
	}
	if code := s.ES(t, http.MethodGet, "/_index_template/"+name, nil, &got); code != http.StatusOK || len(got.IndexTemplates) != 1 {
		t.Fatalf("GET _index_template/%s: status %d, %d templates", name, code, len(got.IndexTemplates))
	}
	tpl := got.IndexTemplates[0].IndexTemplate
	if len(tpl.IndexPatterns) != 1 || tpl.IndexPatterns[0] != name+"-*-*-*" {
		t.Errorf("index_patterns %v, want [%s-*-*-*]", tpl.IndexPatterns, name)
	}
	for field, typ := range wantMapping {
		if got := mappingType(tpl.Template.Mappings.Properties, field); got != typ {
			t.Errorf("template maps %s as %q, want %q", field, got, typ)
		}
	}

	// A document as the aggregator writes it, into a new index the
	// template matches.
	nginx, err := parser.CompileNginx(parser.DefaultNginxFormat)
	if err != nil {
		t.Fatal(err)
	}
	doc := &parser.Doc{}
	line := `81.2.69.142 - - [25/Nov/2026:10:00:00 +0000] "GET /api/v1/orders?id=1 HTTP/1.1" 200 1234 "-" "curl/8.5.0" 0.012 0.010 "-"`
	if err := nginx.Parse([]byte(line), doc); err != nil {
		t.Fatal(err)
	}
	doc.Set("message", line)
	doc.Set("service.name", "edge")
	doc.Set("service.environment", "prod")
	doc.Set("organization.name", "acme")
	doc.Set("log.level", "info")
	doc.Set("source.geo.location", map[string]any{"lat": 51.5142, "lon": -0.0931})
	doc.Set("labels.team", "payments")
	body, _ := json.Marshal(doc)
	index := name + "-nginx-edge-prod"
	if code := s.ES(t, http.MethodPut, "/"+index+"/_doc/1?refresh=true", bytes.NewReader(body), nil); code != http.StatusCreated {
		t.Fatalf("indexing into %s: status %d", index, code)
	}
	var mapping map[string]struct {
		Mappings struct {
			Properties map[string]any `json:"properties"`
		} `json:"mappings"`
	}
	if code := s.ES(t, http.MethodGet, "/"+index+"/_mapping", nil, &mapping); code != http.StatusOK {
		t.Fatalf("GET %s/_mapping: status %d", index, code)
	}
	props := mapping[index].Mappings.Properties
	for field, typ := range wantMapping {
		if got := mappingType(props, field); got != typ {
			t.Errorf("index %s maps %s as %q, want %q (from the template)", index, field, got, typ)
		}
	}
	if got := mappingType(props, "labels.team"); got != "keyword" {
		t.Errorf("a string field outside the template is mapped %q, want keyword (strings_as_keyword)", got)
	}
	// The geo_point took the value: a geo_distance query finds it.
	hits := s.Search(t, index, `{"query":{"geo_distance":{"distance":"10km","source.geo.location":{"lat":51.5,"lon":-0.1}}}}`)
	if len(hits) != 1 {
		t.Errorf("geo_distance search found %d documents, want 1", len(hits))
	}

	// What Kibana received.
	kb.mu.Lock()
	defer kb.mu.Unlock()
	if kb.requests != 1 || kb.method != http.MethodPost || kb.path != "/s/ops/api/saved_objects/_import" || kb.query != "overwrite=true" {
		t.Errorf("Kibana got %d requests, last %s %s?%s; want one POST /s/ops/api/saved_objects/_import?overwrite=true",
			kb.requests, kb.method, kb.path, kb.query)
	}
	if want := "Basic " + base64.StdEncoding.EncodeToString([]byte("elastic:changeme")); kb.auth != want {
		t.Errorf("Authorization %q, want %q", kb.auth, want)
	}
	if kb.xsrf == "" {
		t.Error("no kbn-xsrf header")
	}
	if !bytes.Equal(kb.file, kibanaobjects.SavedObjects) {
		t.Errorf("the file Kibana received (%d bytes) is not deploy/kibana/sluice.ndjson (%d bytes)", len(kb.file), len(kibanaobjects.SavedObjects))
	}
}

func TestSetupWithoutKibana(t *testing.T) {
	s := testenv.Start(t)
	name := testenv.Name(t, "setup")
	cleanupTemplate(t, s, name)
	var stdout, stderr bytes.Buffer
	if code := run([]string{"setup", "-c", writeSetupConfig(t, s.Elasticsearch, name, "")}, &stdout, &stderr); code != 0 {
		t.Fatalf("sluice setup exited %d:\n%s%s", code, stdout.String(), stderr.String())
	}
	if !strings.Contains(stdout.String(), "kibana: kibana.url is not set; no dashboards imported") {
		t.Errorf("output does not say Kibana was skipped:\n%s", stdout.String())
	}
	if code := s.ES(t, http.MethodGet, "/_index_template/"+name, nil, nil); code != http.StatusOK {
		t.Errorf("GET _index_template/%s: status %d, want 200", name, code)
	}
}

func TestSetupFailsWithKibanaMessage(t *testing.T) {
	s := testenv.Start(t)
	name := testenv.Name(t, "setup")
	cleanupTemplate(t, s, name)
	kb := newKibanaStub(t, http.StatusForbidden,
		`{"statusCode":403,"error":"Forbidden","message":"Unable to bulk_create index-pattern, missing saved_object:index-pattern/bulk_create"}`)
	cfgPath := writeSetupConfig(t, s.Elasticsearch, name, fmt.Sprintf("kibana:\n  url: %s\n  api_key: aWQ6a2V5\n", kb.srv.URL))
	var stdout, stderr bytes.Buffer
	if code := run([]string{"setup", "-c", cfgPath}, &stdout, &stderr); code != 1 {
		t.Fatalf("sluice setup exited %d, want 1:\n%s%s", code, stdout.String(), stderr.String())
	}
	for _, want := range []string{
		"Kibana answered 403 Forbidden: Unable to bulk_create index-pattern, missing saved_object:index-pattern/bulk_create",
		"check kibana.username and kibana.password, or kibana.api_key",
	} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("error output lacks %q:\n%s", want, stderr.String())
		}
	}
	kb.mu.Lock()
	defer kb.mu.Unlock()
	if kb.auth != "ApiKey aWQ6a2V5" {
		t.Errorf("Authorization %q, want ApiKey aWQ6a2V5", kb.auth)
	}
}

func TestSetupFailsWhenElasticsearchRefuses(t *testing.T) {
	// An Elasticsearch that rejects the template: a stub answering 400 as
	// Elasticsearch does, with its product header.
	es := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Elastic-Product", "Elasticsearch")
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		_, _ = io.WriteString(w, `{"error":{"type":"illegal_argument_exception","reason":"index template [x] has index patterns [x-*] matching patterns from existing templates"},"status":400}`)
	}))
	defer es.Close()
	var stdout, stderr bytes.Buffer
	if code := run([]string{"setup", "-c", writeSetupConfig(t, es.URL, "x", "")}, &stdout, &stderr); code != 1 {
		t.Fatalf("sluice setup exited %d, want 1:\n%s%s", code, stdout.String(), stderr.String())
	}
	if !strings.Contains(stderr.String(), "elasticsearch: installing index template x: 400 Bad Request") ||
		!strings.Contains(stderr.String(), "matching patterns from existing templates") {
		t.Errorf("error output does not show Elasticsearch's reason:\n%s", stderr.String())
	}
}

func TestSetupRejectsBadKibanaConfig(t *testing.T) {
	var stdout, stderr bytes.Buffer
	cfgPath := writeSetupConfig(t, "http://127.0.0.1:9200", "x", "kibana:\n  url: kibana:5601\n")
	if code := run([]string{"setup", "-c", cfgPath}, &stdout, &stderr); code != 1 {
		t.Fatalf("sluice setup exited %d, want 1", code)
	}
	if !strings.Contains(stderr.String(), `kibana.url: "kibana:5601" must be a URL such as http://kibana:5601`) {
		t.Errorf("error output does not name kibana.url:\n%s", stderr.String())
	}
	cfgPath = writeSetupConfig(t, "http://127.0.0.1:9200", "x", "kibana:\n  url: http://kibana:5601\n  spaces: ops\n")
	stderr.Reset()
	if code := run([]string{"check", "-c", cfgPath}, &stdout, &stderr); code != 1 || !strings.Contains(stderr.String(), "spaces") {
		t.Errorf("sluice check with kibana.spaces exited %d:\n%s", code, stderr.String())
	}
}

// TestSetupInstallsRetention: with data streams and retention rules, sluice
// setup installs a template per rule, each with its data stream lifecycle,
// and says so.
func TestSetupInstallsRetention(t *testing.T) {
	s := testenv.Start(t)
	name := testenv.Name(t, "setup")
	cleanupTemplate(t, s, name)
	t.Cleanup(func() { s.ES(t, http.MethodDelete, "/_index_template/"+name+"-retention-nginx", nil, nil) })
	cfg := writeSetupConfig(t, s.Elasticsearch, name, "  data_stream: true\n  replicas: 0\n  retention: {default: 30d, nginx: 14d}\n")
	var stdout, stderr bytes.Buffer
	if code := run([]string{"setup", "-c", cfg}, &stdout, &stderr); code != 0 {
		t.Fatalf("sluice setup exited %d:\n%s%s", code, stdout.String(), stderr.String())
	}
	for _, want := range []string{
		fmt.Sprintf("elasticsearch: installed index template %q for indices %s-*-*-*, data stream lifecycle keeping 30d", name, name),
		fmt.Sprintf("elasticsearch: installed index template %q for indices %s-nginx-*-*, data stream lifecycle keeping 14d", name+"-retention-nginx", name),
	} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, stdout.String())
		}
	}
	var got struct {
		IndexTemplates []struct {
			IndexTemplate struct {
				Priority   int            `json:"priority"`
				DataStream map[string]any `json:"data_stream"`
				Template   struct {
					Lifecycle map[string]any `json:"lifecycle"`
				} `json:"template"`
			} `json:"index_template"`
		} `json:"index_templates"`
	}
	s.ES(t, http.MethodGet, "/_index_template/"+name+"-retention-nginx", nil, &got)
	if len(got.IndexTemplates) != 1 {
		t.Fatalf("no template %s-retention-nginx", name)
	}
	tpl := got.IndexTemplates[0].IndexTemplate
	if tpl.Priority != 201 || tpl.DataStream == nil || tpl.Template.Lifecycle["data_retention"] != "14d" {
		t.Errorf("template %+v, want priority 201, a data stream, data_retention 14d", tpl)
	}
}
