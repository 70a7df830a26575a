package kubernetes

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/sluicelog/sluice/internal/event"
)

// Container is what one container's lines carry, and the hints its pod's
// annotations give for reading them. Built once per pod change and shared:
// it must not be modified.
type Container struct {
	// Fields are added to the fields of the container's lines, over the
	// input's own: kubernetes.*, container.*, and service and environment
	// when the metadata names them.
	Fields map[string]string
	// Type is the sluice.io/type hint: the document type of the lines
	// instead of the input's ("" keeps it).
	Type string
	// Exclude is the sluice.io/exclude hint: nothing of the container is
	// shipped.
	Exclude bool
	// Multiline is the sluice.io/multiline hint, a preset or pattern, for
	// the multiline reader to use ("" keeps the input's setting).
	Multiline string
	// IncludeLines and ExcludeLines are the sluice.io/include-lines and
	// sluice.io/exclude-lines hints, one regular expression a line: they
	// replace the input's list of the same name (nil keeps it).
	IncludeLines, ExcludeLines []string
	// NginxFormat is the sluice.io/nginx-format hint: the named format or
	// log_format string of an nginx container's access log lines; it
	// travels in the event.FieldNginxFormat field.
	NginxFormat string
	// Ignored says which hints were not understood, and why, for a
	// warning.
	Ignored []string
}

// Hint annotation keys: sluice.io/<key> applies to every container of the
// pod, sluice.io.<container>/<key> to one container, and wins.
const (
	HintPrefix      = "sluice.io/"
	HintType        = "type"
	HintExclude     = "exclude"
	HintMultiline   = "multiline"
	HintInclude     = "include-lines"
	HintExclLines   = "exclude-lines"
	HintNginxFormat = "nginx-format"
	HintService     = "service"
	HintEnvironment = "environment"
)

// Owner label the Deployment controller puts on the pods of a ReplicaSet,
// whose name is the Deployment's name, "-" and this hash: the Deployment is
// found without reading ReplicaSets (and without a role to read them).
const podTemplateHash = "pod-template-hash"

// hint returns the value of hint key for container c of pod annotations
// ann: the container's own, else the pod's.
func hint(ann map[string]string, c, key string) (string, bool) {
	if v, ok := ann["sluice.io."+c+"/"+key]; ok {
		return v, true
	}
	v, ok := ann[HintPrefix+key]
	return v, ok
}

// dedot makes a label or annotation key one document field: its dots
// would otherwise nest it (app.kubernetes.io/name under app), and a label
// app next to app.kubernetes.io/name could not be mapped.
func dedot(k string) string { return strings.ReplaceAll(k, ".", "_") }

// buildPod returns the metadata of each container of pod, by container
// name; nsLabels are its namespace's labels (nil if not watched), node the
// shipper's node.
func buildPod(pod *corev1.Pod, nsLabels map[string]string, node string, cfg *Config) map[string]*Container {
	common := map[string]string{
		"kubernetes.namespace": pod.Namespace,
		"kubernetes.pod.name":  pod.Name,
		"kubernetes.pod.uid":   string(pod.UID),
		"kubernetes.node.name": node,
	}
	if pod.Spec.NodeName != "" {
		common["kubernetes.node.name"] = pod.Spec.NodeName
	}
	for k, v := range pod.Labels {
		if matchAny(cfg.Labels, k) {
			common["kubernetes.labels."+dedot(k)] = v
		}
	}
	for k, v := range pod.Annotations {
		if matchAny(cfg.Annotations, k) {
			common["kubernetes.annotations."+dedot(k)] = v
		}
	}
	for k, v := range nsLabels {
		if matchAny(cfg.NamespaceLabels, k) {
			common["kubernetes.namespace_labels."+dedot(k)] = v
		}
	}
	if kind, name := owner(pod); kind != "" {
		common["kubernetes."+kind+".name"] = name
	}
	for _, l := range cfg.ServiceLabels {
		if v := pod.Labels[l]; v != "" {
			common["service"] = v
			break
		}
	}
	if env := cfg.environment(pod.Namespace); env != "" {
		common["environment"] = env
	}

	ids := map[string]string{}
	for _, list := range [][]corev1.ContainerStatus{pod.Status.InitContainerStatuses, pod.Status.ContainerStatuses} {
		for _, s := range list {
			if _, id, ok := strings.Cut(s.ContainerID, "://"); ok {
				ids[s.Name] = id
			}
		}
	}
	out := map[string]*Container{}
	add := func(name, image string) {
		c := &Container{Fields: make(map[string]string, len(common)+6)}
		for k, v := range common {
			c.Fields[k] = v
		}
		c.Fields["kubernetes.container.name"] = name
		c.Fields["container.name"] = name
		if image != "" {
			c.Fields["container.image.name"] = image
		}
		if id := ids[name]; id != "" {
			c.Fields["container.id"] = id
		}
		if cfg.HintsOn() {
			c.applyHints(pod.Annotations, name)
		}
		out[name] = c
	}
	for _, c := range pod.Spec.InitContainers {
		add(c.Name, c.Image)
	}
	for _, c := range pod.Spec.Containers {
		add(c.Name, c.Image)
	}
	for _, c := range pod.Spec.EphemeralContainers {
		add(c.Name, c.Image)
	}
	return out
}

// applyHints reads the sluice.io/ annotations of container name.
func (c *Container) applyHints(ann map[string]string, name string) {
	if v, ok := hint(ann, name, HintType); ok {
		if validType(v) {
			c.Type = v
		} else {
			c.Ignored = append(c.Ignored, fmt.Sprintf("%s%s: %q is not a document type (lower case letters, digits, - and _, e.g. service or nginx)", HintPrefix, HintType, v))
		}
	}
	if v, ok := hint(ann, name, HintExclude); ok {
		var err error
		if c.Exclude, err = strconv.ParseBool(strings.TrimSpace(v)); err != nil {
			c.Ignored = append(c.Ignored, fmt.Sprintf("%s%s: %q is not \"true\" or \"false\"", HintPrefix, HintExclude, v))
		}
	}
	if v, ok := hint(ann, name, HintMultiline); ok {
		v = strings.TrimSpace(v)
		if _, err := regexp.Compile(v); err != nil || v == "" {
			c.Ignored = append(c.Ignored, fmt.Sprintf("%s%s: %q is not a preset (java, python, go), none, or a regular expression (Go RE2 syntax)", HintPrefix, HintMultiline, v))
		} else {
			c.Multiline = v
		}
	}
	c.IncludeLines = c.lineHint(ann, name, HintInclude)
	c.ExcludeLines = c.lineHint(ann, name, HintExclLines)
	if v, ok := hint(ann, name, HintNginxFormat); ok && v != "" {
		c.NginxFormat = v
		c.Fields[event.FieldNginxFormat] = v
	}
	if v, ok := hint(ann, name, HintService); ok && v != "" {
		c.Fields["service"] = v
	}
	if v, ok := hint(ann, name, HintEnvironment); ok && v != "" {
		c.Fields["environment"] = v
	}
}

// lineHint returns the regular expressions of a line filter hint, one a
// line (a comma may be part of an expression), or nil if there is none or
// one of them is not valid (the hint is then ignored, with a warning).
func (c *Container) lineHint(ann map[string]string, name, key string) []string {
	v, ok := hint(ann, name, key)
	if !ok {
		return nil
	}
	var out []string
	for _, e := range strings.Split(v, "\n") {
		if e = strings.TrimSpace(e); e == "" {
			continue
		}
		if _, err := regexp.Compile(e); err != nil {
			c.Ignored = append(c.Ignored, fmt.Sprintf("%s%s: %q is not a regular expression (Go RE2 syntax): %v", HintPrefix, key, e, err))
			return nil
		}
		out = append(out, e)
	}
	if len(out) == 0 {
		c.Ignored = append(c.Ignored, fmt.Sprintf("%s%s: no expression; give one regular expression a line", HintPrefix, key))
	}
	return out
}

// validType reports whether t can be a document type (and so a topic and
// index name part): lower case letters, digits, - and _.
func validType(t string) bool {
	if t == "" {
		return false
	}
	for _, r := range t {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return false
		}
	}
	return true
}

// owner returns the workload that owns pod: its kind as a field name
// (deployment, statefulset, daemonset, job, replicaset) and its name. A
// ReplicaSet made by a Deployment is named after it plus the pod template
// hash that its pods carry as a label.
func owner(pod *corev1.Pod) (kind, name string) {
	for _, ref := range pod.OwnerReferences {
		if ref.Controller == nil || !*ref.Controller {
			continue
		}
		switch ref.Kind {
		case "ReplicaSet":
			if h := pod.Labels[podTemplateHash]; h != "" && strings.HasSuffix(ref.Name, "-"+h) {
				return "deployment", strings.TrimSuffix(ref.Name, "-"+h)
			}
			return "replicaset", ref.Name
		case "StatefulSet":
			return "statefulset", ref.Name
		case "DaemonSet":
			return "daemonset", ref.Name
		case "Job":
			return "job", ref.Name
		}
	}
	return "", ""
}

// PodContainers returns the metadata of pod's containers by name, as the
// store builds it with cfg (its defaults set), for a pod on its node whose
// namespace has the labels nsLabels.
func PodContainers(pod *corev1.Pod, nsLabels map[string]string, cfg Config) map[string]*Container {
	return buildPod(pod, nsLabels, pod.Spec.NodeName, &cfg)
}
