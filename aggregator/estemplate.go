package aggregator

import (
	"maps"
	"slices"
)

// templatePriority is above the built-in logs template's 100, which would
// otherwise turn logs-*-* names into data streams.
const templatePriority = 200

// indexTemplate returns Sluice's index template for pattern.
func indexTemplate(pattern string) map[string]any {
	keyword := map[string]any{"type": "keyword"}
	// Words are searched in log text, but never ranked: no norms (a byte
	// per field per document, for scoring only).
	logText := map[string]any{"type": "text", "norms": false}
	return map[string]any{
		"index_patterns": []string{pattern},
		"priority":       templatePriority,
		"_meta":          map[string]any{"managed_by": "sluice"},
		"template": map[string]any{
			"settings": map[string]any{
				"index.mapping.total_fields.limit": 2000,
				"index.mapping.ignore_malformed":   true,
			},
			"mappings": map[string]any{
				"dynamic_templates": []any{
					map[string]any{"strings_as_keyword": map[string]any{
						"match_mapping_type": "string",
						"mapping":            map[string]any{"type": "keyword", "ignore_above": 1024},
					}},
				},
				"properties": map[string]any{
					"@timestamp": map[string]any{"type": "date"},
					"message":    logText,
					"tags":       keyword,
					"log": map[string]any{"properties": map[string]any{
						"level":  keyword,
						"offset": map[string]any{"type": "long"},
						"file":   map[string]any{"properties": map[string]any{"path": keyword}},
					}},
					"service": map[string]any{"properties": map[string]any{
						"name": keyword, "environment": keyword,
					}},
					"organization": map[string]any{"properties": map[string]any{"name": keyword}},
					"host":         map[string]any{"properties": map[string]any{"name": keyword}},
					"event": map[string]any{"properties": map[string]any{
						"dataset": keyword, "created": map[string]any{"type": "date"},
						"duration": map[string]any{"type": "long"},
						"kind":     keyword, "category": keyword, "type": keyword, "outcome": keyword,
					}},
					"ecs": map[string]any{"properties": map[string]any{"version": keyword}},
					"error": map[string]any{"properties": map[string]any{
						"message": logText, "type": keyword,
					}},
					"source": map[string]any{"properties": map[string]any{
						"ip":      map[string]any{"type": "ip"},
						"address": keyword,
						"geo": map[string]any{"properties": map[string]any{
							"location": map[string]any{"type": "geo_point"},
						}},
						"as": map[string]any{"properties": map[string]any{
							"number": map[string]any{"type": "long"},
						}},
					}},
					"http": map[string]any{"properties": map[string]any{
						"response": map[string]any{"properties": map[string]any{
							"status_code": map[string]any{"type": "long"},
							"bytes":       map[string]any{"type": "long"},
							"body":        map[string]any{"properties": map[string]any{"bytes": map[string]any{"type": "long"}}},
						}},
					}},
					"url": map[string]any{"properties": map[string]any{
						"original": map[string]any{"type": "keyword", "ignore_above": 8192},
					}},
					"user_agent": map[string]any{"properties": map[string]any{
						"original": map[string]any{"type": "keyword", "ignore_above": 2048},
					}},
					"nginx": map[string]any{"properties": map[string]any{
						"request_time":           map[string]any{"type": "float"},
						"upstream_response_time": map[string]any{"type": "float"},
					}},
				},
			},
		},
	}
}

// TemplateFields returns the field types of Sluice's index template
// mapping, keyed by dotted field path ("source.geo.location": "geo_point").
// Fields that only the dynamic template maps (other strings, as keyword)
// are not listed.
func TemplateFields() map[string]string {
	mappings := indexTemplate("*")["template"].(map[string]any)["mappings"].(map[string]any)
	fields := make(map[string]string)
	var walk func(prefix string, props map[string]any)
	walk = func(prefix string, props map[string]any) {
		for _, name := range slices.Sorted(maps.Keys(props)) {
			def := props[name].(map[string]any)
			if sub, ok := def["properties"].(map[string]any); ok {
				walk(prefix+name+".", sub)
				continue
			}
			fields[prefix+name], _ = def["type"].(string)
		}
	}
	walk("", mappings["properties"].(map[string]any))
	return fields
}
