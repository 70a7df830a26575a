package deliver

import (
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/sluicelog/sluice/internal/config"
	"github.com/sluicelog/sluice/internal/template"
)

// Codecs and index modes of elasticsearch.codec and index_mode.
var (
	codecs     = []string{"default", "best_compression"}
	indexModes = []string{"standard", "logsdb"}
)

// SetDefaults fills unset values.
func (l *Layout) SetDefaults() {
	if l.Shards == 0 {
		l.Shards = 1
	}
	if l.Replicas == nil {
		one := 1
		l.Replicas = &one
	}
	if l.Codec == "" {
		l.Codec = "default"
	}
	if l.IndexMode == "" {
		l.IndexMode = "standard"
	}
}

// retentionValue is an Elasticsearch time value in whole units, days to
// seconds.
var retentionValue = regexp.MustCompile(`^[1-9][0-9]*(d|h|m|s)$`)

// Validate rejects a layout the index template cannot express, for the
// index names of index. Keys are under prefix (elasticsearch).
func (l *Layout) Validate(prefix string, index *template.Template) error {
	if l.Shards < 1 || l.Shards > 1024 {
		return config.Errorf(prefix+".shards", "must be between 1 and 1024, got %d", l.Shards)
	}
	if *l.Replicas < 0 {
		return config.Errorf(prefix+".replicas", "must be 0 or more, got %d", *l.Replicas)
	}
	if !slices.Contains(codecs, l.Codec) {
		return config.Errorf(prefix+".codec", "%q must be one of %s", l.Codec, strings.Join(codecs, ", "))
	}
	if !slices.Contains(indexModes, l.IndexMode) {
		return config.Errorf(prefix+".index_mode", "%q must be one of %s", l.IndexMode, strings.Join(indexModes, ", "))
	}
	if len(l.Retention) > 0 && !l.DataStream && !index.HasDate() {
		return config.Errorf(prefix+".retention", "needs data streams or dated indices: an index without a date holds all its data, "+
			"and deleting it by age would delete everything; set %s.data_stream: true, or add a date such as -{+2006.01.02} to %s.index", prefix, prefix)
	}
	_, err := l.retentionRules(prefix, index)
	return err
}

// retentionRule is one entry of elasticsearch.retention: the index
// pattern it covers and how long data there is kept.
type retentionRule struct {
	key     string // as configured: default, nginx, */prod, nginx/prod
	name    string // for template and policy names: default, nginx, all-prod, nginx-prod
	pattern string // of the index names it covers
	// rank orders rules from the least to the most specific; the index
	// template of a more specific rule has a higher priority.
	rank int
	keep string // 30d
}

// Fields of elasticsearch.index that hold the document type and the
// environment.
var (
	typeFields = []string{"type", "event.dataset"}
	envFields  = []string{"environment", "service.environment"}
)

// retentionRules returns the rules of Retention in priority order, with
// their patterns over index. A type or environment rule needs a field of
// index that holds it.
func (l *Layout) retentionRules(prefix string, index *template.Template) ([]retentionRule, error) {
	var rules []retentionRule
	fields := index.Fields()
	has := func(names []string) bool {
		return slices.ContainsFunc(names, func(n string) bool { return slices.Contains(fields, n) })
	}
	for _, key := range sortedKeys(l.Retention) {
		k := config.Join(prefix+".retention", key)
		keep := l.Retention[key]
		if !retentionValue.MatchString(keep) {
			return nil, config.Errorf(k, "%q must be a whole number of days, hours, minutes or seconds, such as 30d or 12h", keep)
		}
		typ, env, _ := strings.Cut(key, "/")
		if key == "default" {
			rules = append(rules, retentionRule{key: key, name: key, pattern: index.Pattern(), keep: keep})
			continue
		}
		name := func(v string) bool { return v != "" && template.IndexValue(v) == v }
		if !(typ == "*" || name(typ)) || (strings.Contains(key, "/") && !name(env)) || (!strings.Contains(key, "/") && typ == "*") {
			return nil, config.Errorf(k, "keys are default, a document type (nginx), */<environment> or <type>/<environment>, in lower case")
		}
		values := map[string]string{}
		rule := retentionRule{key: key, keep: keep}
		if typ != "*" {
			if !has(typeFields) {
				return nil, config.Errorf(k, "%s.index has no {type} (or {event.dataset}) to tell %s documents apart by", prefix, typ)
			}
			values["type"], values["event.dataset"] = typ, Dataset(typ)
			rule.rank++
		}
		if env != "" {
			if !has(envFields) {
				return nil, config.Errorf(k, "%s.index has no {environment} to tell environment %s apart by", prefix, env)
			}
			values["environment"], values["service.environment"] = env, env
			rule.rank += 2
		}
		if rule.rank == 0 {
			return nil, config.Errorf(k, "names no document type or environment; write default for all")
		}
		rule.name = strings.ReplaceAll(strings.ReplaceAll(key, "*", "all"), "/", "-")
		rule.pattern = index.PatternOf(values, template.IndexValue)
		rules = append(rules, rule)
	}
	slices.SortStableFunc(rules, func(a, b retentionRule) int { return a.rank - b.rank })
	return rules, nil
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// String describes a rule, for `sluice setup`.
func (r retentionRule) String() string {
	return fmt.Sprintf("%s (%s): %s", r.key, r.pattern, r.keep)
}

// Datasets: event.dataset by document type, as Elastic's integrations name
// them (module.fileset). A type not listed keeps its own name.
var datasets = map[string]string{"nginx": "nginx.access"}

// Dataset returns the event.dataset of a document type.
func Dataset(typ string) string {
	if d, ok := datasets[typ]; ok {
		return d
	}
	return typ
}
