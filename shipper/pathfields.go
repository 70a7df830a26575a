package shipper

import (
	"fmt"
	"path/filepath"
	"strings"
)

// pathFields turns the segments of a file's path into fields, following a
// template such as /var/log/services/{environment}/{customer}/{service}/.
// Each template segment is a literal, '*' (any one segment), or {name}
// (any one segment, captured as field name).
type pathFields struct {
	segments []string
}

func compilePathFields(tmpl string) (*pathFields, error) {
	if !filepath.IsAbs(tmpl) {
		return nil, fmt.Errorf("%q must be an absolute path such as /var/log/services/{environment}/{service}/", tmpl)
	}
	segs := strings.Split(strings.Trim(filepath.Clean(tmpl), "/"), "/")
	for _, s := range segs {
		if strings.HasPrefix(s, "{") != strings.HasSuffix(s, "}") || (strings.HasPrefix(s, "{") && len(s) < 3) {
			return nil, fmt.Errorf("segment %q must be a literal, * or a whole {name}", s)
		}
	}
	return &pathFields{segments: segs}, nil
}

// extract adds the fields captured from path to out and reports whether the
// path matched the template.
func (p *pathFields) extract(path string, out map[string]string) bool {
	parts := strings.Split(strings.Trim(filepath.Clean(path), "/"), "/")
	if len(parts) < len(p.segments) {
		return false
	}
	captured := make(map[string]string, len(p.segments))
	for i, seg := range p.segments {
		switch {
		case seg == "*":
		case strings.HasPrefix(seg, "{"):
			captured[seg[1:len(seg)-1]] = parts[i]
		case seg != parts[i]:
			return false
		}
	}
	for k, v := range captured {
		out[k] = v
	}
	return true
}
