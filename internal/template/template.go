// Package template renders names such as Kafka topics and Elasticsearch
// indices from an event's fields: "logs-{type}-{service}-{environment}",
// optionally with a date taken from the event's own time, "{+2006.01.02}".
//
// Substituted values are normalised to a safe alphabet, so a hostile field
// value ("..", "*", ",", upper case, a leading "-") can never produce an
// unexpected name.
package template

import (
	"fmt"
	"strings"
	"time"
)

// Missing is rendered for a field the event does not have.
const Missing = "unknown"

// OutOfRange is rendered for the date parts of an event whose time is
// outside the years 0000 to 9999 (or unknown): one fixed name, so that such
// times cannot create an index each, and the same event always renders the
// same name.
const OutOfRange = "out-of-range"

// Template is a parsed name template.
type Template struct {
	src     string
	parts   []part
	hasDate bool
}

type part struct {
	literal string
	field   string // set for {field}
	layout  string // set for {+layout}
}

// Parse parses a template. Fields are written {name}; a date from the event's
// time is written {+layout} with a Go time layout such as 2006.01.02.
func Parse(src string) (*Template, error) {
	t := &Template{src: src}
	rest := src
	for rest != "" {
		open := strings.IndexByte(rest, '{')
		if open < 0 {
			t.parts = append(t.parts, part{literal: rest})
			break
		}
		if open > 0 {
			t.parts = append(t.parts, part{literal: rest[:open]})
		}
		end := strings.IndexByte(rest[open:], '}')
		if end < 0 {
			return nil, fmt.Errorf("unclosed { in %q", src)
		}
		name := rest[open+1 : open+end]
		switch {
		case strings.HasPrefix(name, "+"):
			if len(name) == 1 {
				return nil, fmt.Errorf("empty date layout in %q; write it like {+2006.01.02}", src)
			}
			t.parts = append(t.parts, part{layout: name[1:]})
			t.hasDate = true
		case name == "" || strings.ContainsAny(name, "{ "):
			return nil, fmt.Errorf("bad field reference {%s} in %q", name, src)
		default:
			t.parts = append(t.parts, part{field: name})
		}
		rest = rest[open+end+1:]
	}
	if len(t.parts) == 0 {
		return nil, fmt.Errorf("template is empty")
	}
	return t, nil
}

// String returns the template source.
func (t *Template) String() string { return t.src }

// HasDate reports whether the template uses the event's time.
func (t *Template) HasDate() bool { return t.hasDate }

// Fields returns the names of the fields the template refers to.
func (t *Template) Fields() []string {
	var names []string
	for _, p := range t.parts {
		if p.field != "" {
			names = append(names, p.field)
		}
	}
	return names
}

// Pattern returns the template as a wildcard pattern matching every name it
// renders, e.g. "logs-*-*-*" for "logs-{type}-{service}-{environment}".
func (t *Template) Pattern() string {
	var b strings.Builder
	for _, p := range t.parts {
		if p.literal != "" {
			b.WriteString(strings.ToLower(p.literal))
		} else {
			b.WriteByte('*')
		}
	}
	return b.String()
}

// Render expands the template. lookup returns a field's value; at is the
// event's time for date parts, written as OutOfRange when it is zero or its
// UTC year is not 0000 to 9999. clean normalises each substituted value.
func (t *Template) Render(lookup func(string) (string, bool), at time.Time, clean func(string) string) string {
	date := func(layout string) string {
		if y := at.UTC().Year(); at.IsZero() || y < 0 || y > 9999 {
			return OutOfRange
		}
		return clean(at.UTC().Format(layout))
	}
	return t.render(lookup, date, clean)
}

// RenderWildcard expands the template with '*' for its date parts: the
// pattern of every dated name the same fields render, for looking a
// document up across its index's dates.
func (t *Template) RenderWildcard(lookup func(string) (string, bool), clean func(string) string) string {
	return t.render(lookup, func(string) string { return "*" }, clean)
}

func (t *Template) render(lookup func(string) (string, bool), date func(layout string) string, clean func(string) string) string {
	var b strings.Builder
	for _, p := range t.parts {
		switch {
		case p.field != "":
			v, ok := lookup(p.field)
			if !ok || v == "" {
				v = Missing
			}
			b.WriteString(clean(v))
		case p.layout != "":
			b.WriteString(date(p.layout))
		default:
			b.WriteString(p.literal)
		}
	}
	return b.String()
}

// IndexValue normalises a value for an Elasticsearch index name: lower case,
// letters, digits, '_', '.' and '-' only, no "..", at most 64 bytes.
func IndexValue(v string) string { return normalise(v, true) }

// TopicValue normalises a value for a Kafka topic name: letters, digits,
// '_', '.' and '-' only, no "..", at most 64 bytes.
func TopicValue(v string) string { return normalise(v, false) }

func normalise(v string, lower bool) string {
	const maxValue = 64
	var b strings.Builder
	b.Grow(len(v))
	for i := 0; i < len(v) && b.Len() < maxValue; i++ {
		c := v[i]
		switch {
		case c >= 'A' && c <= 'Z':
			if lower {
				c += 'a' - 'A'
			}
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '-', c == '_':
		case c == '.':
			if i+1 < len(v) && v[i+1] == '.' {
				c = '_'
			}
		default:
			c = '_'
		}
		b.WriteByte(c)
	}
	s := strings.TrimLeft(b.String(), "-_+.")
	if s == "" {
		return Missing
	}
	return s
}

// IndexName makes a rendered name a valid Elasticsearch index name: lower
// case, no leading '-', '_' or '+', not "." or "..", at most 255 bytes.
func IndexName(name string) string {
	name = strings.ToLower(name)
	name = strings.TrimLeft(name, "-_+")
	if len(name) > 255 {
		name = name[:255]
	}
	if name == "" || name == "." || name == ".." {
		return Missing
	}
	return name
}

// TopicName makes a rendered name a valid Kafka topic name: at most 249
// bytes, not "." or "..".
func TopicName(name string) string {
	if len(name) > 249 {
		name = name[:249]
	}
	if name == "" || name == "." || name == ".." {
		return Missing
	}
	return name
}

// PatternOf returns the wildcard pattern of the names rendered with the
// given values of some fields: those fields are substituted (normalised by
// clean), other fields and the date parts are '*'. PatternOf(nil, clean) is
// Pattern().
func (t *Template) PatternOf(values map[string]string, clean func(string) string) string {
	var b strings.Builder
	for _, p := range t.parts {
		v, ok := values[p.field]
		switch {
		case p.field != "" && ok:
			b.WriteString(clean(v))
		case p.literal != "":
			b.WriteString(strings.ToLower(p.literal))
		default:
			b.WriteByte('*')
		}
	}
	return b.String()
}
