package deliver

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/elastic/go-elasticsearch/v8"
	"github.com/elastic/go-elasticsearch/v8/esapi"
	"go.uber.org/zap"

	"github.com/sluicelog/sluice/internal/template"
)

// The index templates of a layout: one for elasticsearch.index (priority
// templatePriority) and one per retention rule narrower than default, each
// a full copy with its own lifecycle and a higher priority the more
// specific it is, since Elasticsearch applies only the one template of the
// highest priority to a new index. Data streams get Elasticsearch's data
// stream lifecycle (data_retention; free on the basic licence), which also
// rolls their backing indices over; dated indices an ILM policy per rule
// whose one phase deletes an index once it is that old.

// InstalledTemplate names an index template InstallTemplate put.
type InstalledTemplate struct {
	Name    string // elasticsearch.template_name, or it with -retention-<rule>
	Pattern string // the index pattern it applies to, from elasticsearch.index
	// Retention is how long its data is kept ("" for ever); Policy the ILM
	// policy that deletes dated indices, "" for data streams.
	Retention, Policy string
}

// retentionTemplatePrefix starts the names of the rule templates, after
// elasticsearch.template_name.
const retentionTemplatePrefix = "-retention-"

// layoutTemplate returns the index template for pattern with the layout's
// settings, at priority, keeping data for keep ("" for ever); policy names
// the ILM policy of dated indices.
func layoutTemplate(pattern string, l Layout, priority int, keep, policy string) map[string]any {
	t := IndexTemplate(pattern)
	t["priority"] = priority
	body := t["template"].(map[string]any)
	settings := body["settings"].(map[string]any)
	settings["index.number_of_shards"] = l.Shards
	settings["index.number_of_replicas"] = *l.Replicas
	if l.Codec != "default" {
		settings["index.codec"] = l.Codec
	}
	if l.IndexMode != "standard" {
		settings["index.mode"] = l.IndexMode
	}
	if l.DataStream {
		t["data_stream"] = map[string]any{}
		lifecycle := map[string]any{}
		if keep != "" {
			lifecycle["data_retention"] = keep
		}
		// Even without retention: the lifecycle is what rolls the backing
		// indices over.
		body["lifecycle"] = lifecycle
		props := body["mappings"].(map[string]any)["properties"].(map[string]any)
		// keyword, not Elastic's constant_keyword, which is a module some
		// distributions lack; one value per stream costs next to nothing.
		keyword := map[string]any{"type": "keyword"}
		props["data_stream"] = map[string]any{"properties": map[string]any{
			"type": keyword, "dataset": keyword, "namespace": keyword,
		}}
	} else if policy != "" {
		settings["index.lifecycle.name"] = policy
	}
	return t
}

// InstallTemplateOn puts the index templates, ILM policies and data stream
// lifecycles of cfg's layout for index names of index, and removes the
// templates of retention rules no longer configured.
func InstallTemplateOn(ctx context.Context, es *elasticsearch.Client, cfg ElasticsearchConfig, index *template.Template) ([]InstalledTemplate, error) {
	rules, err := cfg.Layout.retentionRules("elasticsearch", index)
	if err != nil {
		return nil, err
	}
	base := InstalledTemplate{Name: cfg.TemplateName, Pattern: index.Pattern()}
	installed := []InstalledTemplate{base}
	priorities := []int{templatePriority}
	for _, r := range rules {
		t := InstalledTemplate{Name: cfg.TemplateName + retentionTemplatePrefix + r.name, Pattern: r.pattern, Retention: r.keep}
		if !cfg.DataStream {
			t.Policy = cfg.TemplateName + "-" + r.name
		}
		if r.key == "default" {
			t.Name = base.Name
			installed[0] = t
			continue
		}
		installed = append(installed, t)
		priorities = append(priorities, templatePriority+r.rank)
	}
	for i, t := range installed {
		if t.Policy != "" {
			if err := putPolicy(ctx, es, t.Policy, t.Retention); errors.Is(err, errNoAPI) {
				return nil, fmt.Errorf("%w: elasticsearch.retention of dated indices needs index lifecycle management (ILM), "+
					"which this Elasticsearch lacks; use Elastic's default distribution, or data streams (elasticsearch.data_stream: true)", err)
			} else if err != nil {
				return nil, err
			}
		}
		body := layoutTemplate(t.Pattern, cfg.Layout, priorities[i], t.Retention, t.Policy)
		if err := esDo(ctx, es, "installing index template "+t.Name, esapi.IndicesPutIndexTemplateRequest{Name: t.Name, Body: jsonBody(body)}, nil); err != nil {
			return nil, err
		}
	}
	if err := removeStaleTemplates(ctx, es, cfg.TemplateName, installed); err != nil {
		return nil, err
	}
	if cfg.DataStream {
		return installed, updateLifecycles(ctx, es, installed)
	}
	return installed, nil
}

// putPolicy puts the ILM policy that deletes an index keep after its
// creation.
func putPolicy(ctx context.Context, es *elasticsearch.Client, name, keep string) error {
	body := map[string]any{"policy": map[string]any{
		"_meta": map[string]any{"managed_by": "sluice"},
		"phases": map[string]any{"delete": map[string]any{
			"min_age": keep, "actions": map[string]any{"delete": map[string]any{}},
		}},
	}}
	return esDo(ctx, es, "installing ILM policy "+name, esapi.ILMPutLifecycleRequest{Policy: name, Body: jsonBody(body)}, nil)
}

// removeStaleTemplates deletes the rule templates of name that installed
// does not hold: a rule taken out of the configuration must not go on
// applying to new indices.
func removeStaleTemplates(ctx context.Context, es *elasticsearch.Client, name string, installed []InstalledTemplate) error {
	var got struct {
		IndexTemplates []struct {
			Name          string `json:"name"`
			IndexTemplate struct {
				Meta map[string]any `json:"_meta"`
			} `json:"index_template"`
		} `json:"index_templates"`
	}
	err := esDo(ctx, es, "listing index templates", esapi.IndicesGetIndexTemplateRequest{Name: name + retentionTemplatePrefix + "*"}, &got)
	if err != nil {
		return err
	}
next:
	for _, t := range got.IndexTemplates {
		for _, in := range installed {
			if in.Name == t.Name {
				continue next
			}
		}
		if t.IndexTemplate.Meta["managed_by"] != "sluice" {
			continue
		}
		if err := esDo(ctx, es, "removing index template "+t.Name, esapi.IndicesDeleteIndexTemplateRequest{Name: t.Name}, nil); err != nil {
			return err
		}
	}
	return nil
}

// updateLifecycles gives the data streams that exist already the retention
// of the template that now governs them: Elasticsearch copies a template's
// lifecycle into a data stream only when it creates the stream. Streams of
// other templates are left alone.
func updateLifecycles(ctx context.Context, es *elasticsearch.Client, installed []InstalledTemplate) error {
	keep := make(map[string]string, len(installed))
	for _, t := range installed {
		keep[t.Name] = t.Retention
	}
	var got struct {
		DataStreams []struct {
			Name      string `json:"name"`
			Template  string `json:"template"`
			Lifecycle *struct {
				DataRetention string `json:"data_retention"`
			} `json:"lifecycle"`
		} `json:"data_streams"`
	}
	err := esDo(ctx, es, "listing data streams", esapi.IndicesGetDataStreamRequest{Name: []string{installed[0].Pattern}}, &got)
	if errors.Is(err, errNoAPI) {
		// A node without the data streams module (Elasticsearch's minimal
		// test distribution) has no lifecycle to update, nor any that runs.
		return nil
	}
	if err != nil {
		return err
	}
	for _, ds := range got.DataStreams {
		want, ours := keep[ds.Template]
		if !ours || (ds.Lifecycle != nil && ds.Lifecycle.DataRetention == want) {
			continue
		}
		body := map[string]any{}
		if want != "" {
			body["data_retention"] = want
		}
		req := esapi.IndicesPutDataLifecycleRequest{Name: []string{ds.Name}, Body: jsonBody(body)}
		if err := esDo(ctx, es, "setting the lifecycle of data stream "+ds.Name, req, nil); err != nil {
			return err
		}
	}
	return nil
}

// errNoAPI is an Elasticsearch without the API asked for: a distribution
// without the module.
var errNoAPI = errors.New("this Elasticsearch lacks the API")

func jsonBody(v any) io.Reader {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // maps of strings and numbers
	}
	return strings.NewReader(string(b))
}

// esDo sends req and decodes the answer into out (if not nil). A 404
// counts as an empty answer: a pattern that matches nothing.
func esDo(ctx context.Context, es *elasticsearch.Client, what string, req esapi.Request, out any) error {
	res, err := req.Do(ctx, es)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	defer res.Body.Close()
	if res.StatusCode == http.StatusNotFound && out != nil {
		return nil
	}
	if res.IsError() {
		msg, _ := io.ReadAll(io.LimitReader(res.Body, 1024))
		err := fmt.Errorf("%s: %s: %s", what, res.Status(), msg)
		if bytes.Contains(msg, []byte("no handler found for uri")) || bytes.Contains(msg, []byte("Incorrect HTTP method for uri")) {
			err = fmt.Errorf("%w (%w)", err, errNoAPI)
		}
		return err
	}
	if out == nil {
		_, _ = io.Copy(io.Discard, res.Body)
		return nil
	}
	if err := json.NewDecoder(res.Body).Decode(out); err != nil {
		return fmt.Errorf("%s: decoding the answer: %w", what, err)
	}
	return nil
}

// InstallTemplate puts Sluice's index templates, and the lifecycle of the
// configured retention, into Elasticsearch, as the aggregator does at start
// when elasticsearch.template is true; for `sluice setup`. It tries once:
// errors are returned, not retried.
func InstallTemplate(ctx context.Context, cfg ElasticsearchConfig) ([]InstalledTemplate, error) {
	idx, err := template.Parse(cfg.Index)
	if err != nil {
		return nil, fmt.Errorf("elasticsearch.index: %w", err)
	}
	es, err := NewESClient(cfg, zap.NewNop())
	if err != nil {
		return nil, fmt.Errorf("elasticsearch client: %w", err)
	}
	return InstallTemplateOn(ctx, es, cfg, idx)
}
