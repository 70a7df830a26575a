package shipper

import (
	"regexp"
	"strings"

	"github.com/sluicelog/sluice/internal/config"
)

// lineFilter drops an input's lines on the node, before they cost Kafka
// bytes: with include_lines, only lines matching one of them are shipped;
// lines matching one of exclude_lines are not. A multiline event is
// filtered as a whole, after it is joined. Dropped lines are handled all
// the same: the registry moves over them once the lines before them are
// acknowledged.
type lineFilter struct {
	// include and exclude are each an input's expressions as one
	// alternation: one pass over the line whatever their number.
	include, exclude *regexp.Regexp
}

// newLineFilter returns the filter of a validated input, or nil if it has
// none.
func newLineFilter(in *InputConfig) *lineFilter {
	if len(in.IncludeLines) == 0 && len(in.ExcludeLines) == 0 {
		return nil
	}
	return &lineFilter{include: alternation(in.IncludeLines), exclude: alternation(in.ExcludeLines)}
}

func alternation(exprs []string) *regexp.Regexp {
	if len(exprs) == 0 {
		return nil
	}
	if len(exprs) == 1 {
		return regexp.MustCompile(exprs[0])
	}
	return regexp.MustCompile("(?:" + strings.Join(exprs, ")|(?:") + ")")
}

// keep reports whether a line is shipped.
func (f *lineFilter) keep(l []byte) bool {
	if f.include != nil && !f.include.Match(l) {
		return false
	}
	return f.exclude == nil || !f.exclude.Match(l)
}

// validateFilter checks include_lines and exclude_lines; key is the input's.
func (in *InputConfig) validateFilter(key string) error {
	for _, list := range []struct {
		name  string
		exprs []string
	}{{"include_lines", in.IncludeLines}, {"exclude_lines", in.ExcludeLines}} {
		name := list.name
		for j, e := range list.exprs {
			if e == "" {
				return config.Errorf(config.Index(config.Join(key, name), j), "is empty, which matches every line; remove it")
			}
			if _, err := regexp.Compile(e); err != nil {
				return config.Errorf(config.Index(config.Join(key, name), j), "%q is not a regular expression (Go RE2 syntax): %v", e, err)
			}
		}
	}
	return nil
}
