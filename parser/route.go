package parser

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"unsafe"
)

// RoutePlaceholder replaces the path segments Routes takes for ids.
const RoutePlaceholder = "{id}"

// maxRoute bounds the length of a route: a path longer than that is cut
// (at a segment) and ends in "/...", so that a client sending long junk
// paths cannot fill the route field's terms.
const maxRoute = 512

// RouteRule configures the routes of the paths under Prefix, which is
// normally where nginx sends one service's requests ("/api/v1/orders").
type RouteRule struct {
	// Prefix selects the paths the rule is for; "/" is every path. The
	// rule with the longest matching prefix applies.
	Prefix string
	// Templates are the service's own routes, "/api/v1/orders/{order}/lines/{n}":
	// a path with as many segments whose literal segments are equal takes
	// the first template that fits, as written. A segment in braces
	// matches any segment.
	Templates []string
	// IDs are patterns of segments that are ids, on top of the built-in
	// ones (numbers, UUIDs, hex, long tokens, e-mail addresses).
	IDs []string
	// Keep are patterns of segments that are never ids ("^v[0-9]+$"
	// would keep API versions if they were long enough to look like one).
	Keep []string
}

// Routes derives http.route from a request path: the path without its
// query, each segment that is an id replaced by RoutePlaceholder, so that
// /api/v1/orders/8123 and /api/v1/orders/8124 are one route. The zero
// Routes uses the built-in id patterns only. It is safe for concurrent use.
type Routes struct {
	rules []routeRule // longest prefix first
}

type routeRule struct {
	prefix    string
	templates [][]string // segments
	raw       []string   // the templates as written
	ids, keep []*regexp.Regexp
}

// NewRoutes compiles rules; errors name the rule and the bad entry.
func NewRoutes(rules []RouteRule) (*Routes, error) {
	r := &Routes{}
	for i, rule := range rules {
		if !strings.HasPrefix(rule.Prefix, "/") {
			return nil, fmt.Errorf("rule %d: prefix %q must start with /", i, rule.Prefix)
		}
		c := routeRule{prefix: rule.Prefix}
		for _, t := range rule.Templates {
			if !strings.HasPrefix(t, "/") {
				return nil, fmt.Errorf("rule %d: template %q must start with /", i, t)
			}
			c.templates = append(c.templates, strings.Split(t[1:], "/"))
			c.raw = append(c.raw, t)
		}
		var err error
		if c.ids, err = compileAll(rule.IDs); err != nil {
			return nil, fmt.Errorf("rule %d: ids: %w", i, err)
		}
		if c.keep, err = compileAll(rule.Keep); err != nil {
			return nil, fmt.Errorf("rule %d: keep: %w", i, err)
		}
		r.rules = append(r.rules, c)
	}
	slices.SortStableFunc(r.rules, func(a, b routeRule) int { return len(b.prefix) - len(a.prefix) })
	return r, nil
}

func compileAll(patterns []string) ([]*regexp.Regexp, error) {
	var out []*regexp.Regexp
	for _, p := range patterns {
		re, err := regexp.Compile(p)
		if err != nil {
			return nil, err
		}
		out = append(out, re)
	}
	return out, nil
}

// Route returns the route of path, a URL path with or without a query.
// A path that has no id is its own route, with no copy made.
func (r *Routes) Route(path string) string {
	if i := strings.IndexAny(path, "?#"); i >= 0 {
		path = path[:i]
	}
	if path == "" || path[0] != '/' {
		return path // "*" of OPTIONS, an absolute URL of a proxy request
	}
	var rule *routeRule
	if r != nil {
		for i := range r.rules {
			if strings.HasPrefix(path, r.rules[i].prefix) {
				rule = &r.rules[i]
				break
			}
		}
	}
	if rule != nil && len(rule.templates) > 0 {
		if t, ok := rule.template(path); ok {
			return t
		}
	}
	var b []byte // the route, once a segment was replaced
	start := 1
	for start <= len(path) {
		end := strings.IndexByte(path[start:], '/')
		if end < 0 {
			end = len(path)
		} else {
			end += start
		}
		seg := path[start:end]
		if seg != "" && isRouteID(seg, rule) {
			if b == nil {
				b = make([]byte, 0, len(path))
				b = append(b, path[:start]...)
			}
			b = append(b, RoutePlaceholder...)
		} else if b != nil {
			b = append(b, seg...)
		}
		if end < len(path) && b != nil {
			b = append(b, '/')
		}
		if b != nil && len(b) > maxRoute || b == nil && end > maxRoute {
			return cutRoute(b, path, end)
		}
		start = end + 1
	}
	if b == nil {
		return path
	}
	return unsafe.String(unsafe.SliceData(b), len(b)) // b is not written again
}

// cutRoute ends a route that grew past maxRoute.
func cutRoute(b []byte, path string, end int) string {
	if b == nil {
		b = []byte(path[:end])
	}
	if len(b) > maxRoute {
		b = b[:maxRoute]
	}
	// At a segment's start: a cut in the middle of one could split a
	// UTF-8 sequence. The route starts with '/', so there is one.
	b = b[:max(strings.LastIndexByte(string(b), '/'), 0)]
	return string(b) + "/..."
}

// template returns the first template of rule that path fits.
func (rule *routeRule) template(path string) (string, bool) {
	n := strings.Count(path, "/")
next:
	for i, segs := range rule.templates {
		if len(segs) != n {
			continue
		}
		rest := path[1:]
		for _, s := range segs {
			seg, after, _ := strings.Cut(rest, "/")
			rest = after
			if len(s) >= 2 && s[0] == '{' && s[len(s)-1] == '}' {
				continue
			}
			if seg != s {
				continue next
			}
		}
		return rule.raw[i], true
	}
	return "", false
}

// isRouteID reports whether a path segment is an id.
func isRouteID(seg string, rule *routeRule) bool {
	if rule != nil {
		for _, re := range rule.keep {
			if re.MatchString(seg) {
				return false
			}
		}
		for _, re := range rule.ids {
			if re.MatchString(seg) {
				return true
			}
		}
	}
	return looksLikeID(seg)
}

// looksLikeID is the built-in test: a number, hex of 8 characters or more
// with a digit (UUIDs, hashes, object ids), a token of 16 characters or
// more with digits and letters (ULIDs, base64 ids), or an e-mail address.
// Words, slugs and short codes ("v1", "2fa") are not.
func looksLikeID(seg string) bool {
	var digits, hex, letters, other int
	at := false
	for i := 0; i < len(seg); i++ {
		switch c := seg[i]; {
		case '0' <= c && c <= '9':
			digits++
		case 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F':
			hex++
		case 'g' <= c && c <= 'z' || 'G' <= c && c <= 'Z':
			letters++
		case c == '-' || c == '_' || c == '.' || c == '~' || c == '=':
			other++
		case c == '@':
			at = true
		default:
			return false // %-escapes and the like: not worth guessing
		}
	}
	switch {
	case at:
		return true
	case digits == len(seg):
		return true
	case digits > 0 && letters == 0 && digits+hex >= 8 && (other == 0 || isUUID(seg)):
		return true
	case digits >= 2 && hex+letters > 0 && len(seg) >= 16:
		return true
	}
	return false
}

// isUUID reports whether s is 8-4-4-4-12 hex digits.
func isUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if i == 8 || i == 13 || i == 18 || i == 23 {
			if s[i] != '-' {
				return false
			}
		} else if unhex(s[i]) >= 16 {
			return false
		}
	}
	return true
}
