package testenv

import "strings"

// Field returns the value at a dotted path of a document's _source, which
// writes fields as nested objects ("log": {"level": ...}); a dotted key at
// any level ("log.level") is found too.
func Field(src map[string]any, path string) (any, bool) {
	if v, ok := src[path]; ok {
		return v, true
	}
	for i := strings.IndexByte(path, '.'); i > 0; {
		if m, ok := src[path[:i]].(map[string]any); ok {
			if v, ok := Field(m, path[i+1:]); ok {
				return v, true
			}
		}
		j := strings.IndexByte(path[i+1:], '.')
		if j < 0 {
			break
		}
		i += 1 + j
	}
	return nil, false
}

// Flat returns a document's _source with its objects flattened into dotted
// keys ({"log": {"level": "info"}} as {"log.level": "info"}), as tests
// name fields; lists are left as they are.
func Flat(src map[string]any) map[string]any {
	out := make(map[string]any, len(src))
	var walk func(prefix string, m map[string]any)
	walk = func(prefix string, m map[string]any) {
		for k, v := range m {
			if sub, ok := v.(map[string]any); ok && len(sub) > 0 {
				walk(prefix+k+".", sub)
				continue
			}
			out[prefix+k] = v
		}
	}
	walk("", src)
	return out
}
