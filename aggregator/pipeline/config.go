// Package pipeline filters and reshapes parsed documents before they are
// indexed: per document type, an ordered list of steps, each optionally
// guarded by a condition. A step either drops the document (it is not
// indexed; its Kafka offset still counts as delivered) or changes its
// fields.
//
// Configuration (Config) is compiled once at start (Compile) into a form
// that does no reflection and no look-up of step kinds per document:
// conditions become a tree of small matchers, regular expressions are
// compiled, numbers are parsed, templates are parsed.
//
// # Fields
//
// Documents are flat maps keyed by dotted ECS names ("url.original"). A
// name is looked up as a flat key first; if that is missing, inside nested
// objects ("url": {"original": ...}), as service JSON lines may carry them.
// A null value counts as missing.
//
// # Values and comparisons
//
// Numbers compare numerically, whatever their type: int64 200, float64
// 200.0, the string "200" and the YAML 200 are all equal. Booleans equal
// true/false or the strings "true"/"false". Anything else compares as text.
// A condition on a field holding a list matches when any element matches.
package pipeline

import (
	"fmt"

	"go.yaml.in/yaml/v3"
)

// Config is the `pipelines` section: the ordered steps of each document type
// (service, nginx, or any input type the shipper gives).
type Config map[string][]Step

// Step is one step of a pipeline. Exactly one of its kinds (drop,
// keep_fields, remove_fields, rename, add_fields, set) is set.
type Step struct {
	// Name identifies the step in metrics and errors; unique in its
	// pipeline.
	Name string `yaml:"name"`
	// If guards the step: it runs only for documents that match.
	If *Condition `yaml:"if"`

	// Drop removes the document from the output when its condition matches.
	Drop *Drop `yaml:"drop"`
	// KeepFields removes every field but these; "http.*" keeps a whole
	// prefix. @timestamp is always kept.
	KeepFields []string `yaml:"keep_fields"`
	// RemoveFields removes these fields; "http.*" removes a whole prefix.
	RemoveFields []string `yaml:"remove_fields"`
	// Rename moves fields: from -> to. A missing field is left alone; an
	// existing target is overwritten.
	Rename map[string]string `yaml:"rename"`
	// AddFields sets fields to values; string values may be templates over
	// the document's fields, like "{service.name}-{log.level}".
	AddFields map[string]any `yaml:"add_fields"`
	// Set sets one field to a value or template.
	Set *Set `yaml:"set"`
}

// Drop drops documents that match If.
type Drop struct {
	If *Condition `yaml:"if"`
}

// Set sets Field to Value; a string Value may be a template such as
// "{service.name}-{log.level}".
type Set struct {
	Field string `yaml:"field"`
	Value any    `yaml:"value"`
}

// Condition matches documents. Every test set in one Condition must hold
// (they are and-ed), as must every field named in one test.
type Condition struct {
	// Equals: field -> value.
	Equals map[string]any `yaml:"equals"`
	// In: field -> list of values, any of which may match.
	In map[string][]any `yaml:"in"`
	// Prefix: field -> the text it starts with.
	Prefix map[string]string `yaml:"prefix"`
	// Regex: field -> RE2 regular expression, unanchored.
	Regex map[string]string `yaml:"regex"`
	// Exists: a field or a list of fields that must be present.
	Exists Fields `yaml:"exists"`
	// GT and LT: field -> number (or numeric string); the field's value must
	// be a number or numeric string greater (less) than it.
	GT map[string]any `yaml:"gt"`
	LT map[string]any `yaml:"lt"`
	// And, Or and Not combine conditions.
	And []Condition `yaml:"and"`
	Or  []Condition `yaml:"or"`
	Not *Condition  `yaml:"not"`
}

// Fields is a list of field names that may be written as one name.
type Fields []string

// UnmarshalYAML accepts `exists: name` as well as `exists: [a, b]`.
func (f *Fields) UnmarshalYAML(n *yaml.Node) error {
	switch n.Kind {
	case yaml.ScalarNode:
		*f = Fields{n.Value}
		return nil
	case yaml.SequenceNode:
		var list []string
		if err := n.Decode(&list); err != nil {
			return err
		}
		*f = list
		return nil
	}
	// A *yaml.TypeError is reported with the others, by key path.
	return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: cannot unmarshal %s `%s` into []string", n.Line, n.ShortTag(), n.Value)}}
}

// SetDefaults fills unset values; pipelines have none.
func (c Config) SetDefaults() {}

// Validate compiles the configuration found under key (normally
// "pipelines") and returns the first problem, naming its key path, such
// as pipelines.nginx[2].drop.if.regex.
func (c Config) Validate(key string) error {
	_, err := c.Compile(key)
	return err
}
