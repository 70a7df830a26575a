package pipeline

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/sluicelog/sluice/internal/config"
	"github.com/sluicelog/sluice/parser"
)

// compileYAML decodes a `pipelines:` section the way the aggregator's
// configuration is decoded (strict keys) and compiles it.
func compileYAML(t *testing.T, src string) (map[string]*Pipeline, error) {
	t.Helper()
	var cfg struct {
		Pipelines Config `yaml:"pipelines"`
	}
	if err := config.Decode([]byte(src), &cfg, func(string) (string, bool) { return "", false }); err != nil {
		return nil, err
	}
	cfg.Pipelines.SetDefaults()
	return cfg.Pipelines.Compile("pipelines")
}

// mustPipeline compiles the steps given as a YAML list for type t.
func mustPipeline(t *testing.T, steps string) *Pipeline {
	t.Helper()
	ps, err := compileYAML(t, "pipelines:\n  t:\n"+steps)
	if err != nil {
		t.Fatalf("compiling:\n%s\n%v", steps, err)
	}
	return ps["t"]
}

// nginxDoc is a document as the nginx parser and the aggregator build it.
func nginxDoc() map[string]any {
	return map[string]any{
		"@timestamp":                   "2026-11-25T10:00:00.000Z",
		"message":                      `81.2.69.142 - - [25/Nov/2026:10:00:00 +0000] "GET /healthz HTTP/1.1" 200 2 "-" "kube-probe/1.31" 0.001 0.001 "-"`,
		"source.ip":                    "81.2.69.142",
		"http.request.method":          "GET",
		"url.original":                 "/healthz",
		"http.version":                 "1.1",
		"http.response.status_code":    int64(200),
		"http.response.body.bytes":     int64(2),
		"user_agent.original":          "kube-probe/1.31",
		"nginx.request_time":           0.001,
		"nginx.upstream_response_time": 0.001,
		"nginx.http_cookie":            "session=secret",
		"service.name":                 "edge",
		"service.environment":          "prod",
		"event.dataset":                "nginx",
		"host.name":                    "node-1",
		"log.file.path":                "/var/log/nginx/access.log",
		"log.offset":                   int64(0),
		"tags":                         []string{"truncated"},
		"nginx.x_forwarded_for":        []string{"10.0.0.1", "81.2.69.142"},
	}
}

func TestConditions(t *testing.T) {
	doc := func() map[string]any {
		d := nginxDoc()
		d["status_text"] = "404"
		d["duration"] = "1500000000"
		d["slow"] = true
		d["labels.flag"] = "true"
		d["nested"] = map[string]any{"a": map[string]any{"b": "deep"}, "x.y": int64(7)}
		d["list"] = []any{"one", int64(2), 3.5}
		d["empty"] = nil
		return d
	}
	tests := []struct {
		name string
		cond string
		want bool
	}{
		{"equals string", `{equals: {url.original: /healthz}}`, true},
		{"equals string differs", `{equals: {url.original: /health}}`, false},
		{"equals int64 with YAML int", `{equals: {http.response.status_code: 200}}`, true},
		{"equals int64 with YAML float", `{equals: {http.response.status_code: 200.0}}`, true},
		{"equals int64 with quoted number", `{equals: {http.response.status_code: "200"}}`, true},
		{"equals numeric string with YAML int", `{equals: {status_text: 404}}`, true},
		{"equals float64", `{equals: {nginx.request_time: 0.001}}`, true},
		{"equals bool", `{equals: {slow: true}}`, true},
		{"equals bool with string", `{equals: {slow: "true"}}`, true},
		{"equals string true with bool", `{equals: {labels.flag: true}}`, true},
		{"equals bool false", `{equals: {slow: false}}`, false},
		{"equals missing field", `{equals: {no.such: x}}`, false},
		{"equals null field is missing", `{equals: {empty: x}}`, false},
		{"equals list element", `{equals: {tags: truncated}}`, true},
		{"equals any-list number", `{equals: {list: 2}}`, true},
		{"equals nested object", `{equals: {nested.a.b: deep}}`, true},
		{"equals nested dotted key", `{equals: {nested.x.y: 7}}`, true},
		{"equals several fields all hold", `{equals: {url.original: /healthz, http.request.method: GET}}`, true},
		{"equals several fields one fails", `{equals: {url.original: /healthz, http.request.method: POST}}`, false},
		{"in matches", `{in: {http.response.status_code: [301, 200]}}`, true},
		{"in no match", `{in: {http.request.method: [POST, PUT]}}`, false},
		{"in list field", `{in: {nginx.x_forwarded_for: [10.0.0.1]}}`, true},
		{"prefix", `{prefix: {user_agent.original: kube-probe/}}`, true},
		{"prefix no match", `{prefix: {user_agent.original: curl/}}`, false},
		{"prefix on number", `{prefix: {http.response.status_code: "2"}}`, true},
		{"prefix on list", `{prefix: {nginx.x_forwarded_for: "81.2."}}`, true},
		{"prefix missing", `{prefix: {no.such: x}}`, false},
		{"regex", `{regex: {url.original: "^/(healthz|readyz)$"}}`, true},
		{"regex unanchored", `{regex: {user_agent.original: probe}}`, true},
		{"regex no match", `{regex: {url.original: "^/api/"}}`, false},
		{"regex on number", `{regex: {http.response.status_code: "^2..$"}}`, true},
		{"exists one", `{exists: source.ip}`, true},
		{"exists list", `{exists: [source.ip, url.original]}`, true},
		{"exists list one missing", `{exists: [source.ip, no.such]}`, false},
		{"exists null", `{exists: empty}`, false},
		{"exists nested", `{exists: nested.a.b}`, true},
		{"gt int", `{gt: {http.response.status_code: 199}}`, true},
		{"gt equal is false", `{gt: {http.response.status_code: 200}}`, false},
		{"lt int", `{lt: {http.response.status_code: 300}}`, true},
		{"gt float field", `{gt: {nginx.request_time: 0.0005}}`, true},
		{"lt float bound with int field", `{lt: {http.response.status_code: 200.5}}`, true},
		{"gt numeric string field", `{gt: {duration: 1000000000}}`, true},
		{"gt numeric string bound", `{gt: {http.response.status_code: "100"}}`, true},
		{"gt non-numeric field", `{gt: {url.original: 1}}`, false},
		{"gt missing", `{gt: {no.such: 1}}`, false},
		{"gt bool is not a number", `{gt: {slow: 0}}`, false},
		{"gt and lt range", `{gt: {http.response.status_code: 199}, lt: {http.response.status_code: 300}}`, true},
		{"and true", `{and: [{equals: {http.request.method: GET}}, {prefix: {url.original: /health}}]}`, true},
		{"and false", `{and: [{equals: {http.request.method: GET}}, {prefix: {url.original: /api}}]}`, false},
		{"or true", `{or: [{equals: {url.original: /x}}, {prefix: {user_agent.original: kube-probe/}}]}`, true},
		{"or false", `{or: [{equals: {url.original: /x}}, {exists: no.such}]}`, false},
		{"not", `{not: {exists: no.such}}`, true},
		{"not not", `{not: {not: {exists: source.ip}}}`, true},
		{"nested and/or/not", `{and: [{or: [{gt: {http.response.status_code: 499}}, {equals: {url.original: /healthz}}]}, {not: {in: {http.request.method: [POST]}}}]}`, true},
		{"several tests in one condition are and-ed", `{exists: source.ip, equals: {http.request.method: POST}}`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := mustPipeline(t, "    - name: d\n      drop: {if: "+tt.cond+"}\n")
			keep, by := p.Apply(parser.DocOf(doc()))
			if got := !keep; got != tt.want {
				t.Errorf("condition %s matched = %v, want %v", tt.cond, got, tt.want)
			}
			if !keep && by != "d" {
				t.Errorf("droppedBy = %q, want d", by)
			}
		})
	}
}

func TestSteps(t *testing.T) {
	tests := []struct {
		name  string
		steps string
		in    map[string]any
		want  map[string]any
	}{
		{
			name:  "keep_fields with prefix keeps @timestamp",
			steps: "keep_fields: [http.*, url.original]",
			in:    map[string]any{"@timestamp": "t", "http.request.method": "GET", "http.response.status_code": int64(200), "httpx": "no", "url.original": "/", "url.path": "/", "message": "m"},
			want:  map[string]any{"@timestamp": "t", "http.request.method": "GET", "http.response.status_code": int64(200), "url.original": "/"},
		},
		{
			name:  "keep_fields inside nested objects",
			steps: "keep_fields: [http.request.method, user.*]",
			in:    map[string]any{"http": map[string]any{"request": map[string]any{"method": "GET", "bytes": int64(1)}, "version": "1.1"}, "user": map[string]any{"id": "u"}, "other": map[string]any{"a": "b"}},
			want:  map[string]any{"http": map[string]any{"request": map[string]any{"method": "GET"}}, "user": map[string]any{"id": "u"}},
		},
		{
			name:  "remove_fields exact and prefix",
			steps: "remove_fields: [nginx.*, message, no.such]",
			in:    map[string]any{"@timestamp": "t", "nginx.request_time": 0.1, "nginx": map[string]any{"x": "y"}, "nginxy": "kept", "message": "m", "url.original": "/"},
			want:  map[string]any{"@timestamp": "t", "nginxy": "kept", "url.original": "/"},
		},
		{
			name:  "remove_fields inside nested objects",
			steps: "remove_fields: [http.request.method, user.secret.*]",
			in:    map[string]any{"http": map[string]any{"request": map[string]any{"method": "GET", "bytes": int64(1)}}, "user": map[string]any{"secret": map[string]any{"k": "v"}, "secret.token": "t", "id": "u"}},
			want:  map[string]any{"http": map[string]any{"request": map[string]any{"bytes": int64(1)}}, "user": map[string]any{"id": "u"}},
		},
		{
			name:  "rename moves value of any type and overwrites the target",
			steps: "rename: {status: http.response.status_code, ua: user_agent.original, missing: x}",
			in:    map[string]any{"status": int64(404), "ua": "curl", "user_agent.original": "old"},
			want:  map[string]any{"http.response.status_code": int64(404), "user_agent.original": "curl"},
		},
		{
			name:  "rename from a nested object",
			steps: "rename: {req.id: trace.id}",
			in:    map[string]any{"req": map[string]any{"id": "abc", "n": int64(1)}},
			want:  map[string]any{"req": map[string]any{"n": int64(1)}, "trace.id": "abc"},
		},
		{
			name:  "add_fields constants and templates",
			steps: `add_fields: {labels.slow: "true", labels.n: 5, labels.f: 1.5, labels.b: false, labels.route: "{service.name}-{log.level}", labels.missing: "{no.such}", labels.day: "d-{+2006.01.02}", labels.code: "c{http.response.status_code}"}`,
			in:    map[string]any{"@timestamp": "2026-11-25T10:00:00Z", "service.name": "checkout", "log.level": "warn", "http.response.status_code": int64(503)},
			want: map[string]any{"@timestamp": "2026-11-25T10:00:00Z", "service.name": "checkout", "log.level": "warn", "http.response.status_code": int64(503),
				"labels.slow": "true", "labels.n": int64(5), "labels.f": 1.5, "labels.b": false, "labels.route": "checkout-warn",
				"labels.missing": "unknown", "labels.day": "d-2026.11.25", "labels.code": "c503"},
		},
		{
			name:  "set overwrites with a template",
			steps: `set: {field: service.name, value: "{service.name}-{log.level}"}`,
			in:    map[string]any{"service.name": "checkout", "log.level": "debug"},
			want:  map[string]any{"service.name": "checkout-debug", "log.level": "debug"},
		},
		{
			name:  "set into an existing nested object",
			steps: `set: {field: service.name, value: billing}`,
			in:    map[string]any{"service": map[string]any{"name": "checkout"}},
			want:  map[string]any{"service": map[string]any{"name": "billing"}},
		},
		{
			name:  "set a list",
			steps: `set: {field: tags, value: [a, 1]}`,
			in:    map[string]any{},
			want:  map[string]any{"tags": []any{"a", int64(1)}},
		},
		{
			name:  "if guards a step: matching",
			steps: "add_fields: {labels.slow: \"true\"}\n      if: {gt: {event.duration: 1000000000}}",
			in:    map[string]any{"event.duration": int64(2000000000)},
			want:  map[string]any{"event.duration": int64(2000000000), "labels.slow": "true"},
		},
		{
			name:  "if guards a step: not matching",
			steps: "add_fields: {labels.slow: \"true\"}\n      if: {gt: {event.duration: 1000000000}}",
			in:    map[string]any{"event.duration": int64(20)},
			want:  map[string]any{"event.duration": int64(20)},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := mustPipeline(t, "    - name: s\n      "+tt.steps+"\n")
			before := deepCopy(tt.in)
			doc := parser.DocOf(tt.in) // sharing tt.in's nested objects
			keep, _ := p.Apply(doc)
			if !keep {
				t.Fatal("document dropped")
			}
			if !reflect.DeepEqual(tt.in, before) {
				t.Errorf("nested objects changed in place: %v, was %v", tt.in, before)
			}
			if !reflect.DeepEqual(doc.Map(), tt.want) {
				got, _ := json.Marshal(doc)
				want, _ := json.Marshal(tt.want)
				t.Errorf("got  %s\nwant %s", got, want)
			}
		})
	}
}

// deepCopy copies m and the objects nested in it.
func deepCopy(m map[string]any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		if sub, ok := v.(map[string]any); ok {
			v = deepCopy(sub)
		}
		out[k] = v
	}
	return out
}

func TestStepsRunInOrderAndDropStops(t *testing.T) {
	p := mustPipeline(t, `
    - name: tag-probe
      add_fields: {labels.probe: "yes"}
      if: {prefix: {user_agent.original: kube-probe/}}
    - name: drop-probes
      drop: {if: {equals: {labels.probe: "yes"}}}
    - name: never-reached
      add_fields: {labels.after: x}
`)
	doc := parser.DocOf(nginxDoc())
	if keep, by := p.Apply(doc); keep || by != "drop-probes" {
		t.Fatalf("Apply = %v, %q; want dropped by drop-probes", keep, by)
	}
	if doc.Has("labels.after") {
		t.Error("a step after the drop ran")
	}
	doc = parser.DocOf(nginxDoc())
	doc.Set("user_agent.original", "curl/8")
	if keep, by := p.Apply(doc); !keep || by != "" {
		t.Fatalf("Apply = %v, %q; want kept", keep, by)
	}
	if after, _ := doc.Get("labels.after"); after != "x" {
		t.Error("the last step did not run on a kept document")
	}
	if got, want := p.Steps(), []string{"tag-probe", "drop-probes", "never-reached"}; !reflect.DeepEqual(got, want) {
		t.Errorf("Steps = %v, want %v", got, want)
	}
	if got, want := p.Writes(), []string{"labels.after", "labels.probe"}; !reflect.DeepEqual(got, want) {
		t.Errorf("Writes = %v, want %v", got, want)
	}
}

func TestDropWithStepLevelIf(t *testing.T) {
	p := mustPipeline(t, `
    - name: drop-both
      if: {equals: {http.request.method: GET}}
      drop: {if: {equals: {url.original: /healthz}}}
    - name: drop-step-if
      if: {equals: {url.original: /gone}}
      drop: {}
`)
	for _, tt := range []struct {
		method, url string
		by          string
	}{{"GET", "/healthz", "drop-both"}, {"POST", "/healthz", ""}, {"GET", "/gone", "drop-step-if"}, {"GET", "/api", ""}} {
		doc := parser.DocOf(nginxDoc())
		doc.Set("http.request.method", tt.method)
		doc.Set("url.original", tt.url)
		if _, by := p.Apply(doc); by != tt.by {
			t.Errorf("%s %s dropped by %q, want %q", tt.method, tt.url, by, tt.by)
		}
	}
}

func TestConfigErrors(t *testing.T) {
	tests := []struct {
		name, yaml, want string
	}{
		{"unknown step kind", `
pipelines:
  nginx:
    - name: a
      dorp: {if: {exists: x}}`, "pipelines.nginx[0].dorp: unknown key; did you mean drop?"},
		{"unknown condition", `
pipelines:
  nginx:
    - name: a
      drop: {if: {equal: {x: 1}}}`, "pipelines.nginx[0].drop.if.equal: unknown key; did you mean equals?"},
		{"missing name", `
pipelines:
  nginx:
    - remove_fields: [x]`, "pipelines.nginx[0].name: a step needs a name, used in metrics and errors, e.g. name: drop-health-checks"},
		{"duplicate name", `
pipelines:
  nginx:
    - {name: a, remove_fields: [x]}
    - {name: a, remove_fields: [y]}`, `pipelines.nginx[1].name: "a" is already the name of pipelines.nginx[0]; give each step its own name`},
		{"bad regex", `
pipelines:
  nginx:
    - {name: a, remove_fields: [x]}
    - {name: b, remove_fields: [y]}
    - name: c
      drop: {if: {regex: {url.original: "^/(health"}}}`, `pipelines.nginx[2].drop.if.regex: url.original: "^/(health" is not a valid regular expression (missing closing ): ` + "`^/(health`" + `); write RE2 syntax, see https://golang.org/s/re2syntax`},
		{"bad regex nested in or", `
pipelines:
  service:
    - name: a
      remove_fields: [x]
      if: {or: [{exists: y}, {not: {regex: {msg: "a**"}}}]}`, `pipelines.service[0].if.or[1].not.regex: msg: "a**" is not a valid regular expression (invalid nested repetition operator: ` + "`**`" + `); write RE2 syntax, see https://golang.org/s/re2syntax`},
		{"drop without if", `
pipelines:
  nginx:
    - name: a
      drop: {}`, "pipelines.nginx[0].drop.if: a drop step needs a condition, e.g. drop: {if: {equals: {url.original: /healthz}}}"},
		{"gt not a number", `
pipelines:
  nginx:
    - name: a
      drop: {if: {gt: {http.response.status_code: high}}}`, "pipelines.nginx[0].drop.if.gt: http.response.status_code: high is not a number; write a number such as gt: {http.response.status_code: 500}"},
		{"lt not a number", `
pipelines:
  nginx:
    - name: a
      drop: {if: {lt: {x: [1]}}}`, "pipelines.nginx[0].drop.if.lt: x: [1] is not a number; write a number such as lt: {x: 500}"},
		{"no kind", `
pipelines:
  nginx:
    - name: a`, `pipelines.nginx[0]: step "a" does nothing; give it one of drop, keep_fields, remove_fields, rename, add_fields or set`},
		{"two kinds", `
pipelines:
  nginx:
    - name: a
      remove_fields: [x]
      set: {field: y, value: z}`, `pipelines.nginx[0]: step "a" has remove_fields and set; give each step one kind and split the others into steps of their own`},
		{"empty condition", `
pipelines:
  nginx:
    - name: a
      drop: {if: {}}`, "pipelines.nginx[0].drop.if: the condition is empty; use equals, in, prefix, regex, exists, gt, lt, and, or or not"},
		{"empty in list", `
pipelines:
  nginx:
    - name: a
      drop: {if: {in: {log.level: []}}}`, "pipelines.nginx[0].drop.if.in: log.level: the list of values is empty; give at least one, e.g. in: {log.level: [a, b]}"},
		{"null equals", `
pipelines:
  nginx:
    - name: a
      drop: {if: {equals: {log.level: ~}}}`, "pipelines.nginx[0].drop.if.equals: log.level: a value is empty (null); to test for a missing field write not: {exists: FIELD}"},
		{"empty and", `
pipelines:
  nginx:
    - name: a
      drop: {if: {and: []}}`, "pipelines.nginx[0].drop.if.and: the list of conditions is empty"},
		{"bad template", `
pipelines:
  nginx:
    - name: a
      set: {field: x, value: "{service.name"}`, `pipelines.nginx[0].set.value: unclosed { in "{service.name"`},
		{"null add_fields value", `
pipelines:
  nginx:
    - name: a
      add_fields: {x: ~}`, "pipelines.nginx[0].add_fields.x: the value is empty (null); give a value, or use remove_fields to remove a field"},
		{"bad pattern", `
pipelines:
  nginx:
    - name: a
      keep_fields: [message, "http.*.method"]`, `pipelines.nginx[0].keep_fields[1]: "http.*.method": only a trailing .* is supported, e.g. http.*`},
		{"wildcard in rename", `
pipelines:
  nginx:
    - name: a
      rename: {"a.*": b}`, `pipelines.nginx[0].rename.a.*: "a.*": wildcards are not supported here; name one field`},
		{"chained rename", `
pipelines:
  nginx:
    - name: a
      rename: {a: b, b: c}`, "pipelines.nginx[0].rename.a: a is renamed to b, which is renamed too; put the second rename in a step of its own"},
		{"empty remove_fields", `
pipelines:
  nginx:
    - name: a
      remove_fields: []`, "pipelines.nginx[0].remove_fields: the list of fields is empty; name at least one field, e.g. [http.*, url.original]"},
		{"in with one value instead of a list", `
pipelines:
  service:
    - name: a
      drop:
        if:
          in: {log.level: debug}`, `pipelines.service[0].drop.if.in.log.level: "debug" is not a valid list`},
		{"exists with a mapping", `
pipelines:
  service:
    - name: a
      drop:
        if:
          exists: {a: b}`, `pipelines.service[0].drop.if.exists.a: "" is not a valid list`},
		{"missing set field", `
pipelines:
  nginx:
    - name: a
      set: {value: x}`, "pipelines.nginx[0].set.field: the field name is empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := compileYAML(t, tt.yaml)
			if err == nil {
				t.Fatalf("accepted:%s", tt.yaml)
			}
			if err.Error() != tt.want {
				t.Errorf("error\n got: %s\nwant: %s", err, tt.want)
			}
		})
	}
}

func TestExampleConfigCompiles(t *testing.T) {
	ps, err := compileYAML(t, `
pipelines:
  nginx:
    - name: drop-health-checks
      drop:
        if: {or: [{equals: {url.original: /healthz}}, {prefix: {user_agent.original: kube-probe/}}]}
    - name: no-cookies
      remove_fields: [nginx.http_cookie]
  service:
    - name: drop-debug
      drop: {if: {in: {log.level: [debug, trace]}}}
    - name: tag-slow
      add_fields: {labels.slow: "true"}
      if: {gt: {event.duration: 1000000000}}
`)
	if err != nil {
		t.Fatal(err)
	}
	if len(ps) != 2 || len(ps["nginx"].Steps()) != 2 || len(ps["service"].Steps()) != 2 {
		t.Fatalf("compiled %v", ps)
	}
}

// BenchmarkPipeline runs an nginx access log document through typical
// rules: a health-check drop that does not match, a cookie removal, a
// conditional tag and a status-class field.
func BenchmarkPipeline(b *testing.B) {
	ps, err := compileYAMLB(`
pipelines:
  nginx:
    - name: drop-health-checks
      drop:
        if: {or: [{equals: {url.original: /healthz}}, {prefix: {user_agent.original: kube-probe/}}]}
    - name: drop-static
      drop: {if: {regex: {url.original: "\\.(css|js|png)$"}}}
    - name: no-cookies
      remove_fields: [nginx.http_cookie]
    - name: tag-slow
      add_fields: {labels.slow: "true"}
      if: {gt: {nginx.request_time: 1}}
    - name: tag-errors
      add_fields: {labels.error: "true"}
      if: {gt: {http.response.status_code: 499}}
`)
	if err != nil {
		b.Fatal(err)
	}
	p := ps["nginx"]
	base := nginxDoc()
	base["url.original"] = "/api/v1/orders?id=42"
	base["user_agent.original"] = "Mozilla/5.0 (X11; Linux x86_64)"
	base["http.response.status_code"] = int64(503)
	base["nginx.request_time"] = 1.5
	docs := make([]*parser.Doc, 1024)
	for i := range docs {
		docs[i] = parser.NewDoc(len(base) + 2)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if i%len(docs) == 0 {
			b.StopTimer()
			for _, d := range docs {
				d.Reset()
				for k, v := range base {
					d.Set(k, v)
				}
			}
			b.StartTimer()
		}
		if keep, _ := p.Apply(docs[i%len(docs)]); !keep {
			b.Fatal("dropped")
		}
	}
}

func compileYAMLB(src string) (map[string]*Pipeline, error) {
	var cfg struct {
		Pipelines Config `yaml:"pipelines"`
	}
	if err := config.Decode([]byte(src), &cfg, func(string) (string, bool) { return "", false }); err != nil {
		return nil, err
	}
	return cfg.Pipelines.Compile("pipelines")
}
