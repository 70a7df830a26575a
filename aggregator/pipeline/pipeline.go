package pipeline

import (
	"errors"
	"slices"
	"strings"

	"github.com/sluicelog/sluice/internal/config"
	"github.com/sluicelog/sluice/parser"
)

// Pipeline is the compiled pipeline of one document type. It is safe for
// concurrent use.
type Pipeline struct {
	steps  []step
	writes []string
}

type step struct {
	name string
	when matcher // nil: always
	drop bool
	act  action
}

// Apply runs the steps over doc, changing it in place. keep is false when
// a drop step matched; droppedBy is then that step's name.
func (p *Pipeline) Apply(doc *parser.Doc) (keep bool, droppedBy string) {
	for i := range p.steps {
		s := &p.steps[i]
		if s.when != nil && !s.when.match(doc) {
			continue
		}
		if s.drop {
			return false, s.name
		}
		s.act.apply(doc)
	}
	return true, ""
}

// Writes returns the names of the fields the pipeline may set (set,
// add_fields, rename targets), sorted.
func (p *Pipeline) Writes() []string { return p.writes }

// Steps returns the names of the steps, in order.
func (p *Pipeline) Steps() []string {
	names := make([]string, len(p.steps))
	for i, s := range p.steps {
		names[i] = s.name
	}
	return names
}

// Drops returns the names of the drop steps, in order.
func (p *Pipeline) Drops() []string {
	var names []string
	for _, s := range p.steps {
		if s.drop {
			names = append(names, s.name)
		}
	}
	return names
}

// stepKinds are the YAML names of the step kinds, for messages.
const stepKinds = "drop, keep_fields, remove_fields, rename, add_fields or set"

// Compile compiles every pipeline of c, found under key (normally
// "pipelines"). Errors name the key path and the fix.
func (c Config) Compile(key string) (map[string]*Pipeline, error) {
	out := make(map[string]*Pipeline, len(c))
	for _, typ := range sortedKeys(c) {
		typeKey := config.Join(key, typ)
		if typ == "" || strings.ContainsAny(typ, " {}") {
			return nil, config.Errorf(typeKey, "%q is not a document type; use the input type, e.g. service or nginx", typ)
		}
		p, err := compilePipeline(c[typ], typeKey)
		if err != nil {
			return nil, err
		}
		out[typ] = p
	}
	return out, nil
}

func compilePipeline(steps []Step, key string) (*Pipeline, error) {
	p := &Pipeline{}
	seen := make(map[string]int, len(steps))
	for i := range steps {
		stepKey := config.Index(key, i)
		s, writes, err := compileStep(&steps[i], stepKey)
		if err != nil {
			return nil, err
		}
		if j, dup := seen[s.name]; dup {
			return nil, config.Errorf(config.Join(stepKey, "name"), "%q is already the name of %s; give each step its own name", s.name, config.Index(key, j))
		}
		seen[s.name] = i
		p.steps = append(p.steps, s)
		for _, w := range writes {
			if !slices.Contains(p.writes, w) {
				p.writes = append(p.writes, w)
			}
		}
	}
	slices.Sort(p.writes)
	return p, nil
}

// compileStep compiles one step and returns the fields it writes.
func compileStep(st *Step, key string) (step, []string, error) {
	s := step{name: st.Name}
	if st.Name == "" {
		return s, nil, config.Errorf(config.Join(key, "name"), "a step needs a name, used in metrics and errors, e.g. name: drop-health-checks")
	}
	if strings.ContainsAny(st.Name, " \t\n\"") {
		return s, nil, config.Errorf(config.Join(key, "name"), "%q has spaces or quotes; use letters, digits and dashes", st.Name)
	}
	var kinds []string
	for _, k := range []struct {
		name string
		set  bool
	}{
		{"drop", st.Drop != nil}, {"keep_fields", st.KeepFields != nil}, {"remove_fields", st.RemoveFields != nil},
		{"rename", st.Rename != nil}, {"add_fields", st.AddFields != nil}, {"set", st.Set != nil},
	} {
		if k.set {
			kinds = append(kinds, k.name)
		}
	}
	switch len(kinds) {
	case 0:
		return s, nil, config.Errorf(key, "step %q does nothing; give it one of %s", st.Name, stepKinds)
	case 1:
	default:
		return s, nil, config.Errorf(key, "step %q has %s; give each step one kind and split the others into steps of their own", st.Name, strings.Join(kinds, " and "))
	}
	if st.If != nil {
		m, err := compileCondition(st.If, config.Join(key, "if"))
		if err != nil {
			return s, nil, err
		}
		s.when = m
	}
	var writes []string
	switch kind := kinds[0]; kind {
	case "drop":
		if st.Drop.If == nil && st.If == nil {
			return s, nil, config.Errorf(config.Join(key, "drop.if"), "a drop step needs a condition, e.g. drop: {if: {equals: {url.original: /healthz}}}")
		}
		s.drop = true
		if st.Drop.If != nil {
			m, err := compileCondition(st.Drop.If, config.Join(key, "drop.if"))
			if err != nil {
				return s, nil, err
			}
			if s.when != nil {
				m = allOf{s.when, m}
			}
			s.when = m
		}
	case "keep_fields", "remove_fields":
		list := st.KeepFields
		if kind == "remove_fields" {
			list = st.RemoveFields
		}
		if len(list) == 0 {
			return s, nil, config.Errorf(config.Join(key, kind), "the list of fields is empty; name at least one field, e.g. [http.*, url.original]")
		}
		var patterns []pattern
		for i, name := range list {
			if err := checkFieldName(name, true); err != nil {
				return s, nil, config.Errorf(config.Index(config.Join(key, kind), i), "%v", err)
			}
			patterns = append(patterns, newPattern(name))
		}
		if kind == "keep_fields" {
			s.act = &keepFields{patterns: patterns}
			break
		}
		r := &removeFields{}
		for _, p := range patterns {
			if p.prefix {
				r.prefixes = append(r.prefixes, p)
			} else {
				r.exact = append(r.exact, newField(p.name))
			}
		}
		s.act = r
	case "rename":
		if len(st.Rename) == 0 {
			return s, nil, config.Errorf(config.Join(key, "rename"), "nothing to rename; write it like rename: {old.name: new.name}")
		}
		var r renameFields
		for _, from := range sortedKeys(st.Rename) {
			to := st.Rename[from]
			k := config.Join(config.Join(key, "rename"), from)
			if err := checkFieldName(from, false); err != nil {
				return s, nil, config.Errorf(k, "%v", err)
			}
			if err := checkFieldName(to, false); err != nil {
				return s, nil, config.Errorf(k, "%v", err)
			}
			if _, chained := st.Rename[to]; chained {
				return s, nil, config.Errorf(k, "%s is renamed to %s, which is renamed too; put the second rename in a step of its own", from, to)
			}
			r = append(r, renameField{from: newField(from), to: newField(to)})
			writes = append(writes, to)
		}
		s.act = r
	case "add_fields":
		if len(st.AddFields) == 0 {
			return s, nil, config.Errorf(config.Join(key, "add_fields"), "nothing to add; write it like add_fields: {labels.team: payments}")
		}
		var sf setFields
		for _, name := range sortedKeys(st.AddFields) {
			k := config.Join(config.Join(key, "add_fields"), name)
			if err := checkFieldName(name, false); err != nil {
				return s, nil, config.Errorf(k, "%v", err)
			}
			v, err := newValue(st.AddFields[name])
			if err != nil {
				return s, nil, config.Errorf(k, "%v", err)
			}
			sf = append(sf, setField{f: newField(name), v: v})
			writes = append(writes, name)
		}
		s.act = sf
	case "set":
		if err := checkFieldName(st.Set.Field, false); err != nil {
			return s, nil, config.Errorf(config.Join(key, "set.field"), "%v", err)
		}
		v, err := newValue(st.Set.Value)
		if err != nil {
			return s, nil, config.Errorf(config.Join(key, "set.value"), "%v", err)
		}
		s.act = setFields{{f: newField(st.Set.Field), v: v}}
		writes = append(writes, st.Set.Field)
	}
	return s, writes, nil
}

// checkFieldName rejects names no document can have.
func checkFieldName(name string, patternOK bool) error {
	switch {
	case name == "":
		return errors.New("the field name is empty")
	case strings.HasPrefix(name, ".") || strings.HasSuffix(name, ".") || strings.Contains(name, ".."):
		return errors.New("\"" + name + "\" is not a field name: dots separate names, e.g. http.request.method")
	case strings.Contains(name, "*") && !(patternOK && strings.HasSuffix(name, ".*") && !strings.Contains(strings.TrimSuffix(name, ".*"), "*")):
		if patternOK {
			return errors.New("\"" + name + "\": only a trailing .* is supported, e.g. http.*")
		}
		return errors.New("\"" + name + "\": wildcards are not supported here; name one field")
	}
	return nil
}
