package shipper

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"go.uber.org/zap"
)

// criFieldNames are the fields a container log's file name gives
// (kubernetesFields).
var criFieldNames = []string{"kubernetes.pod.name", "kubernetes.namespace", "kubernetes.container.name", "container.name", "container.id"}

// KnownTypes are the document types the aggregator has a parser for; a
// type one or two letters away from one is taken for a misspelling.
var KnownTypes = []string{"service", "nginx", "container"}

// fieldNames returns the names an input's events carry, which templates
// such as kafka.topic may refer to: the event's own (type, node, path),
// static fields, path_fields captures and, for container logs, the
// Kubernetes fields from the file name.
func (in *InputConfig) fieldNames() []string {
	names := []string{"type", "node", "path"}
	names = append(names, slices.Sorted(maps.Keys(in.Fields))...)
	for _, seg := range strings.Split(in.PathFields, "/") {
		if strings.HasPrefix(seg, "{") && strings.HasSuffix(seg, "}") && len(seg) > 2 {
			names = append(names, seg[1:len(seg)-1])
		}
	}
	if in.Format == FormatCRI || in.Format == FormatDocker {
		names = append(names, criFieldNames...)
	}
	return names
}

// Overlaps lists the files, found now, that more than one input's globs
// match: only the first input reads them, so the others' type and fields
// never apply. For `sluice check` and a warning at start.
func (c *Config) Overlaps() []string {
	first := map[string]int{}
	var out []string
	for i := range c.Inputs {
		in := &input{cfg: c.Inputs[i]}
		for _, path := range in.matches(zap.NewNop()) {
			j, seen := first[path]
			if !seen {
				first[path] = i
				continue
			}
			if j != i {
				out = append(out, fmt.Sprintf("%s is matched by inputs[%d] (type %s) and inputs[%d] (type %s): only inputs[%d] reads it; narrow the globs or add an exclude",
					path, j, c.Inputs[j].Type, i, c.Inputs[i].Type, j))
			}
		}
	}
	return out
}
