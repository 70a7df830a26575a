package deliver

import (
	"maps"
	"slices"
)

// totalFieldsLimit is the index template's limit of mapped fields per
// index; maxMaxFields the largest parsers.max_fields, which leaves room
// for the template's own fields and other lines'.
const (
	TotalFieldsLimit = 2000
	MaxMaxFields     = 1000
)

// templatePriority is above the built-in logs template's 100, which would
// otherwise turn logs-*-* names into data streams.
const templatePriority = 200

// IndexTemplate returns Sluice's index template for pattern.
func IndexTemplate(pattern string) map[string]any {
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
				"index.mapping.total_fields.limit": TotalFieldsLimit,
				// Past the limit, new fields a document brings are kept in
				// _source but not mapped, instead of failing the document
				// (Elasticsearch 8.15+); parser.Service bounds what one line
				// may add, the rest going to the flattened labels.overflow.
				"index.mapping.total_fields.ignore_dynamic_beyond_limit": true,
				"index.mapping.ignore_malformed":                         true,
			},
			"mappings": map[string]any{
				"dynamic_templates": append(textToo("long", "double", "boolean", "date"),
					map[string]any{"strings_as_keyword": map[string]any{
						"match_mapping_type": "string",
						"mapping":            map[string]any{"type": "keyword", "ignore_above": 1024},
					}},
				),
				"properties": map[string]any{
					"@timestamp": map[string]any{"type": "date"},
					"message":    logText,
					"tags":       keyword,
					"labels": map[string]any{"properties": map[string]any{
						"overflow": map[string]any{"type": "flattened", "ignore_above": 1024},
					}},
					"user": map[string]any{"properties": map[string]any{"name": keyword}},
					"client": map[string]any{"properties": map[string]any{
						"address": keyword, "ip": map[string]any{"type": "ip"},
					}},
					"file":    map[string]any{"properties": map[string]any{"path": keyword}},
					"process": map[string]any{"properties": map[string]any{"name": keyword}},
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
						"dataset": keyword, "action": keyword, "created": map[string]any{"type": "date"},
						// A time outside elasticsearch.accept_time, as the line had it.
						"original_timestamp": keyword,
						"duration":           map[string]any{"type": "long"},
						"kind":               keyword, "category": keyword, "type": keyword, "outcome": keyword,
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
							// Kibana's top client countries aggregate on it.
							"country_iso_code": keyword,
						}},
						"as": map[string]any{"properties": map[string]any{
							"number": map[string]any{"type": "long"},
						}},
					}},
					"http": map[string]any{"properties": map[string]any{
						"route":   keyword,
						"request": map[string]any{"properties": map[string]any{"id": keyword}},
						"response": map[string]any{"properties": map[string]any{
							"status_code": map[string]any{"type": "long"},
							"bytes":       map[string]any{"type": "long"},
							"body":        map[string]any{"properties": map[string]any{"bytes": map[string]any{"type": "long"}}},
						}},
					}},
					"url": map[string]any{"properties": map[string]any{
						"original": map[string]any{"type": "keyword", "ignore_above": 8192},
						"path":     map[string]any{"type": "keyword", "ignore_above": 8192},
						"query":    map[string]any{"type": "keyword", "ignore_above": 8192},
						"domain":   keyword,
					}},
					"user_agent": map[string]any{"properties": map[string]any{
						"original": map[string]any{"type": "keyword", "ignore_above": 2048},
					}},
					"trace": map[string]any{"properties": map[string]any{"id": keyword}},
					"span":  map[string]any{"properties": map[string]any{"id": keyword}},
					"nginx": map[string]any{"properties": map[string]any{
						"request_time":            map[string]any{"type": "float"},
						"upstream_response_time":  map[string]any{"type": "float"},
						"upstream_response_times": map[string]any{"type": "float"},
						"upstream_connect_time":   map[string]any{"type": "float"},
						"upstream_header_time":    map[string]any{"type": "float"},
						"own_time":                map[string]any{"type": "float"},
						"upstream_addr":           keyword,
						"upstream_status":         map[string]any{"type": "long"},
						"upstream_tries":          map[string]any{"type": "long"},
						"request_id":              keyword,
						"upstream_attempts": map[string]any{"properties": map[string]any{
							"addr": keyword, "status": map[string]any{"type": "long"},
							"response_time": map[string]any{"type": "float"},
							"connect_time":  map[string]any{"type": "float"},
							"header_time":   map[string]any{"type": "float"},
						}},
					}},
				},
			},
		},
	}
}

// textToo returns dynamic templates that map new fields first seen with a
// value of each JSON type as that type, with a keyword sub-field
// <field>.keyword: two services logging one name with values of two types
// into one index ("status": 200 and "status": "ok") then both find their
// value, the second through the sub-field where the field's own type
// ignores it (index.mapping.ignore_malformed keeps the document). New
// string fields are keywords already and take numbers as their text.
func textToo(types ...string) []any {
	var out []any
	for _, t := range types {
		out = append(out, map[string]any{t + "s_with_keyword": map[string]any{
			"match_mapping_type": t,
			"mapping": map[string]any{"type": "{dynamic_type}", "fields": map[string]any{
				"keyword": map[string]any{"type": "keyword", "ignore_above": 1024},
			}},
		}})
	}
	return out
}

// TemplateFields returns the field types of Sluice's index template
// mapping, keyed by dotted field path ("source.geo.location": "geo_point").
// Fields that only the dynamic template maps (other strings, as keyword)
// are not listed.
func TemplateFields() map[string]string {
	mappings := IndexTemplate("*")["template"].(map[string]any)["mappings"].(map[string]any)
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
