package main

import (
	"fmt"
	"os"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/sluicelog/sluice/aggregator"
	"github.com/sluicelog/sluice/runner"
	"github.com/sluicelog/sluice/shipper"
)

// configReference is where every configuration key is documented.
const configReference = "../../docs/configuration.md"

// TestConfigurationReferenceCoversEveryKey checks that each key the
// shipper, the aggregator and sluice run read from YAML has a row in
// docs/configuration.md (its path, a `prefix.*` row covering it, or a row
// naming it after a slash: `kafka.tls.cert_file` / `key_file`), so the
// reference cannot silently fall behind the code.
func TestConfigurationReferenceCoversEveryKey(t *testing.T) {
	doc, err := os.ReadFile(configReference)
	if err != nil {
		t.Fatal(err)
	}
	documented := documentedKeys(string(doc))
	for name, cfg := range map[string]any{"shipper": shipper.Config{}, "aggregator": aggregator.Config{}, "run": runner.Config{}} {
		for _, key := range yamlKeys(reflect.TypeOf(cfg), "") {
			if !covered(key, documented) {
				t.Errorf("%s key %s is not in %s", name, key, configReference)
			}
		}
	}
}

var rowKey = regexp.MustCompile("^\\| *(`[^|]*)\\|")
var backticked = regexp.MustCompile("`([^`]+)`")

// documentedKeys returns the keys in the first column of the reference's
// tables. A bare name after a slash takes the prefix of the key before it.
func documentedKeys(doc string) map[string]bool {
	keys := map[string]bool{}
	for _, line := range strings.Split(doc, "\n") {
		m := rowKey.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		prev := ""
		for _, k := range backticked.FindAllStringSubmatch(m[1], -1) {
			key := k[1]
			if strings.HasPrefix(key, ".") && prev != "" { // `a.b`, `.c`: a.c
				key = prev[:strings.LastIndex(prev, ".")] + key
			} else if !strings.Contains(key, ".") && prev != "" {
				if i := strings.LastIndex(prev, "."); i >= 0 {
					key = prev[:i+1] + key
				}
			}
			keys[key] = true
			prev = key
		}
	}
	return keys
}

// covered reports whether key has a row: its own, a `prefix.*` one, its
// list's (`parsers.routes` describes the members of its entries), or one
// of a map's entries (`pipelines.<type>` for pipelines).
func covered(key string, documented map[string]bool) bool {
	if documented[key] {
		return true
	}
	if list, _, ok := strings.Cut(key, "[]."); ok && documented[list] {
		return true
	}
	for k := range documented {
		if p, ok := strings.CutSuffix(k, ".*"); ok && strings.HasPrefix(key, p+".") {
			return true
		}
		if strings.HasPrefix(k, key+".<") {
			return true
		}
	}
	return false
}

// yamlKeys lists the leaf key paths of a configuration type: lists as
// name[], inline structs flattened, types with their own YAML reading as
// leaves.
func yamlKeys(t reflect.Type, prefix string) []string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	var keys []string
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		tag := f.Tag.Get("yaml")
		name, opts, _ := strings.Cut(tag, ",")
		if name == "-" {
			continue
		}
		ft := f.Type
		for ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		if strings.Contains(opts, "inline") {
			keys = append(keys, yamlKeys(ft, prefix)...)
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		path := prefix + name
		switch {
		case ft.Kind() == reflect.Slice && elemStruct(ft.Elem()):
			keys = append(keys, yamlKeys(ft.Elem(), path+"[].")...)
		case ft.Kind() == reflect.Struct && ft.NumField() > 0 && !ownYAML(ft) && ft.PkgPath() != "time":
			keys = append(keys, yamlKeys(ft, path+".")...)
		default:
			keys = append(keys, path)
		}
	}
	return keys
}

func elemStruct(t reflect.Type) bool {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t.Kind() == reflect.Struct && !ownYAML(t)
}

func ownYAML(t reflect.Type) bool {
	m, ok := reflect.PointerTo(t).MethodByName("UnmarshalYAML")
	return ok && m.Type != nil
}

// TestConfigurationReferenceDefaults checks that the default the
// reference gives for a key (the first `value` in its row's second
// column) is the default the code applies, for keys whose default is a
// plain value: a number, a duration, a word or a boolean.
func TestConfigurationReferenceDefaults(t *testing.T) {
	doc, err := os.ReadFile(configReference)
	if err != nil {
		t.Fatal(err)
	}
	sections := documentedDefaults(string(doc))
	// The aggregator's keys are in its own table and in those of the
	// sections after it (layout, pipelines, credentials); the shipper's
	// only in its table.
	aggGiven := map[string]string{}
	for section, defaults := range sections {
		if !strings.HasPrefix(section, "Shipper") && !strings.HasPrefix(section, "Single node") {
			for k, v := range defaults {
				aggGiven[k] = v
			}
		}
	}
	for k, v := range sections["Aggregator (`sluice aggregate`)"] {
		aggGiven[k] = v
	}
	given := map[string]map[string]string{"shipper": sections["Shipper (`sluice ship`)"], "aggregator": aggGiven}
	ship := shipper.Config{}
	ship.SetDefaults()
	agg := aggregator.Config{}
	agg.SetDefaults()
	checked := 0
	for name, cfg := range map[string]reflect.Value{"shipper": reflect.ValueOf(ship), "aggregator": reflect.ValueOf(agg)} {
		for key, v := range yamlValues(cfg, "") {
			want, ok := given[name][want0(key)]
			if !ok || strings.HasPrefix(want, "$") || given[name][want] != "" {
				continue // not a value: an environment variable, another key
			}
			got, comparable := plainValue(v)
			if !comparable || v.IsZero() {
				continue // resolved where it is used, or a pointer left unset
			}
			checked++
			if !sameDefault(got, want, v) {
				t.Errorf("%s key %s: the code's default is %s, %s says %s", name, key, got, configReference, want)
			}
		}
	}
	t.Logf("%d defaults compared", checked)
	if checked < 40 {
		t.Errorf("only %d defaults compared: the reference's tables or this test's reading of them changed", checked)
	}
}

var rowDefault = regexp.MustCompile("^\\| *(`[^|]*)\\| *`([^`]+)`")

// documentedDefaults maps, per ## section, each key of a table row to
// the first value in backticks of its default column, when the column
// starts with one.
func documentedDefaults(doc string) map[string]map[string]string {
	sections := map[string]map[string]string{}
	section := ""
	for _, line := range strings.Split(doc, "\n") {
		if h, ok := strings.CutPrefix(line, "## "); ok {
			section = h
		}
		m := rowDefault.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		if sections[section] == nil {
			sections[section] = map[string]string{}
		}
		for _, k := range backticked.FindAllStringSubmatch(m[1], -1) {
			sections[section][k[1]] = m[2]
		}
	}
	return sections
}

// want0 is the key as the reference writes it.
func want0(key string) string { return key }

// yamlValues maps the leaf key paths of a configuration value to their
// values (lists are not entered).
func yamlValues(v reflect.Value, prefix string) map[string]reflect.Value {
	out := map[string]reflect.Value{}
	for v.Kind() == reflect.Pointer {
		if v.IsNil() {
			return out
		}
		v = v.Elem()
	}
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "-" {
			continue
		}
		fv := v.Field(i)
		if strings.Contains(opts, "inline") {
			for k, x := range yamlValues(fv, prefix) {
				out[k] = x
			}
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		ft := f.Type
		for ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		if ft.Kind() == reflect.Struct && ft.NumField() > 0 && !ownYAML(ft) && ft.PkgPath() != "time" {
			for k, x := range yamlValues(fv, prefix+name+".") {
				out[k] = x
			}
			continue
		}
		out[prefix+name] = fv
	}
	return out
}

// plainValue formats a number, duration, string or boolean; others are
// not compared.
func plainValue(v reflect.Value) (string, bool) {
	for v.Kind() == reflect.Pointer {
		if v.IsNil() {
			return "", false
		}
		v = v.Elem()
	}
	if d, ok := v.Interface().(time.Duration); ok {
		return d.String(), true
	}
	switch v.Kind() {
	case reflect.Int, reflect.Int32, reflect.Int64, reflect.Uint, reflect.Uint32, reflect.Uint64, reflect.Float64:
		return fmt.Sprint(v.Interface()), true
	case reflect.String, reflect.Bool:
		return fmt.Sprint(v.Interface()), true
	}
	return "", false
}

// sameDefault compares a code default with the reference's, reading the
// reference's as the field's type (1s and 1000ms are the same duration).
func sameDefault(got, want string, v reflect.Value) bool {
	for v.Kind() == reflect.Pointer {
		v = v.Elem()
	}
	if _, ok := v.Interface().(time.Duration); ok {
		d, err := time.ParseDuration(want)
		return err == nil && d == v.Interface().(time.Duration)
	}
	return got == want
}
