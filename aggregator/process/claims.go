package process

import (
	"encoding/json"
	"strings"

	"github.com/sluicelog/sluice/parser"
)

// A document's identity — its node, file, offset and the fields the shipper
// knows from the path, Kubernetes or the input's static fields
// (organization.name, service.name, kubernetes.namespace, ...) — is the
// shipper's word, not the line's: a line that writes
// {"customer": "victimcorp"} or {"host": {"name": "other-node"}} must not
// be found under that tenant or node. So these fields replace what the line
// says, flat or nested. A different value the line claimed is kept, as
// text, under labels.claimed_<field with dots as underscores>, where it
// names nothing but shows the attempt.

// claimedPrefix starts the label a line's overruled value is kept under.
const claimedPrefix = "labels.claimed_"

// overrule sets key to the shipper's value v, keeping a different value the
// line gave it.
func overrule(doc *parser.Doc, key parser.Key, v any) {
	if old, ok := doc.GetKey(key); ok && old != v {
		keepClaim(doc, key.String(), old, v)
	}
	doc.SetKey(key, v)
}

// overruleNested takes out of the line's objects the values at the dotted
// names the shipper set ({"host": {"name": ...}} for host.name), which
// Elasticsearch would otherwise index as a second value of the field. A
// document without objects pays one pass over its fields.
func overruleNested(doc *parser.Doc, fields []docField, fixed [4]docField) {
	var claims []claim
	for _, f := range doc.Fields() {
		m, ok := f.Value.(map[string]any)
		if !ok {
			continue
		}
		for _, list := range [][]docField{fields, fixed[:]} {
			for _, s := range list {
				name := s.key.String()
				if len(name) <= len(f.Key) || name[len(f.Key)] != '.' || !strings.HasPrefix(name, f.Key) {
					continue
				}
				for {
					old, ok := removePath(m, name[len(f.Key)+1:])
					if !ok {
						break
					}
					claims = append(claims, claim{name, old, s.v})
				}
			}
		}
	}
	for _, c := range claims {
		keepClaim(doc, c.name, c.old, c.v)
	}
}

type claim struct {
	name   string
	old, v any
}

// removePath removes the value at a dotted path in m, written flat
// ("name.first") or nested ({"name": {"first": ...}}), and returns it.
func removePath(m map[string]any, path string) (any, bool) {
	if v, ok := m[path]; ok {
		delete(m, path)
		return v, true
	}
	for i := range len(path) {
		if path[i] != '.' {
			continue
		}
		if sub, ok := m[path[:i]].(map[string]any); ok {
			if v, ok := removePath(sub, path[i+1:]); ok {
				return v, true
			}
		}
	}
	return nil, false
}

// keepClaim keeps old, the value a line gave the shipper's field name, if
// it differs from the shipper's v.
func keepClaim(doc *parser.Doc, name string, old, v any) {
	if old == nil || old == v {
		return
	}
	text, ok := old.(string)
	if !ok {
		b, err := json.Marshal(old)
		if err != nil {
			return
		}
		text = string(b)
	}
	if s, ok := v.(string); ok && s == text {
		return
	}
	doc.Set(claimedPrefix+strings.ReplaceAll(name, ".", "_"), text)
}
