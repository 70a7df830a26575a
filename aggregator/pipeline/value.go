package pipeline

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// number is an int64 or a float64.
type number struct {
	isInt bool
	i     int64
	f     float64
}

func intNumber(i int64) number     { return number{isInt: true, i: i, f: float64(i)} }
func floatNumber(f float64) number { return number{f: f} }

// cmp compares n with o: -1, 0 or 1. NaN compares as unequal to all (2).
func (n number) cmp(o number) int {
	if n.isInt && o.isInt {
		switch {
		case n.i < o.i:
			return -1
		case n.i > o.i:
			return 1
		}
		return 0
	}
	switch {
	case n.f < o.f:
		return -1
	case n.f > o.f:
		return 1
	case n.f == o.f:
		return 0
	}
	return 2
}

// parseNumber reads a decimal integer or floating point number.
func parseNumber(s string) (number, bool) {
	s = strings.TrimSpace(s)
	if s == "" {
		return number{}, false
	}
	if i, err := strconv.ParseInt(s, 10, 64); err == nil {
		return intNumber(i), true
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(f) {
		return number{}, false
	}
	return floatNumber(f), true
}

// numberOf reads a document or configuration value as a number: numbers of
// any Go type, or numeric strings.
func numberOf(v any) (number, bool) {
	switch x := v.(type) {
	case int64:
		return intNumber(x), true
	case int:
		return intNumber(int64(x)), true
	case int32:
		return intNumber(int64(x)), true
	case uint64:
		if x <= math.MaxInt64 {
			return intNumber(int64(x)), true
		}
		return floatNumber(float64(x)), true
	case float64:
		if math.IsNaN(x) {
			return number{}, false
		}
		return floatNumber(x), true
	case float32:
		return floatNumber(float64(x)), true
	case string:
		return parseNumber(x)
	}
	return number{}, false
}

// textOf renders a scalar document value as text; ok is false for objects
// and lists.
func textOf(v any) (string, bool) {
	switch x := v.(type) {
	case string:
		return x, true
	case int64:
		return strconv.FormatInt(x, 10), true
	case int:
		return strconv.Itoa(x), true
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64), true
	case bool:
		return strconv.FormatBool(x), true
	}
	return "", false
}

// scalar is a compiled configuration value to compare document values with.
type scalar struct {
	text    string // the value as text
	num     number
	numeric bool // a number, or a string that reads as one
	isBool  bool
	b       bool
}

func newScalar(v any) (scalar, error) {
	switch x := v.(type) {
	case nil:
		return scalar{}, fmt.Errorf("a value is empty (null); to test for a missing field write not: {exists: FIELD}")
	case bool:
		return scalar{text: strconv.FormatBool(x), isBool: true, b: x}, nil
	case string:
		n, ok := parseNumber(x)
		return scalar{text: x, num: n, numeric: ok}, nil
	}
	if n, ok := numberOf(v); ok {
		t, _ := textOf(v)
		if n.isInt {
			t = strconv.FormatInt(n.i, 10)
		}
		return scalar{text: t, num: n, numeric: true}, nil
	}
	return scalar{}, fmt.Errorf("%v is not a single value (string, number or boolean)", v)
}

// matches reports whether the document value v equals s; a list matches
// when any element does.
func (s *scalar) matches(v any) bool {
	switch x := v.(type) {
	case string:
		if x == s.text {
			return true
		}
		if s.numeric {
			n, ok := parseNumber(x)
			return ok && n.cmp(s.num) == 0
		}
		return false
	case bool:
		if s.isBool {
			return x == s.b
		}
		return s.text == strconv.FormatBool(x)
	case []any:
		for _, e := range x {
			if s.matches(e) {
				return true
			}
		}
		return false
	case []string:
		for _, e := range x {
			if s.matches(e) {
				return true
			}
		}
		return false
	case []float64:
		for _, e := range x {
			if s.matches(e) {
				return true
			}
		}
		return false
	}
	if !s.numeric {
		return false
	}
	n, ok := numberOf(v)
	return ok && n.cmp(s.num) == 0
}

// eachText calls fn with the text of v, or of each element of a list, until
// fn returns true.
func eachText(v any, fn func(string) bool) bool {
	switch x := v.(type) {
	case string:
		return fn(x)
	case []any:
		for _, e := range x {
			if t, ok := textOf(e); ok && fn(t) {
				return true
			}
		}
		return false
	case []string:
		for _, e := range x {
			if fn(e) {
				return true
			}
		}
		return false
	case []float64:
		for _, e := range x {
			if fn(strconv.FormatFloat(e, 'f', -1, 64)) {
				return true
			}
		}
		return false
	}
	if t, ok := textOf(v); ok {
		return fn(t)
	}
	return false
}

// eachNumber calls fn with v as a number, or with each element of a list,
// until fn returns true.
func eachNumber(v any, fn func(number) bool) bool {
	switch x := v.(type) {
	case []any:
		for _, e := range x {
			if n, ok := numberOf(e); ok && fn(n) {
				return true
			}
		}
		return false
	case []float64:
		for _, e := range x {
			if fn(floatNumber(e)) {
				return true
			}
		}
		return false
	case []string:
		for _, e := range x {
			if n, ok := parseNumber(e); ok && fn(n) {
				return true
			}
		}
		return false
	}
	n, ok := numberOf(v)
	return ok && fn(n)
}
