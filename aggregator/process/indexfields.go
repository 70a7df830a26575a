package process

import (
	"maps"
	"slices"

	"github.com/sluicelog/sluice/internal/config"
	"github.com/sluicelog/sluice/internal/template"
)

// wellKnownFields are the names an index template most often refers to:
// the event's own, the shipper's usual static and path fields, their ECS
// names, and fields every parser sets. A template may name any other
// document field too (an app's own), but a name one or two letters away
// from one of these is a misspelling that would send every document to an
// "unknown" index.
var wellKnownFields = append(append([]string{
	"type", "node", "path",
	"log.level", "event.dataset", "host.name", "log.file.path",
	"kubernetes.namespace", "kubernetes.pod.name", "kubernetes.container.name", "container.name",
}, slices.Sorted(maps.Keys(fieldAliases))...), slices.Sorted(maps.Values(fieldAliases))...)

// CheckTemplateFields rejects a placeholder of t that is a near miss of a
// well-known field.
func CheckTemplateFields(key string, t *template.Template) error {
	for _, f := range t.Fields() {
		if n, ok := config.Nearest(f, wellKnownFields); ok {
			return config.Errorf(key, "{%s} is not a field Sluice sets; did you mean {%s}? (a field a document lacks renders as %q)", f, n, template.Missing)
		}
	}
	return nil
}
