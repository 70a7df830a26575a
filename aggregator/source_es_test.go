package aggregator

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicelog/sluice/internal/event"
	"github.com/sluicelog/sluice/internal/testenv"
)

// TestSourceIsNested indexes a service line (whose own "http" object
// meets the http.request.id the parser sets) and an nginx line into the
// real Elasticsearch and checks that their _source has one shape: nested
// objects, no dotted keys; that ingest pipelines and Painless reach
// ctx.log.level and params._source.log.level; and that the fields Kibana's
// objects use are still mapped with the template's types.
func TestSourceIsNested(t *testing.T) {
	s := newSharedIndex(t)
	ids := s.send(t, "checkout", "acme", `{"level":"warn","msg":"slow","request_id":"r-1","http":{"method":"GET"}}`)
	src := s.source(t, ids[0])
	assertNoDottedKeys(t, "", src)
	log, _ := src["log"].(map[string]any)
	httpObj, _ := src["http"].(map[string]any)
	req, _ := httpObj["request"].(map[string]any)
	if log["level"] != "warn" || httpObj["method"] != "GET" || req["id"] != "r-1" {
		t.Errorf("_source: log %v, http %v; want log.level warn, http.method GET, http.request.id r-1", log, httpObj)
	}

	// An ingest pipeline's script and a runtime field's Painless read the
	// stored document by its paths, where the node has the modules (the
	// test node is a minimal build, without lang-painless and
	// ingest-common: there the _source checks above are the proof).
	if !nodeHasModule(t, s.stack, "lang-painless") || !nodeHasModule(t, s.stack, "ingest-common") {
		t.Log("no lang-painless or ingest-common module on the node: Painless checks skipped")
	} else {
		raw, _ := json.Marshal(map[string]any{
			"pipeline": map[string]any{"processors": []any{map[string]any{"script": map[string]any{
				"source": "ctx.copied = ctx.log.level + ' ' + ctx.http.request.id"}}}},
			"docs": []any{map[string]any{"_source": src}},
		})
		var sim struct {
			Docs []struct {
				Doc struct {
					Source map[string]any `json:"_source"`
				} `json:"doc"`
			} `json:"docs"`
		}
		if code := s.stack.ES(t, http.MethodPost, "/_ingest/pipeline/_simulate", strings.NewReader(string(raw)), &sim); code != http.StatusOK || len(sim.Docs) != 1 {
			t.Fatalf("simulate: status %d, %+v", code, sim)
		}
		if got := sim.Docs[0].Doc.Source["copied"]; got != "warn r-1" {
			t.Errorf("ingest script: ctx.log.level + ctx.http.request.id = %v, want warn r-1", got)
		}

		// A runtime field's Painless reads params._source.log.level.
		var res struct {
			Hits struct {
				Hits []struct {
					Fields map[string][]any `json:"fields"`
				} `json:"hits"`
			} `json:"hits"`
		}
		q := `{"query":{"ids":{"values":["` + ids[0] + `"]}},"fields":["level_from_source"],"runtime_mappings":{"level_from_source":{"type":"keyword",` +
			`"script":{"source":"def l = params._source.log; if (l != null && l.level != null) { emit(l.level) }"}}}}`
		if code := s.stack.ES(t, http.MethodPost, "/"+s.index+"/_search", strings.NewReader(q), &res); code != http.StatusOK {
			t.Fatalf("runtime field search: status %d", code)
		}
		if len(res.Hits.Hits) != 1 || len(res.Hits.Hits[0].Fields["level_from_source"]) != 1 || res.Hits.Hits[0].Fields["level_from_source"][0] != "warn" {
			t.Errorf("runtime field from params._source.log.level: %+v", res.Hits.Hits)
		}

	}

	// An nginx line: its parsed user agent nested too.
	line := `81.2.69.142 - - [25/Nov/2026:10:00:00 +0000] "GET /api/v1/orders?id=1 HTTP/1.1" 503 0 "-" ` +
		`"Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1" 1.500 1.498 "-"`
	fields := map[string]string{"service": "edge", "environment": "prod"}
	ev := event.Event{Type: "nginx", Node: "n1", Path: "/var/log/nginx/access.log", FileID: "f-nginx", Fields: fields, Line: []byte(line)}
	if err := s.p.loop.Process(context.Background(), []*kgo.Record{ev.Record("logs-nginx", event.EncodeFields(fields))}); err != nil {
		t.Fatal(err)
	}
	nginxIndex := strings.TrimSuffix(s.index, "-service") + "-nginx"
	var doc struct {
		Source map[string]any `json:"_source"`
	}
	if code := s.stack.ES(t, http.MethodGet, "/"+nginxIndex+"/_doc/"+ev.DocID(), nil, &doc); code != http.StatusOK {
		t.Fatalf("nginx document: status %d", code)
	}
	assertNoDottedKeys(t, "", doc.Source)
	flat := testenv.Flat(doc.Source)
	for k, want := range map[string]any{"user_agent.name": "Mobile Safari", "user_agent.os.name": "iOS", "user_agent.device.name": "iPhone",
		"url.path": "/api/v1/orders", "event.dataset": "nginx.access", "event.outcome": "failure", "http.response.status_code": 503.0} {
		if flat[k] != want {
			t.Errorf("nginx _source %s = %v, want %v", k, flat[k], want)
		}
	}

	// The fields the dashboards use keep the template's types.
	var mapping map[string]struct {
		Mappings map[string]struct {
			Mapping map[string]struct {
				Type string `json:"type"`
			} `json:"mapping"`
		} `json:"mappings"`
	}
	want := map[string]string{"log.level": "keyword", "http.request.id": "keyword", "event.dataset": "keyword",
		"user_agent.name": "keyword", "user_agent.os.name": "keyword", "user_agent.device.name": "keyword",
		"source.ip": "ip", "source.geo.location": "geo_point", "nginx.request_time": "float",
		"nginx.upstream_response_time": "float", "http.response.status_code": "long", "service.name": "keyword"}
	names := make([]string, 0, len(want))
	for k := range want {
		names = append(names, k)
	}
	s.stack.ES(t, http.MethodGet, "/"+nginxIndex+","+s.index+"/_mapping/field/"+strings.Join(names, ","), nil, &mapping)
	for index, m := range mapping {
		for field, typ := range want {
			if index == s.index && strings.HasPrefix(field, "user_agent.") {
				continue // the service index's mapping has them too, from the template
			}
			got := m.Mappings[field].Mapping
			leaf := field[strings.LastIndexByte(field, '.')+1:]
			if got[leaf].Type != typ {
				t.Errorf("%s: %s mapped %q, want %s", index, field, got[leaf].Type, typ)
			}
		}
	}
	if len(mapping) != 2 {
		t.Errorf("mappings of %d indices, want 2", len(mapping))
	}
}

// nodeHasModule reports whether the Elasticsearch nodes have a module.
func nodeHasModule(t *testing.T, stack *testenv.Stack, name string) bool {
	var res struct {
		Nodes map[string]struct {
			Modules []struct {
				Name string `json:"name"`
			} `json:"modules"`
		} `json:"nodes"`
	}
	stack.ES(t, http.MethodGet, "/_nodes?filter_path=nodes.*.modules.name", nil, &res)
	for _, n := range res.Nodes {
		for _, m := range n.Modules {
			if m.Name == name {
				return true
			}
		}
	}
	return false
}

// assertNoDottedKeys fails if a key of src, at any depth, has a dot.
func assertNoDottedKeys(t *testing.T, path string, src map[string]any) {
	t.Helper()
	for k, v := range src {
		if strings.Contains(k, ".") {
			t.Errorf("_source has the dotted key %q under %q", k, path)
		}
		if m, ok := v.(map[string]any); ok {
			assertNoDottedKeys(t, path+k+".", m)
		}
	}
}
