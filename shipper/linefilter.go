package shipper

import (
	"bytes"
	"errors"
	"regexp"

	"github.com/sluicelog/sluice/internal/config"
)

// lineFilter drops an input's lines on the node, before they cost Kafka
// bytes: with include_lines, only lines matching one of them are shipped;
// lines matching one of exclude_lines are not. A multiline event is
// filtered as a whole, after it is joined. Dropped lines are handled all
// the same: the registry moves over them once the lines before them are
// acknowledged.
type lineFilter struct {
	include, exclude []lineMatcher
}

// lineMatcher is one expression: a plain string is looked for with
// bytes.Contains, which is ten times faster than the regular expression
// engine on it. The expressions are not joined into one alternation: Go's
// engine runs an alternation without a common literal prefix a byte at a
// time (about 20 µs for a 230-byte line with three words, against 0.1 µs
// for each word on its own).
type lineMatcher struct {
	literal []byte
	re      *regexp.Regexp
}

// newLineFilter returns the filter of a validated input, or nil if it has
// none.
func newLineFilter(in *InputConfig) *lineFilter {
	if len(in.IncludeLines) == 0 && len(in.ExcludeLines) == 0 {
		return nil
	}
	return &lineFilter{include: matchers(in.IncludeLines), exclude: matchers(in.ExcludeLines)}
}

func matchers(exprs []string) []lineMatcher {
	var out []lineMatcher
	for _, e := range exprs {
		re := regexp.MustCompile(e)
		if lit, complete := re.LiteralPrefix(); complete {
			out = append(out, lineMatcher{literal: []byte(lit)})
			continue
		}
		out = append(out, lineMatcher{re: re})
	}
	return out
}

func anyMatch(ms []lineMatcher, l []byte) bool {
	for _, m := range ms {
		if m.re == nil && bytes.Contains(l, m.literal) || m.re != nil && m.re.Match(l) {
			return true
		}
	}
	return false
}

// keep reports whether a line is shipped.
func (f *lineFilter) keep(l []byte) bool {
	if len(f.include) > 0 && !anyMatch(f.include, l) {
		return false
	}
	return !anyMatch(f.exclude, l)
}

// validateFilter checks include_lines and exclude_lines; key is the input's.
func (in *InputConfig) validateFilter(key string) error {
	var errs []error
	for _, list := range []struct {
		name  string
		exprs []string
	}{{"include_lines", in.IncludeLines}, {"exclude_lines", in.ExcludeLines}} {
		name := list.name
		for j, e := range list.exprs {
			if e == "" {
				errs = append(errs, config.Errorf(config.Index(config.Join(key, name), j), "is empty, which matches every line; remove it"))
			} else if _, err := regexp.Compile(e); err != nil {
				errs = append(errs, config.Errorf(config.Index(config.Join(key, name), j), "%q is not a regular expression (Go RE2 syntax): %v", e, err))
			}
		}
	}
	return errors.Join(errs...)
}
