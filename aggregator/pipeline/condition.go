package pipeline

import (
	"regexp"
	"slices"
	"strings"

	"github.com/sluicelog/sluice/internal/config"
	"github.com/sluicelog/sluice/parser"
)

// matcher is a compiled condition.
type matcher interface {
	match(doc *parser.Doc) bool
}

type allOf []matcher

func (a allOf) match(doc *parser.Doc) bool {
	for _, m := range a {
		if !m.match(doc) {
			return false
		}
	}
	return true
}

type anyOf []matcher

func (a anyOf) match(doc *parser.Doc) bool {
	for _, m := range a {
		if m.match(doc) {
			return true
		}
	}
	return false
}

type notOf struct{ m matcher }

func (n notOf) match(doc *parser.Doc) bool { return !n.m.match(doc) }

// equalsAny matches a field equal to any of its values (equals, in).
type equalsAny struct {
	f    field
	want []scalar
}

func (e *equalsAny) match(doc *parser.Doc) bool {
	v, ok := e.f.get(doc)
	if !ok {
		return false
	}
	for i := range e.want {
		if e.want[i].matches(v) {
			return true
		}
	}
	return false
}

type hasPrefix struct {
	f      field
	prefix string
}

func (p *hasPrefix) match(doc *parser.Doc) bool {
	v, ok := p.f.get(doc)
	return ok && eachText(v, func(s string) bool { return strings.HasPrefix(s, p.prefix) })
}

type matchesRegex struct {
	f  field
	re *regexp.Regexp
}

func (r *matchesRegex) match(doc *parser.Doc) bool {
	v, ok := r.f.get(doc)
	return ok && eachText(v, r.re.MatchString)
}

type exists struct{ f field }

func (e *exists) match(doc *parser.Doc) bool {
	_, ok := e.f.get(doc)
	return ok
}

// compare matches a numeric field greater (sign 1) or less (sign -1) than n.
type compare struct {
	f    field
	n    number
	sign int
}

func (c *compare) match(doc *parser.Doc) bool {
	v, ok := c.f.get(doc)
	return ok && eachNumber(v, func(n number) bool { return n.cmp(c.n) == c.sign })
}

// compileCondition compiles c, found under key.
func compileCondition(c *Condition, key string) (matcher, error) {
	var all allOf
	for _, f := range sortedKeys(c.Equals) {
		s, err := newScalar(c.Equals[f])
		if err != nil {
			return nil, config.Errorf(config.Join(key, "equals"), "%s: %v", f, err)
		}
		all = append(all, &equalsAny{f: newField(f), want: []scalar{s}})
	}
	for _, f := range sortedKeys(c.In) {
		vals := c.In[f]
		if len(vals) == 0 {
			return nil, config.Errorf(config.Join(key, "in"), "%s: the list of values is empty; give at least one, e.g. in: {%s: [a, b]}", f, f)
		}
		m := &equalsAny{f: newField(f)}
		for _, v := range vals {
			s, err := newScalar(v)
			if err != nil {
				return nil, config.Errorf(config.Join(key, "in"), "%s: %v", f, err)
			}
			m.want = append(m.want, s)
		}
		all = append(all, m)
	}
	for _, f := range sortedKeys(c.Prefix) {
		all = append(all, &hasPrefix{f: newField(f), prefix: c.Prefix[f]})
	}
	for _, f := range sortedKeys(c.Regex) {
		re, err := regexp.Compile(c.Regex[f])
		if err != nil {
			return nil, config.Errorf(config.Join(key, "regex"), "%s: %q is not a valid regular expression (%v); write RE2 syntax, see https://golang.org/s/re2syntax",
				f, c.Regex[f], strings.TrimPrefix(err.Error(), "error parsing regexp: "))
		}
		all = append(all, &matchesRegex{f: newField(f), re: re})
	}
	if c.Exists != nil && len(c.Exists) == 0 {
		return nil, config.Errorf(config.Join(key, "exists"), "the list of fields is empty; name at least one field")
	}
	for i, f := range c.Exists {
		if f == "" {
			return nil, config.Errorf(config.Index(config.Join(key, "exists"), i), "the field name is empty")
		}
		all = append(all, &exists{f: newField(f)})
	}
	for _, cmp := range []struct {
		op   string
		m    map[string]any
		sign int
	}{{"gt", c.GT, 1}, {"lt", c.LT, -1}} {
		for _, f := range sortedKeys(cmp.m) {
			n, ok := numberOf(cmp.m[f])
			if !ok {
				return nil, config.Errorf(config.Join(key, cmp.op), "%s: %v is not a number; write a number such as %s: {%s: 500}", f, cmp.m[f], cmp.op, f)
			}
			all = append(all, &compare{f: newField(f), n: n, sign: cmp.sign})
		}
	}
	for _, list := range []struct {
		op    string
		conds []Condition
	}{{"and", c.And}, {"or", c.Or}} {
		if list.conds == nil {
			continue
		}
		if len(list.conds) == 0 {
			return nil, config.Errorf(config.Join(key, list.op), "the list of conditions is empty")
		}
		ms := make([]matcher, len(list.conds))
		for i := range list.conds {
			m, err := compileCondition(&list.conds[i], config.Index(config.Join(key, list.op), i))
			if err != nil {
				return nil, err
			}
			ms[i] = m
		}
		if list.op == "and" {
			all = append(all, allOf(ms))
		} else {
			all = append(all, anyOf(ms))
		}
	}
	if c.Not != nil {
		m, err := compileCondition(c.Not, config.Join(key, "not"))
		if err != nil {
			return nil, err
		}
		all = append(all, notOf{m})
	}
	switch len(all) {
	case 0:
		return nil, config.Errorf(key, "the condition is empty; use equals, in, prefix, regex, exists, gt, lt, and, or or not")
	case 1:
		return all[0], nil
	}
	return all, nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
