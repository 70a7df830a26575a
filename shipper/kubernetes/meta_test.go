package kubernetes

import (
	"maps"
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/sluicelog/sluice/internal/event"
)

func testConfig() Config {
	c := Config{Enabled: true, Annotations: []string{"team.example.com/*"}, Environments: []EnvironmentRule{{Namespace: "*-staging", Environment: "staging"}, {Namespace: "shop", Environment: "production"}}}
	c.SetDefaults()
	return c
}

func controller(kind, name string) []metav1.OwnerReference {
	t := true
	return []metav1.OwnerReference{{Kind: kind, Name: name, Controller: &t}}
}

// testPod is a Deployment's pod in namespace shop with two containers.
func testPod() *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "checkout-7d9f8b6c5d-x2x9q", Namespace: "shop", UID: "uid-1",
			Labels:          map[string]string{"app.kubernetes.io/name": "checkout", "pod-template-hash": "7d9f8b6c5d", "tier": "web"},
			Annotations:     map[string]string{"team.example.com/owner": "payments", "kubectl.kubernetes.io/last-applied-configuration": "{...}"},
			OwnerReferences: controller("ReplicaSet", "checkout-7d9f8b6c5d")},
		Spec: corev1.PodSpec{NodeName: "node-a", Containers: []corev1.Container{
			{Name: "app", Image: "registry.example.com/shop/checkout:1.4.2"}, {Name: "proxy", Image: "nginx:1.27"}}},
		Status: corev1.PodStatus{ContainerStatuses: []corev1.ContainerStatus{{Name: "app", ContainerID: "containerd://abc123"}}},
	}
}

func TestBuildPodFields(t *testing.T) {
	cfg := testConfig()
	got := buildPod(testPod(), nil, "node-a", &cfg)
	want := map[string]string{
		"kubernetes.namespace":                          "shop",
		"kubernetes.pod.name":                           "checkout-7d9f8b6c5d-x2x9q",
		"kubernetes.pod.uid":                            "uid-1",
		"kubernetes.node.name":                          "node-a",
		"kubernetes.container.name":                     "app",
		"container.name":                                "app",
		"kubernetes.labels.app_kubernetes_io/name":      "checkout",
		"kubernetes.labels.pod-template-hash":           "7d9f8b6c5d",
		"kubernetes.labels.tier":                        "web",
		"kubernetes.annotations.team_example_com/owner": "payments",
		"kubernetes.deployment.name":                    "checkout",
		"container.image.name":                          "registry.example.com/shop/checkout:1.4.2",
		"container.id":                                  "abc123",
		"service":                                       "checkout",
		"environment":                                   "production",
	}
	if !maps.Equal(got["app"].Fields, want) {
		t.Errorf("app fields:\n got %v\nwant %v", got["app"].Fields, want)
	}
	if p := got["proxy"].Fields; p["container.image.name"] != "nginx:1.27" || p["container.id"] != "" || p["kubernetes.container.name"] != "proxy" {
		t.Errorf("proxy fields %v", p)
	}
}

func TestBuildPodLabelAllowList(t *testing.T) {
	cfg := testConfig()
	cfg.Labels = []string{"app.kubernetes.io/*"}
	f := buildPod(testPod(), nil, "node-a", &cfg)["app"].Fields
	if _, ok := f["kubernetes.labels.tier"]; ok || f["kubernetes.labels.app_kubernetes_io/name"] != "checkout" {
		t.Errorf("labels [app.kubernetes.io/*] gave %v", f)
	}
	cfg.Labels = []string{}
	for k := range buildPod(testPod(), nil, "node-a", &cfg)["app"].Fields {
		if len(k) > 18 && k[:18] == "kubernetes.labels." {
			t.Errorf("labels [] still gave %s", k)
		}
	}
}

func TestBuildPodNamespaceLabels(t *testing.T) {
	cfg := testConfig()
	cfg.NamespaceLabels = []string{"team"}
	f := buildPod(testPod(), map[string]string{"team": "payments", "other": "x"}, "node-a", &cfg)["app"].Fields
	if f["kubernetes.namespace_labels.team"] != "payments" || f["kubernetes.namespace_labels.other"] != "" {
		t.Errorf("namespace labels: %v", f)
	}
}

func TestOwners(t *testing.T) {
	for _, c := range []struct {
		kind, name, hash string
		field, want      string
	}{
		{"ReplicaSet", "web-5f6d8", "5f6d8", "deployment", "web"},
		{"ReplicaSet", "bare-rs", "", "replicaset", "bare-rs"},
		{"StatefulSet", "db", "", "statefulset", "db"},
		{"DaemonSet", "agent", "", "daemonset", "agent"},
		{"Job", "migrate-29123", "", "job", "migrate-29123"},
	} {
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", OwnerReferences: controller(c.kind, c.name), Labels: map[string]string{}}}
		if c.hash != "" {
			p.Labels[podTemplateHash] = c.hash
		}
		if kind, name := owner(p); kind != c.field || name != c.want {
			t.Errorf("%s %s: owner %s %s, want %s %s", c.kind, c.name, kind, name, c.field, c.want)
		}
	}
	if kind, _ := owner(&corev1.Pod{}); kind != "" {
		t.Errorf("a pod without owner has owner kind %q", kind)
	}
}

func TestEnvironmentRules(t *testing.T) {
	cfg := testConfig()
	for ns, want := range map[string]string{"shop": "production", "shop-staging": "staging", "other": ""} {
		if got := cfg.environment(ns); got != want {
			t.Errorf("environment(%s) = %q, want %q", ns, got, want)
		}
	}
}

// TestHints: each sluice.io/ annotation, pod-wide and per container.
func TestHints(t *testing.T) {
	cfg := testConfig()
	for _, c := range []struct {
		name  string
		ann   map[string]string
		check func(app, proxy *Container) bool
	}{
		{"type", map[string]string{"sluice.io/type": "service"}, func(a, p *Container) bool { return a.Type == "service" && p.Type == "service" }},
		{"type per container", map[string]string{"sluice.io/type": "service", "sluice.io.proxy/type": "nginx"}, func(a, p *Container) bool { return a.Type == "service" && p.Type == "nginx" }},
		{"type not a type name", map[string]string{"sluice.io/type": "Bad Type"}, func(a, p *Container) bool { return a.Type == "" && len(a.Ignored) == 1 }},
		{"exclude not a boolean", map[string]string{"sluice.io/exclude": "yes please"}, func(a, p *Container) bool { return !a.Exclude && len(a.Ignored) == 1 }},
		{"exclude", map[string]string{"sluice.io/exclude": "true"}, func(a, p *Container) bool { return a.Exclude && p.Exclude }},
		{"exclude one container", map[string]string{"sluice.io.proxy/exclude": "true"}, func(a, p *Container) bool { return !a.Exclude && p.Exclude }},
		{"exclude false", map[string]string{"sluice.io/exclude": "false"}, func(a, p *Container) bool { return !a.Exclude }},
		{"service", map[string]string{"sluice.io/service": "payments"}, func(a, p *Container) bool { return a.Fields["service"] == "payments" }},
		{"environment", map[string]string{"sluice.io/environment": "canary"}, func(a, p *Container) bool { return a.Fields["environment"] == "canary" }},
		{"nginx-format", map[string]string{"sluice.io.proxy/nginx-format": "main"}, func(a, p *Container) bool {
			return p.NginxFormat == "main" && p.Fields[event.FieldNginxFormat] == "main" && a.Fields[event.FieldNginxFormat] == ""
		}},
		{"multiline", map[string]string{"sluice.io/multiline": "java"}, func(a, p *Container) bool { return a.Multiline == "java" && p.Multiline == "java" }},
		{"multiline not an expression", map[string]string{"sluice.io/multiline": "^(at"}, func(a, p *Container) bool { return a.Multiline == "" && len(a.Ignored) == 1 }},
		{"line filters", map[string]string{"sluice.io/include-lines": "^ERR\n\n ^WARN, {1,3} ", "sluice.io.proxy/exclude-lines": "healthz"}, func(a, p *Container) bool {
			return slices.Equal(a.IncludeLines, []string{"^ERR", "^WARN, {1,3}"}) && a.ExcludeLines == nil && slices.Equal(p.ExcludeLines, []string{"healthz"})
		}},
		{"line filter not an expression", map[string]string{"sluice.io/exclude-lines": "ok\na("}, func(a, p *Container) bool { return a.ExcludeLines == nil && len(a.Ignored) == 1 }},
		{"line filter empty", map[string]string{"sluice.io/include-lines": " "}, func(a, p *Container) bool { return a.IncludeLines == nil && len(a.Ignored) == 1 }},
	} {
		pod := testPod()
		maps.Copy(pod.Annotations, c.ann)
		got := buildPod(pod, nil, "node-a", &cfg)
		if !c.check(got["app"], got["proxy"]) {
			t.Errorf("%s: app %+v proxy %+v", c.name, got["app"], got["proxy"])
		}
	}
	// Off, annotations are only metadata.
	off := false
	cfg.Hints = &off
	pod := testPod()
	pod.Annotations["sluice.io/exclude"] = "true"
	if buildPod(pod, nil, "node-a", &cfg)["app"].Exclude {
		t.Error("hints: false still excludes")
	}
}

func TestValidate(t *testing.T) {
	for _, c := range []struct {
		cfg  Config
		want string
	}{
		{Config{Labels: []string{"[a"}}, "kubernetes.labels[0]"},
		{Config{Environments: []EnvironmentRule{{Namespace: "x"}}}, "kubernetes.environments[0].environment"},
		{Config{Environments: []EnvironmentRule{{Environment: "x"}}}, "kubernetes.environments[0].namespace"},
		{Config{DeleteGrace: -1}, "kubernetes.delete_grace"},
	} {
		c.cfg.SetDefaults()
		err := c.cfg.Validate("kubernetes")
		if err == nil || len(err.Error()) < len(c.want) || err.Error()[:len(c.want)] != c.want {
			t.Errorf("%+v: %v, want an error about %s", c.cfg, err, c.want)
		}
	}
}
