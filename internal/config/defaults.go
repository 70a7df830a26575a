package config

import "reflect"

// FillZero gives every field of *dst that is zero the value of the same
// field of def, a value of dst's type: it is how a configuration applies
// its DefaultConfig, so that each default is written once, in that value.
// A key left out of the file, or written with its zero value, takes the
// default, as it always has in Sluice. Nested structs are filled field by
// field; pointers, slices and maps are taken whole when nil (an empty,
// non-nil list is a value: [] says "none"). Unexported fields are left
// alone.
func FillZero[T any](dst *T, def T) {
	fillZero(reflect.ValueOf(dst).Elem(), reflect.ValueOf(def))
}

func fillZero(dst, def reflect.Value) {
	if dst.Kind() == reflect.Struct {
		for i := range dst.NumField() {
			if dst.Type().Field(i).IsExported() {
				fillZero(dst.Field(i), def.Field(i))
			}
		}
		return
	}
	if dst.CanSet() && dst.IsZero() {
		dst.Set(def)
	}
}
