package parser

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// serviceAliases maps well-known service log keys to ECS names. Timestamp
// keys are handled on their own.
var serviceAliases = map[string]string{
	"level":       "log.level",
	"severity":    "log.level",
	"lvl":         "log.level",
	"message":     "message",
	"msg":         "message",
	"service":     "service.name",
	"environment": "service.environment",
	"env":         "service.environment",
	"customer":    "organization.name",
}

var timestampKeys = []string{"@timestamp", "timestamp", "time", "ts"}

// ParseService parses a JSON service log line into doc.
func ParseService(line []byte, doc Doc) error {
	line = bytes.TrimSpace(line)
	if len(line) == 0 || line[0] != '{' {
		if json.Valid(line) {
			return fmt.Errorf("%w: %s", ErrNotObject, jsonKind(line))
		}
		return ErrNotJSON
	}
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.UseNumber()
	var obj map[string]any
	if err := dec.Decode(&obj); err != nil {
		return fmt.Errorf("%w: %v", ErrNotJSON, err)
	}
	if dec.More() {
		return fmt.Errorf("%w: data after the object", ErrNotJSON)
	}
	for _, k := range timestampKeys {
		v, ok := obj[k]
		if !ok {
			continue
		}
		if ts, ok := parseTimestamp(v); ok {
			doc["@timestamp"] = formatTime(ts)
			delete(obj, k)
			break
		}
	}
	for k, v := range obj {
		v = normalise(v)
		if alias, ok := serviceAliases[k]; ok {
			doc[alias] = aliasValue(alias, v)
			continue
		}
		doc[k] = v
	}
	return nil
}

// aliasValue makes the value of a well-known key the string its ECS field
// is mapped as, so that a service logging `"level": 30` or an object as its
// message does not cause a mapping conflict.
func aliasValue(alias string, v any) string {
	switch x := v.(type) {
	case string:
		if alias == "log.level" {
			return strings.ToLower(x)
		}
		return x
	case int64:
		if alias == "log.level" {
			return numericLevel(x)
		}
		return strconv.FormatInt(x, 10)
	}
	b, _ := json.Marshal(v) // values decoded from JSON marshal
	return string(b)
}

// numericLevel names the numeric levels of pino and bunyan.
func numericLevel(n int64) string {
	switch {
	case n <= 10:
		return "trace"
	case n <= 20:
		return "debug"
	case n <= 30:
		return "info"
	case n <= 40:
		return "warn"
	case n <= 50:
		return "error"
	}
	return "fatal"
}

func jsonKind(b []byte) string {
	switch b[0] {
	case '[':
		return "an array"
	case '"':
		return "a string"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	}
	return "a number"
}

// normalise turns json.Number into int64 or float64, recursively.
func normalise(v any) any {
	switch x := v.(type) {
	case json.Number:
		if i, err := x.Int64(); err == nil {
			return i
		}
		f, _ := x.Float64()
		return f
	case map[string]any:
		for k, e := range x {
			x[k] = normalise(e)
		}
	case []any:
		for i, e := range x {
			x[i] = normalise(e)
		}
	}
	return v
}

var timeLayouts = []string{time.RFC3339Nano, "2006-01-02 15:04:05.999999999", "2006-01-02T15:04:05.999999999", "2006-01-02 15:04:05.999999999Z07:00"}

// parseTimestamp reads a timestamp value; see the package documentation.
func parseTimestamp(v any) (time.Time, bool) {
	switch x := v.(type) {
	case string:
		for _, l := range timeLayouts {
			if t, err := time.Parse(l, x); err == nil {
				return t, true
			}
		}
	case json.Number:
		f, err := x.Float64()
		if err != nil || f < 0 || math.IsInf(f, 0) || f > 1e14 {
			return time.Time{}, false
		}
		if f >= 1e11 {
			return time.UnixMilli(int64(f)), true
		}
		sec, frac := math.Modf(f)
		return time.Unix(int64(sec), int64(frac*1e9)), true
	}
	return time.Time{}, false
}

func formatTime(t time.Time) string {
	return t.UTC().Format("2006-01-02T15:04:05.000Z07:00")
}
