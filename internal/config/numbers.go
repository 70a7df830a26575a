package config

import (
	"reflect"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

var (
	durationType    = reflect.TypeFor[time.Duration]()
	unmarshalerType = reflect.TypeFor[yaml.Unmarshaler]()
)

// checkNumbers rejects a fraction where the configuration wants a whole
// number or a duration: the YAML decoder would silently leave such a field
// at zero, so that `partitions: 0.5` became the default. It walks the
// document along the Go type it is decoded into; keys the type does not
// have are left to the decoder's own unknown-key error.
func checkNumbers(n *yaml.Node, t reflect.Type, key string) error {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if reflect.PointerTo(t).Implements(unmarshalerType) || t.Implements(unmarshalerType) {
		return nil // decodes itself
	}
	switch t.Kind() {
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			return nil
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			name := n.Content[i].Value
			if ft, ok := fieldType(t, name); ok {
				if err := checkNumbers(n.Content[i+1], ft, Join(key, name)); err != nil {
					return err
				}
			}
		}
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			return nil
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			if err := checkNumbers(n.Content[i+1], t.Elem(), Join(key, n.Content[i].Value)); err != nil {
				return err
			}
		}
	case reflect.Slice, reflect.Array:
		if n.Kind != yaml.SequenceNode {
			return nil
		}
		for i, c := range n.Content {
			if err := checkNumbers(c, t.Elem(), Index(key, i)); err != nil {
				return err
			}
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!float" {
			return nil
		}
		if t == durationType {
			return Errorf(key, "%s is not a duration; write it with a unit, e.g. 500ms, 5s or 1m", n.Value)
		}
		return Errorf(key, "%s is not a whole number; write an integer, e.g. 6", n.Value)
	}
	return nil
}

// fieldType finds the field that YAML key name decodes into, looking into
// inline structs too.
func fieldType(t reflect.Type, name string) (reflect.Type, bool) {
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		tag := f.Tag.Get("yaml")
		tagName, opts, _ := strings.Cut(tag, ",")
		if strings.Contains(opts, "inline") {
			inner := f.Type
			for inner.Kind() == reflect.Pointer {
				inner = inner.Elem()
			}
			if inner.Kind() == reflect.Struct {
				if ft, ok := fieldType(inner, name); ok {
					return ft, true
				}
			}
			continue
		}
		if tagName == "-" {
			continue
		}
		if tagName == "" {
			tagName = strings.ToLower(f.Name)
		}
		if tagName == name {
			return f.Type, true
		}
	}
	return nil, false
}
