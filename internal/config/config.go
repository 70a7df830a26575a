// Package config loads Sluice's YAML configuration files.
//
// Scalars may reference the environment as ${VAR} or ${VAR:-default}. The
// expansion happens on parsed scalar values, never on the raw text, so a
// variable's value cannot change the structure of the document. Unknown keys
// are rejected, and every error names the key path it is about.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"reflect"
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Error is a configuration problem tied to a key path such as
// "inputs[0].paths".
type Error struct {
	Key string
	Msg string
}

func (e *Error) Error() string {
	if e.Key == "" {
		return e.Msg
	}
	return e.Key + ": " + e.Msg
}

// Errorf returns an *Error for key with a formatted message.
func Errorf(key, format string, args ...any) error {
	return &Error{Key: key, Msg: fmt.Sprintf(format, args...)}
}

// Join returns key joined to child the way error paths are written.
func Join(key, child string) string {
	if key == "" {
		return child
	}
	if strings.HasPrefix(child, "[") {
		return key + child
	}
	return key + "." + child
}

// Index returns key[i].
func Index(key string, i int) string { return key + "[" + strconv.Itoa(i) + "]" }

// Load reads path, expands environment references and decodes the document
// into out, rejecting unknown keys.
func Load(path string, out any) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("reading config: %w", err)
	}
	return Decode(data, out, os.LookupEnv)
}

// Decode parses data as YAML, expands ${VAR} references with lookup and
// decodes the result into out strictly.
func Decode(data []byte, out any, lookup func(string) (string, bool)) error {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		msg := "invalid YAML: " + yamlSyntaxError(err)
		if bytes.Contains(data, []byte("${")) {
			msg += `; inside [ ] or { } a ${VAR} must be quoted, e.g. ["${VAR}"]`
		}
		return &Error{Msg: msg}
	}
	if len(root.Content) == 0 {
		return &Error{Msg: "the configuration file is empty"}
	}
	if err := expandNode(root.Content[0], "", lookup); err != nil {
		return err
	}
	if err := checkNumbers(root.Content[0], reflect.TypeOf(out), ""); err != nil {
		return err
	}
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	if err := enc.Encode(root.Content[0]); err != nil {
		return fmt.Errorf("re-encoding config: %w", err)
	}
	// Decoding errors carry line numbers of the re-encoded text, which can
	// differ from the file's (comments and blank lines are gone): the key
	// paths are found in the re-encoded document.
	encoded := buf.Bytes()
	dec := yaml.NewDecoder(bytes.NewReader(encoded))
	dec.KnownFields(true)
	if err := dec.Decode(out); err != nil {
		var again yaml.Node
		keys := keysByType(reflect.TypeOf(out), map[string][]string{})
		if yaml.Unmarshal(encoded, &again) != nil || len(again.Content) == 0 {
			return describeDecodeError(err, root.Content[0], keys)
		}
		return describeDecodeError(err, again.Content[0], keys)
	}
	return nil
}

// Keys returns the top-level keys of a YAML mapping document, used to tell a
// shipper configuration from an aggregator one.
func Keys(data []byte) ([]string, error) {
	var m map[string]yaml.Node
	if err := yaml.Unmarshal(data, &m); err != nil {
		return nil, &Error{Msg: "invalid YAML: " + yamlSyntaxError(err)}
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	return keys, nil
}

// yamlParserError matches the errors of yaml.v3's parser (as opposed to
// its scanner), which it reports at the 0-based line of the construct that
// is left open: "line 4" for a list opened on the file's fifth line.
var yamlParserError = regexp.MustCompile(`^yaml: line (\d+): (did not find expected (?:key|node content|'-' indicator|',' or '\]'|',' or '\}'|<document start>))$`)

// yamlSyntaxError describes a YAML syntax error with the file's own line
// numbers.
func yamlSyntaxError(err error) string {
	if m := yamlParserError.FindStringSubmatch(err.Error()); m != nil {
		line, _ := strconv.Atoi(m[1])
		return fmt.Sprintf("line %d: %s (the mapping or list that is not closed starts on line %d)", line+1, m[2], line+1)
	}
	return strings.TrimPrefix(err.Error(), "yaml: ")
}

var envRef = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)(:-([^}]*))?\}`)

func expandNode(n *yaml.Node, key string, lookup func(string) (string, bool)) error {
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			if err := expandNode(n.Content[i+1], Join(key, n.Content[i].Value), lookup); err != nil {
				return err
			}
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			if err := expandNode(c, Index(key, i), lookup); err != nil {
				return err
			}
		}
	case yaml.ScalarNode:
		if !strings.Contains(n.Value, "${") {
			return nil
		}
		v, err := expand(n.Value, lookup)
		if err != nil {
			return &Error{Key: key, Msg: err.Error()}
		}
		n.Value = v
		// An expanded value is data, never YAML syntax. A quoted or tagged
		// one stays a string; a plain one is resolved again, so that
		// ${PORT:-9092} can fill an integer.
		if n.Style == 0 {
			n.Tag = ""
		}
	}
	return nil
}

// expand substitutes ${VAR} and ${VAR:-default} in s.
func expand(s string, lookup func(string) (string, bool)) (string, error) {
	var firstErr error
	out := envRef.ReplaceAllStringFunc(s, func(ref string) string {
		m := envRef.FindStringSubmatch(ref)
		if v, ok := lookup(m[1]); ok && (v != "" || m[2] == "") {
			return v
		}
		if m[2] != "" {
			return m[3]
		}
		if firstErr == nil {
			firstErr = fmt.Errorf("environment variable %s is not set; set it or give a default as ${%s:-value}", m[1], m[1])
		}
		return ""
	})
	return out, firstErr
}

var (
	unknownField = regexp.MustCompile(`line (\d+): field (\S+) not found in type (\S+)`)
	badValue     = regexp.MustCompile(`line (\d+): cannot unmarshal !!(\w+) ` + "`" + `?([^` + "`" + `]*)` + "`" + `? into (\S+)`)
)

// keysByType maps the name of each struct type reachable from t, as yaml's
// errors name it (shipper.InputConfig), to its keys, so that an unknown key
// can be answered with the nearest known one.
func keysByType(t reflect.Type, out map[string][]string) map[string][]string {
	for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice || t.Kind() == reflect.Array || t.Kind() == reflect.Map {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct {
		return out
	}
	if _, seen := out[t.String()]; seen {
		return out
	}
	var keys []string
	out[t.String()] = nil
	for i := range t.NumField() {
		f := t.Field(i)
		name, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "-" || (!f.IsExported() && !f.Anonymous) {
			continue
		}
		if strings.Contains(opts, "inline") || (f.Anonymous && name == "") {
			inner := keysByType(f.Type, out)
			keys = append(keys, inner[f.Type.String()]...)
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		keys = append(keys, name)
		keysByType(f.Type, out)
	}
	out[t.String()] = keys
	return out
}

// describeDecodeError turns yaml's type errors into messages that name the
// key path, and the nearest known key for an unknown one.
func describeDecodeError(err error, root *yaml.Node, keys map[string][]string) error {
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		return &Error{Msg: err.Error()}
	}
	msgs := make([]string, 0, len(te.Errors))
	for _, e := range te.Errors {
		if m := unknownField.FindStringSubmatch(e); m != nil {
			line, _ := strconv.Atoi(m[1])
			hint := "; check its spelling and the configuration reference in docs/configuration.md"
			if n, ok := Nearest(m[2], keys[m[3]]); ok {
				hint = "; did you mean " + n + "?"
			}
			msgs = append(msgs, fmt.Sprintf("%s: unknown key%s", Join(keyAtLine(root, "", line, m[2]), m[2]), hint))
			continue
		}
		if m := badValue.FindStringSubmatch(e); m != nil {
			line, _ := strconv.Atoi(m[1])
			msgs = append(msgs, fmt.Sprintf("%s: %q is not a valid %s", valueKeyAtLine(root, "", line), m[3], humanType(m[4])))
			continue
		}
		msgs = append(msgs, e)
	}
	return &Error{Msg: strings.Join(msgs, "; ")}
}

func humanType(goType string) string {
	switch {
	case strings.Contains(goType, "Duration"):
		return "duration (write it like 5s, 250ms or 1m)"
	case strings.HasPrefix(goType, "[]"):
		return "list"
	case strings.HasPrefix(goType, "map"), strings.Contains(goType, "."):
		return "mapping"
	case strings.HasPrefix(goType, "int"), strings.HasPrefix(goType, "uint"):
		return "whole number"
	case strings.HasPrefix(goType, "float"):
		return "number"
	case goType == "bool":
		return "boolean (true or false)"
	}
	return goType
}

// keyAtLine finds the path of the mapping that holds the key name on line
// (one line may hold nested flow mappings: {if: {equal: ...}}).
func keyAtLine(n *yaml.Node, key string, line int, name string) string {
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Line == line && n.Content[i].Value == name {
				return key
			}
			if p := keyAtLine(n.Content[i+1], Join(key, n.Content[i].Value), line, name); p != "" {
				return p
			}
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			if p := keyAtLine(c, Index(key, i), line, name); p != "" {
				return p
			}
		}
	}
	return ""
}

// valueKeyAtLine finds the path of the scalar value on line, else names
// the line.
func valueKeyAtLine(n *yaml.Node, key string, line int) string {
	if p := scalarKeyAtLine(n, key, line); p != "" {
		return p
	}
	return fmt.Sprintf("line %d", line)
}

// scalarKeyAtLine finds the path of the scalar value on line, or "".
func scalarKeyAtLine(n *yaml.Node, key string, line int) string {
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if v.Kind == yaml.ScalarNode && v.Line == line {
				return Join(key, k.Value)
			}
			if p := scalarKeyAtLine(v, Join(key, k.Value), line); p != "" {
				return p
			}
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			if c.Kind == yaml.ScalarNode && c.Line == line {
				return Index(key, i)
			}
			if p := scalarKeyAtLine(c, Index(key, i), line); p != "" {
				return p
			}
		}
	}
	return ""
}

// SplitURLs is SplitList for URLs: an entry is split only at a comma that
// starts another URL ("http://a:9200,https://b:9200"), so that a comma in a
// password (https://user:pa,ss@host) does not cut it in two and print the
// rest as an address.
func SplitURLs(list []string) []string {
	var out []string
	for _, e := range list {
		for e != "" {
			cut := len(e)
			for i := strings.IndexByte(e, ','); i >= 0; {
				if next := strings.TrimSpace(e[i+1:]); next == "" || startsURL(next) {
					cut = i
					break
				}
				j := strings.IndexByte(e[i+1:], ',')
				if j < 0 {
					break
				}
				i += 1 + j
			}
			if v := strings.TrimSpace(e[:cut]); v != "" {
				out = append(out, v)
			}
			if cut == len(e) {
				break
			}
			e = e[cut+1:]
		}
	}
	return out
}

// startsURL says whether s starts with a scheme and "://".
func startsURL(s string) bool {
	i := strings.Index(s, "://")
	if i <= 0 {
		return false
	}
	for _, c := range s[:i] {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '+' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}

// SplitList splits entries that hold comma-separated values, so that a
// list can be given as one ${VAR}: brokers: ["${KAFKA_BROKERS}"] with
// KAFKA_BROKERS=k1:9092,k2:9092. Empty entries are dropped.
func SplitList(list []string) []string {
	var out []string
	for _, e := range list {
		for _, v := range strings.Split(e, ",") {
			if v = strings.TrimSpace(v); v != "" {
				out = append(out, v)
			}
		}
	}
	return out
}
