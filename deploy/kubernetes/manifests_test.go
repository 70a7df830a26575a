// Package kubernetes holds Sluice's Kubernetes manifests (base/ and
// overlays/, kustomize) and the tests that keep them valid: every document
// decodes strictly into the official Kubernetes API types, the kustomizations
// render, and the shipper and aggregator configurations in the ConfigMaps
// pass Sluice's own loaders with the environment the pods give them.
package kubernetes

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/intstr"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	kjson "sigs.k8s.io/json"
	"sigs.k8s.io/kustomize/api/krusty"
	kusttypes "sigs.k8s.io/kustomize/api/types"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"

	"github.com/sluicelog/sluice/aggregator"
	"github.com/sluicelog/sluice/internal/config"
	"github.com/sluicelog/sluice/internal/kafkaclient"
	"github.com/sluicelog/sluice/internal/secret"
	"github.com/sluicelog/sluice/internal/testenv"
	"github.com/sluicelog/sluice/shipper"
	"github.com/sluicelog/sluice/shipper/kubernetes"
)

// serviceMonitor is the part of the Prometheus Operator's
// monitoring.coreos.com/v1 ServiceMonitor that these manifests use. Decoding
// into it strictly catches misspelt fields within that part.
type serviceMonitor struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		JobLabel          string               `json:"jobLabel,omitempty"`
		Selector          metav1.LabelSelector `json:"selector"`
		NamespaceSelector *struct {
			Any        bool     `json:"any,omitempty"`
			MatchNames []string `json:"matchNames,omitempty"`
		} `json:"namespaceSelector,omitempty"`
		Endpoints []struct {
			Port          string `json:"port"`
			Path          string `json:"path,omitempty"`
			Scheme        string `json:"scheme,omitempty"`
			Interval      string `json:"interval,omitempty"`
			ScrapeTimeout string `json:"scrapeTimeout,omitempty"`
			HonorLabels   bool   `json:"honorLabels,omitempty"`
			Relabelings   []struct {
				SourceLabels []string `json:"sourceLabels,omitempty"`
				Separator    string   `json:"separator,omitempty"`
				TargetLabel  string   `json:"targetLabel,omitempty"`
				Regex        string   `json:"regex,omitempty"`
				Replacement  string   `json:"replacement,omitempty"`
				Action       string   `json:"action,omitempty"`
			} `json:"relabelings,omitempty"`
		} `json:"endpoints"`
	} `json:"spec"`
}

// prometheusRule is the part of the Prometheus Operator's
// monitoring.coreos.com/v1 PrometheusRule that these manifests use; the
// rules themselves are checked by promtool (deploy/rules_test.go).
type prometheusRule struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		Groups []struct {
			Name     string `json:"name"`
			Interval string `json:"interval,omitempty"`
			Rules    []struct {
				Alert       string            `json:"alert,omitempty"`
				Record      string            `json:"record,omitempty"`
				Expr        string            `json:"expr"`
				For         string            `json:"for,omitempty"`
				Labels      map[string]string `json:"labels,omitempty"`
				Annotations map[string]string `json:"annotations,omitempty"`
			} `json:"rules"`
		} `json:"groups"`
	} `json:"spec"`
}

// newObject returns an empty typed object for a document's apiVersion and
// kind; documents of any other kind are an error.
func newObject(apiVersion, kind string) (any, error) {
	switch apiVersion + "/" + kind {
	case "v1/Namespace":
		return &corev1.Namespace{}, nil
	case "v1/ServiceAccount":
		return &corev1.ServiceAccount{}, nil
	case "v1/ConfigMap":
		return &corev1.ConfigMap{}, nil
	case "v1/Secret":
		return &corev1.Secret{}, nil
	case "v1/Service":
		return &corev1.Service{}, nil
	case "apps/v1/DaemonSet":
		return &appsv1.DaemonSet{}, nil
	case "apps/v1/Deployment":
		return &appsv1.Deployment{}, nil
	case "batch/v1/Job":
		return &batchv1.Job{}, nil
	case "policy/v1/PodDisruptionBudget":
		return &policyv1.PodDisruptionBudget{}, nil
	case "autoscaling/v2/HorizontalPodAutoscaler":
		return &autoscalingv2.HorizontalPodAutoscaler{}, nil
	case "rbac.authorization.k8s.io/v1/ClusterRole":
		return &rbacv1.ClusterRole{}, nil
	case "rbac.authorization.k8s.io/v1/ClusterRoleBinding":
		return &rbacv1.ClusterRoleBinding{}, nil
	case "networking.k8s.io/v1/NetworkPolicy":
		return &networkingv1.NetworkPolicy{}, nil
	case "monitoring.coreos.com/v1/ServiceMonitor":
		return &serviceMonitor{}, nil
	case "monitoring.coreos.com/v1/PrometheusRule":
		return &prometheusRule{}, nil
	case "kustomize.config.k8s.io/v1beta1/Kustomization":
		return &kusttypes.Kustomization{}, nil
	}
	return nil, fmt.Errorf("no typed decoder for apiVersion %q kind %q; add one to newObject", apiVersion, kind)
}

// decodeStrict decodes one YAML document into the type its apiVersion and
// kind name. Unknown or duplicate fields are errors, field names are
// case-sensitive (sigs.k8s.io/json, as the API server decodes).
func decodeStrict(doc []byte) (any, error) {
	js, err := yaml.YAMLToJSONStrict(doc)
	if err != nil {
		return nil, err
	}
	var tm metav1.TypeMeta
	if err := kjson.UnmarshalCaseSensitivePreserveInts(js, &tm); err != nil {
		return nil, err
	}
	if tm.APIVersion == "" || tm.Kind == "" {
		return nil, errors.New("document has no apiVersion or kind")
	}
	obj, err := newObject(tm.APIVersion, tm.Kind)
	if err != nil {
		return nil, err
	}
	strictErrs, err := kjson.UnmarshalStrict(js, obj)
	if err != nil {
		return nil, err
	}
	if len(strictErrs) > 0 {
		return nil, fmt.Errorf("%s: %v", tm.Kind, errors.Join(strictErrs...))
	}
	return obj, nil
}

// splitDocuments splits a YAML stream into its non-empty documents.
func splitDocuments(data []byte) ([][]byte, error) {
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	var docs [][]byte
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return docs, nil
		}
		if err != nil {
			return nil, err
		}
		if len(bytes.TrimSpace(stripComments(doc))) > 0 {
			docs = append(docs, doc)
		}
	}
}

var commentLine = regexp.MustCompile(`(?m)^\s*#.*$`)

func stripComments(doc []byte) []byte { return commentLine.ReplaceAll(doc, nil) }

func manifestFiles(t *testing.T) []string {
	t.Helper()
	var files []string
	for _, root := range []string{"base", "overlays", "setup"} {
		err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if !d.IsDir() && (strings.HasSuffix(path, ".yaml") || strings.HasSuffix(path, ".yml")) {
				files = append(files, path)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if len(files) == 0 {
		t.Fatal("no manifests found under base/, overlays/ and setup/")
	}
	return files
}

// TestManifestsDecodeStrictly decodes every document of every YAML file
// under base/ and overlays/ into its official type.
func TestManifestsDecodeStrictly(t *testing.T) {
	for _, path := range manifestFiles(t) {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		docs, err := splitDocuments(data)
		if err != nil {
			t.Errorf("%s: %v", path, err)
			continue
		}
		if len(docs) == 0 {
			t.Errorf("%s: no YAML documents", path)
		}
		for i, doc := range docs {
			obj, err := decodeStrict(doc)
			if err != nil {
				t.Errorf("%s, document %d: %v", path, i+1, err)
				continue
			}
			if k, ok := obj.(*kusttypes.Kustomization); ok {
				for _, r := range k.Resources {
					if _, err := os.Stat(filepath.Join(filepath.Dir(path), r)); err != nil {
						t.Errorf("%s: resource %s: %v", path, r, err)
					}
				}
				continue
			}
			if m, ok := obj.(metav1.Object); ok && m.GetName() == "" {
				t.Errorf("%s, document %d: metadata.name is empty", path, i+1)
			}
		}
	}
}

// rendered is the output of one kustomization, decoded.
type rendered struct {
	objs []any
}

func render(t *testing.T, dir string) *rendered {
	t.Helper()
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	resMap, err := k.Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		t.Fatalf("kustomize build %s: %v", dir, err)
	}
	out := &rendered{}
	for _, r := range resMap.Resources() {
		y, err := r.AsYAML()
		if err != nil {
			t.Fatal(err)
		}
		obj, err := decodeStrict(y)
		if err != nil {
			t.Fatalf("%s: rendered %s/%s: %v", dir, r.GetKind(), r.GetName(), err)
		}
		out.objs = append(out.objs, obj)
	}
	return out
}

// kinds lists the rendered objects as "Kind/namespace/name", sorted.
func (r *rendered) kinds() []string {
	var ks []string
	for _, o := range r.objs {
		m := o.(metav1.Object)
		kind := o.(interface{ GetObjectKind() schema.ObjectKind }).GetObjectKind().GroupVersionKind().Kind
		ks = append(ks, kind+"/"+m.GetNamespace()+"/"+m.GetName())
	}
	sort.Strings(ks)
	return ks
}

func find[T any](t *testing.T, r *rendered, name string) T {
	t.Helper()
	var found []T
	for _, o := range r.objs {
		if v, ok := o.(T); ok && o.(metav1.Object).GetName() == name {
			found = append(found, v)
		}
	}
	if len(found) != 1 {
		var zero T
		t.Fatalf("want exactly one %T named %s, found %d", zero, name, len(found))
	}
	return found[0]
}

func all[T any](r *rendered) []T {
	var out []T
	for _, o := range r.objs {
		if v, ok := o.(T); ok {
			out = append(out, v)
		}
	}
	return out
}

var baseKinds = []string{
	"ClusterRole//sluice-shipper",
	"ClusterRoleBinding//sluice-shipper",
	"ConfigMap/sluice/sluice-aggregator",
	"ConfigMap/sluice/sluice-endpoints",
	"ConfigMap/sluice/sluice-shipper",
	"DaemonSet/sluice/sluice-shipper",
	"Deployment/sluice/sluice-aggregator",
	"HorizontalPodAutoscaler/sluice/sluice-aggregator",
	"Namespace//sluice",
	"NetworkPolicy/sluice/sluice-metrics",
	"PodDisruptionBudget/sluice/sluice-aggregator",
	"Service/sluice/sluice-aggregator",
	"Service/sluice/sluice-shipper",
	"ServiceAccount/sluice/sluice-shipper",
}

func TestKustomizeRendersExpectedKinds(t *testing.T) {
	base := render(t, "base")
	if got := base.kinds(); !slices.Equal(got, baseKinds) {
		t.Errorf("base renders\n  %s\nwant\n  %s", strings.Join(got, "\n  "), strings.Join(baseKinds, "\n  "))
	}
	overlay := render(t, filepath.Join("overlays", "prometheus-operator"))
	want := append(slices.Clone(baseKinds), "ServiceMonitor/sluice/sluice", "PrometheusRule/sluice/sluice")
	sort.Strings(want)
	if got := overlay.kinds(); !slices.Equal(got, want) {
		t.Errorf("overlays/prometheus-operator renders\n  %s\nwant\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}

	// Both roles run the one image, as set by the kustomization.
	shipperImage := find[*appsv1.DaemonSet](t, base, "sluice-shipper").Spec.Template.Spec.Containers[0].Image
	aggregatorImage := find[*appsv1.Deployment](t, base, "sluice-aggregator").Spec.Template.Spec.Containers[0].Image
	if shipperImage != aggregatorImage || !strings.Contains(shipperImage, "/") || !strings.Contains(shipperImage, ":") {
		t.Errorf("images %q and %q: want one image with a registry and tag, from the kustomization", shipperImage, aggregatorImage)
	}

	// The ServiceMonitor selects both metrics Services by label, through a
	// port they both name.
	sm := find[*serviceMonitor](t, overlay, "sluice")
	sel, err := metav1.LabelSelectorAsSelector(&sm.Spec.Selector)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"sluice-shipper", "sluice-aggregator"} {
		svc := find[*corev1.Service](t, overlay, name)
		if !sel.Matches(labels.Set(svc.Labels)) {
			t.Errorf("ServiceMonitor selector %v does not select Service %s", sel, name)
		}
		for _, ep := range sm.Spec.Endpoints {
			if !slices.ContainsFunc(svc.Spec.Ports, func(p corev1.ServicePort) bool { return p.Name == ep.Port }) {
				t.Errorf("Service %s has no port named %q for the ServiceMonitor", name, ep.Port)
			}
		}
	}
}

// TestShipperDaemonSet checks the DaemonSet against the shipper
// configuration it mounts.
func TestShipperDaemonSet(t *testing.T) {
	r := render(t, "base")
	ds := find[*appsv1.DaemonSet](t, r, "sluice-shipper")
	pod := &ds.Spec.Template.Spec
	c := onlyContainer(t, pod)

	cfg := loadConfig[shipper.Config](t, r, pod, c)
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		t.Fatalf("shipper config: %v", err)
	}
	if cfg.Node != "test-node" {
		t.Errorf("node = %q, want it from NODE_NAME", cfg.Node)
	}

	// /var/log and Docker's container logs, read-only.
	for _, hostPath := range []string{"/var/log", "/var/lib/docker/containers"} {
		m, v := mountOfHostPath(t, pod, c, hostPath)
		if m == nil {
			t.Errorf("hostPath %s is not mounted", hostPath)
			continue
		}
		if m.MountPath != hostPath || !m.ReadOnly {
			t.Errorf("hostPath %s (volume %s) is mounted at %s readOnly=%v, want at %s read-only", hostPath, v.Name, m.MountPath, m.ReadOnly, hostPath)
		}
	}
	// Every input's paths are under a mounted host directory.
	for i, in := range cfg.Inputs {
		for _, p := range in.Paths {
			if !strings.HasPrefix(p, "/var/log/") {
				t.Errorf("inputs[%d].paths %s is not under the mounted /var/log", i, p)
			}
		}
	}

	// Container logs are links into /var/log/pods: followed there, and into
	// nothing that is not mounted.
	for i, in := range cfg.Inputs {
		if in.Format == shipper.FormatCRI && (!in.Symlinks.Follow || !slices.Contains(in.Symlinks.Roots, "/var/log/pods")) {
			t.Errorf("inputs[%d] (cri) does not follow links into /var/log/pods: %+v", i, in.Symlinks)
		}
		for _, r := range in.Symlinks.Roots {
			if !slices.ContainsFunc(c.VolumeMounts, func(m corev1.VolumeMount) bool { return under(r, m.MountPath) }) {
				t.Errorf("inputs[%d].symlinks.roots %s is not under a mounted host directory", i, r)
			}
		}
	}

	// The registry directory is the writable hostPath /var/lib/sluice.
	m, v := mountOfHostPath(t, pod, c, "/var/lib/sluice")
	switch {
	case m == nil:
		t.Error("hostPath /var/lib/sluice is not mounted")
	case m.ReadOnly:
		t.Error("the registry hostPath is mounted read-only")
	case !under(cfg.Registry, m.MountPath):
		t.Errorf("registry %s is not under the registry hostPath's mount %s", cfg.Registry, m.MountPath)
	case v.HostPath.Type == nil || *v.HostPath.Type != corev1.HostPathDirectoryOrCreate:
		t.Errorf("registry hostPath type = %v, want DirectoryOrCreate", v.HostPath.Type)
	}

	// NODE_NAME from the downward API.
	if e := envVar(c, "NODE_NAME"); e == nil || e.ValueFrom == nil || e.ValueFrom.FieldRef == nil || e.ValueFrom.FieldRef.FieldPath != "spec.nodeName" {
		t.Errorf("NODE_NAME must come from fieldRef spec.nodeName, got %+v", e)
	}

	checkProbes(t, c, cfg.HTTP.Listen)

	if !slices.ContainsFunc(pod.Tolerations, func(tol corev1.Toleration) bool {
		return tol.Operator == corev1.TolerationOpExists && tol.Key == "" && tol.Effect == ""
	}) {
		t.Errorf("tolerations %+v do not include a bare operator: Exists", pod.Tolerations)
	}
	if pod.PriorityClassName != "system-node-critical" {
		t.Errorf("priorityClassName = %q", pod.PriorityClassName)
	}
	if ru := ds.Spec.UpdateStrategy.RollingUpdate; ds.Spec.UpdateStrategy.Type != appsv1.RollingUpdateDaemonSetStrategyType ||
		ru == nil || ru.MaxUnavailable == nil || *ru.MaxUnavailable != intstr.FromInt32(1) {
		t.Errorf("updateStrategy = %+v, want RollingUpdate with maxUnavailable 1", ds.Spec.UpdateStrategy)
	}
	checkResources(t, c, map[corev1.ResourceName]string{corev1.ResourceCPU: "100m", corev1.ResourceMemory: "64Mi"},
		map[corev1.ResourceName]string{corev1.ResourceCPU: "1", corev1.ResourceMemory: "256Mi"})

	sc := c.SecurityContext
	if sc == nil || sc.RunAsUser == nil || *sc.RunAsUser != 0 || !isTrue(sc.ReadOnlyRootFilesystem) ||
		sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation || isTrue(sc.Privileged) ||
		sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) ||
		!slices.Equal(sc.Capabilities.Add, []corev1.Capability{"DAC_READ_SEARCH"}) {
		t.Errorf("shipper securityContext = %+v", sc)
	}
	checkSeccomp(t, pod, c)

	// Its own ServiceAccount, whose token only its pods mount (see TestKubernetesCredentials).
	if pod.ServiceAccountName != "sluice-shipper" {
		t.Errorf("serviceAccountName = %q", pod.ServiceAccountName)
	}
	find[*corev1.ServiceAccount](t, r, pod.ServiceAccountName)

	checkService(t, r, "sluice-shipper", ds.Spec.Template.Labels, c)
}

func TestShipperPartitionsCoverAggregatorReplicas(t *testing.T) {
	r := render(t, "base")
	ds := find[*appsv1.DaemonSet](t, r, "sluice-shipper")
	cfg := loadConfig[shipper.Config](t, r, &ds.Spec.Template.Spec, onlyContainer(t, &ds.Spec.Template.Spec))
	cfg.SetDefaults()
	hpa := find[*autoscalingv2.HorizontalPodAutoscaler](t, r, "sluice-aggregator")
	if cfg.Kafka.Partitions < hpa.Spec.MaxReplicas {
		t.Errorf("topics the shipper creates get %d partitions, fewer than the aggregator's maxReplicas %d", cfg.Kafka.Partitions, hpa.Spec.MaxReplicas)
	}
}

// TestKubernetesCredentials: only the shipper calls the Kubernetes API, for
// its node's pods; its ClusterRole grants exactly what the code uses
// (kubernetes.Rules of the ConfigMap's configuration, which
// shipper/kubernetes's TestWatchThroughHTTP checks against the requests
// of the real client), bound to its account alone, and only its pods mount
// a token.
func TestKubernetesCredentials(t *testing.T) {
	r := render(t, "base")
	ds := find[*appsv1.DaemonSet](t, r, "sluice-shipper")
	cfg := loadConfig[shipper.Config](t, r, &ds.Spec.Template.Spec, onlyContainer(t, &ds.Spec.Template.Spec))
	cfg.SetDefaults()
	if !cfg.Kubernetes.Enabled {
		t.Fatal("the shipper's kubernetes metadata is off: then it needs no role and no token")
	}
	for _, o := range r.objs {
		switch o := o.(type) {
		case *rbacv1.Role, *rbacv1.RoleBinding:
			t.Errorf("%T %s: only the shipper's ClusterRole is expected", o, o.(metav1.Object).GetName())
		case *rbacv1.ClusterRole:
			if o.Name != "sluice-shipper" {
				t.Errorf("ClusterRole %s: only the shipper's is expected", o.Name)
				continue
			}
			if want := kubernetes.Rules(cfg.Kubernetes); !reflect.DeepEqual(o.Rules, want) {
				t.Errorf("ClusterRole sluice-shipper grants %+v; the shipper uses %+v", o.Rules, want)
			}
		case *rbacv1.ClusterRoleBinding:
			want := []rbacv1.Subject{{Kind: "ServiceAccount", Name: ds.Spec.Template.Spec.ServiceAccountName, Namespace: ds.Namespace}}
			if o.RoleRef != (rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: "sluice-shipper"}) || !reflect.DeepEqual(o.Subjects, want) {
				t.Errorf("ClusterRoleBinding %s binds %+v to %+v; want sluice-shipper to %+v", o.Name, o.RoleRef, o.Subjects, want)
			}
		}
	}
	for _, sa := range all[*corev1.ServiceAccount](r) {
		if sa.AutomountServiceAccountToken == nil || *sa.AutomountServiceAccountToken {
			t.Errorf("ServiceAccount %s mounts its token into pods by default", sa.Name)
		}
	}
	job := render(t, "setup")
	pods := map[string]*corev1.PodSpec{
		"Deployment sluice-aggregator": &find[*appsv1.Deployment](t, r, "sluice-aggregator").Spec.Template.Spec,
		"Job sluice-setup":             &find[*batchv1.Job](t, job, "sluice-setup").Spec.Template.Spec,
	}
	for name, pod := range pods {
		if pod.AutomountServiceAccountToken == nil || *pod.AutomountServiceAccountToken {
			t.Errorf("%s: automountServiceAccountToken must be false", name)
		}
	}
	if !isTrue(ds.Spec.Template.Spec.AutomountServiceAccountToken) {
		t.Error("DaemonSet sluice-shipper: automountServiceAccountToken must be true, for its token")
	}
}

// TestTransportsAreEncrypted: the example configurations reach Kafka over
// SASL_SSL and Elasticsearch over HTTPS with a CA file, both from mounted
// Secrets, never credentials in the clear.
func TestTransportsAreEncrypted(t *testing.T) {
	r := render(t, "base")
	ds := find[*appsv1.DaemonSet](t, r, "sluice-shipper")
	ship := loadConfig[shipper.Config](t, r, &ds.Spec.Template.Spec, onlyContainer(t, &ds.Spec.Template.Spec))
	ship.SetDefaults()
	d := find[*appsv1.Deployment](t, r, "sluice-aggregator")
	agg := loadConfig[aggregator.Config](t, r, &d.Spec.Template.Spec, onlyContainer(t, &d.Spec.Template.Spec))
	agg.SetDefaults()
	for name, k := range map[string]kafkaclient.Config{"shipper": ship.Kafka.Security, "aggregator": agg.Kafka.Security} {
		if !k.TLS.Enabled || k.TLS.CAFile == "" || k.SASL.Mechanism != kafkaclient.MechanismSCRAMSHA512 || k.SASL.PasswordFile == "" || k.SASL.AllowPlaintext {
			t.Errorf("%s kafka = %+v, want SASL_SSL: tls with a CA file, SCRAM-SHA-512 with a password file", name, k)
		}
		pw, err := secret.Resolve(k.SASL.Password, k.SASL.PasswordFile)
		if err != nil || pw.Reveal() != "secret:sluice-kafka/password" {
			t.Errorf("%s kafka password = %v (%v), want the key password of Secret sluice-kafka", name, pw, err)
		}
	}
	es := agg.Elasticsearch
	for i, a := range es.Addresses {
		if !strings.HasPrefix(a, "https://") {
			t.Errorf("elasticsearch.addresses[%d] = %s, want https://", i, a)
		}
	}
	if es.TLS.CAFile == "" || es.AllowPlaintext {
		t.Errorf("elasticsearch tls = %+v, allow_plaintext %v: want a CA file and no plaintext", es.TLS, es.AllowPlaintext)
	}
}

// TestNetworkPolicyAdmitsOnlyMetrics: the NetworkPolicy selects every
// Sluice pod and opens exactly their metrics ports.
func TestNetworkPolicyAdmitsOnlyMetrics(t *testing.T) {
	r := render(t, "base")
	np := find[*networkingv1.NetworkPolicy](t, r, "sluice-metrics")
	sel, err := metav1.LabelSelectorAsSelector(&np.Spec.PodSelector)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(np.Spec.PolicyTypes, []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}) || len(np.Spec.Ingress) != 1 {
		t.Fatalf("policy types %v, %d ingress rules: want one Ingress rule", np.Spec.PolicyTypes, len(np.Spec.Ingress))
	}
	open := map[int]bool{}
	for _, p := range np.Spec.Ingress[0].Ports {
		open[p.Port.IntValue()] = true
	}
	if len(np.Spec.Ingress[0].From) == 0 {
		t.Error("the ingress rule admits every source")
	}
	pods := map[string]*corev1.PodTemplateSpec{
		"sluice-shipper":    &find[*appsv1.DaemonSet](t, r, "sluice-shipper").Spec.Template,
		"sluice-aggregator": &find[*appsv1.Deployment](t, r, "sluice-aggregator").Spec.Template,
	}
	want := map[int]bool{}
	for name, tpl := range pods {
		if !sel.Matches(labels.Set(tpl.Labels)) {
			t.Errorf("NetworkPolicy does not select %s's pods", name)
		}
		for _, cp := range tpl.Spec.Containers[0].Ports {
			want[int(cp.ContainerPort)] = true
		}
	}
	if !maps.Equal(open, want) {
		t.Errorf("NetworkPolicy opens ports %v, want the metrics ports %v", open, want)
	}
}

// TestAggregatorDeployment checks the Deployment, its PDB, HPA and Service
// against the aggregator configuration it mounts.
func TestAggregatorDeployment(t *testing.T) {
	r := render(t, "base")
	d := find[*appsv1.Deployment](t, r, "sluice-aggregator")
	pod := &d.Spec.Template.Spec
	c := onlyContainer(t, pod)

	cfg := loadConfig[aggregator.Config](t, r, pod, c)
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		t.Fatalf("aggregator config: %v", err)
	}
	pw, err := secret.Resolve(cfg.Elasticsearch.Password, cfg.Elasticsearch.PasswordFile)
	if cfg.Elasticsearch.Username != "secret:sluice-elasticsearch/username" || err != nil ||
		pw.Reveal() != "secret:sluice-elasticsearch/password" {
		t.Errorf("elasticsearch credentials = %q / %v (%v), want them from Secret sluice-elasticsearch keys username and password",
			cfg.Elasticsearch.Username, pw, err)
	}
	if cfg.GeoIP.Enabled() {
		t.Error("geoip is enabled without a database mounted")
	}
	if cfg.Kibana.Enabled() {
		t.Errorf("kibana.url = %q in the aggregator's pods; only the setup Job sets KIBANA_URL", cfg.Kibana.URL)
	}

	checkProbes(t, c, cfg.HTTP.Listen)
	checkResources(t, c, nil, nil)
	if d.Spec.Replicas == nil || *d.Spec.Replicas != 2 {
		t.Errorf("replicas = %v, want 2", d.Spec.Replicas)
	}
	psc := pod.SecurityContext
	if psc == nil || !isTrue(psc.RunAsNonRoot) || psc.RunAsUser == nil || *psc.RunAsUser != 65532 {
		t.Errorf("pod securityContext = %+v, want runAsNonRoot and runAsUser 65532", psc)
	}
	sc := c.SecurityContext
	if sc == nil || !isTrue(sc.ReadOnlyRootFilesystem) || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
		sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) || len(sc.Capabilities.Add) > 0 {
		t.Errorf("aggregator securityContext = %+v", sc)
	}
	checkSeccomp(t, pod, c)

	pdb := find[*policyv1.PodDisruptionBudget](t, r, "sluice-aggregator")
	if pdb.Spec.MinAvailable == nil || *pdb.Spec.MinAvailable != intstr.FromInt32(1) {
		t.Errorf("PodDisruptionBudget minAvailable = %v, want 1", pdb.Spec.MinAvailable)
	}
	if sel, err := metav1.LabelSelectorAsSelector(pdb.Spec.Selector); err != nil || !sel.Matches(labels.Set(d.Spec.Template.Labels)) {
		t.Errorf("PodDisruptionBudget selector %v does not select the aggregator pods (%v)", pdb.Spec.Selector, err)
	}

	hpa := find[*autoscalingv2.HorizontalPodAutoscaler](t, r, "sluice-aggregator")
	ref := hpa.Spec.ScaleTargetRef
	if ref.APIVersion != "apps/v1" || ref.Kind != "Deployment" || ref.Name != d.Name {
		t.Errorf("HPA scaleTargetRef = %+v", ref)
	}
	if hpa.Spec.MinReplicas == nil || *hpa.Spec.MinReplicas != 2 || hpa.Spec.MaxReplicas != 12 {
		t.Errorf("HPA replicas = %d..%d, want 2..12", ptrValue(hpa.Spec.MinReplicas), hpa.Spec.MaxReplicas)
	}
	if len(hpa.Spec.Metrics) != 1 || hpa.Spec.Metrics[0].Resource == nil || hpa.Spec.Metrics[0].Resource.Name != corev1.ResourceCPU ||
		hpa.Spec.Metrics[0].Resource.Target.AverageUtilization == nil || *hpa.Spec.Metrics[0].Resource.Target.AverageUtilization != 70 {
		t.Errorf("HPA metrics = %+v, want CPU utilization 70%%", hpa.Spec.Metrics)
	}
	if _, ok := c.Resources.Requests[corev1.ResourceCPU]; !ok {
		t.Error("the HPA scales on CPU utilization, which needs a CPU request")
	}

	checkService(t, r, "sluice-aggregator", d.Spec.Template.Labels, c)
}

// TestSetupJob checks the `sluice setup` Job in setup/ against the base
// it runs with: the aggregator's ConfigMap, the endpoints and the image.
func TestSetupJob(t *testing.T) {
	job := render(t, "setup")
	if got, want := job.kinds(), []string{"Job/sluice/sluice-setup"}; !slices.Equal(got, want) {
		t.Fatalf("setup renders %v, want %v", got, want)
	}
	base := render(t, "base")
	both := &rendered{objs: append(slices.Clone(base.objs), job.objs...)}
	j := find[*batchv1.Job](t, both, "sluice-setup")
	pod := &j.Spec.Template.Spec
	c := onlyContainer(t, pod)
	if len(c.Args) == 0 || c.Args[0] != "setup" {
		t.Errorf("args %q, want sluice setup", c.Args)
	}
	cfg := loadConfig[aggregator.Config](t, both, pod, c)
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		t.Fatalf("setup config: %v", err)
	}
	endpoints := find[*corev1.ConfigMap](t, base, "sluice-endpoints")
	if cfg.Kibana.URL == "" || cfg.Kibana.URL != endpoints.Data["KIBANA_URL"] {
		t.Errorf("kibana.url = %q, want KIBANA_URL of sluice-endpoints (%q)", cfg.Kibana.URL, endpoints.Data["KIBANA_URL"])
	}
	if cfg.Kibana.APIKey != "secret:sluice-kibana/api_key" {
		t.Errorf("kibana.api_key = %q, want it from Secret sluice-kibana key api_key", cfg.Kibana.APIKey)
	}
	if e := envVar(c, "KIBANA_API_KEY"); e == nil || e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil || !isTrue(e.ValueFrom.SecretKeyRef.Optional) {
		t.Errorf("KIBANA_API_KEY must come from an optional Secret key, got %+v", e)
	}
	agg := find[*appsv1.Deployment](t, base, "sluice-aggregator")
	aggCfg := loadConfig[aggregator.Config](t, base, &agg.Spec.Template.Spec, onlyContainer(t, &agg.Spec.Template.Spec))
	aggCfg.SetDefaults()
	if cfg.Elasticsearch.Index != aggCfg.Elasticsearch.Index || cfg.Elasticsearch.TemplateName != aggCfg.Elasticsearch.TemplateName ||
		cfg.Elasticsearch.Username != aggCfg.Elasticsearch.Username {
		t.Errorf("setup installs template %q for %q as %q; the aggregator uses %q for %q as %q",
			cfg.Elasticsearch.TemplateName, cfg.Elasticsearch.Index, cfg.Elasticsearch.Username,
			aggCfg.Elasticsearch.TemplateName, aggCfg.Elasticsearch.Index, aggCfg.Elasticsearch.Username)
	}
	if c.Image != agg.Spec.Template.Spec.Containers[0].Image {
		t.Errorf("setup image %q, aggregator image %q: want the same", c.Image, agg.Spec.Template.Spec.Containers[0].Image)
	}
	if pod.RestartPolicy != corev1.RestartPolicyNever && pod.RestartPolicy != corev1.RestartPolicyOnFailure {
		t.Errorf("restartPolicy %q: a Job needs Never or OnFailure", pod.RestartPolicy)
	}
	if j.Spec.BackoffLimit == nil || *j.Spec.BackoffLimit < 1 || j.Spec.ActiveDeadlineSeconds == nil {
		t.Errorf("backoffLimit %v, activeDeadlineSeconds %v: want retries while the servers start, and a deadline",
			j.Spec.BackoffLimit, j.Spec.ActiveDeadlineSeconds)
	}
	psc := pod.SecurityContext
	if psc == nil || !isTrue(psc.RunAsNonRoot) || psc.RunAsUser == nil || *psc.RunAsUser != 65532 || isTrue(pod.AutomountServiceAccountToken) {
		t.Errorf("pod securityContext = %+v, automountServiceAccountToken %v; want runAsNonRoot, runAsUser 65532, no token",
			psc, pod.AutomountServiceAccountToken)
	}
	sc := c.SecurityContext
	if sc == nil || !isTrue(sc.ReadOnlyRootFilesystem) || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
		sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) {
		t.Errorf("setup securityContext = %+v", sc)
	}
	checkSeccomp(t, pod, c)
	checkResources(t, c, nil, nil)
}

// loadConfig finds the configuration file the container is started with
// (-c FILE), reads it from the ConfigMap mounted there and decodes it with
// Sluice's loader, expanding ${VAR} with the container's environment only.
func loadConfig[T any](t *testing.T, r *rendered, pod *corev1.PodSpec, c *corev1.Container) *T {
	t.Helper()
	i := slices.Index(c.Args, "-c")
	if i < 0 || i+1 >= len(c.Args) {
		t.Fatalf("container %s args %q have no -c FILE", c.Name, c.Args)
	}
	file := c.Args[i+1]
	var cm *corev1.ConfigMap
	var key string
	for _, m := range c.VolumeMounts {
		if filepath.Dir(file) != m.MountPath {
			continue
		}
		v := volume(pod, m.Name)
		if v == nil || v.ConfigMap == nil {
			t.Fatalf("%s is mounted from volume %s, which is not a ConfigMap", file, m.Name)
		}
		cm = find[*corev1.ConfigMap](t, r, v.ConfigMap.Name)
		key = filepath.Base(file)
	}
	if cm == nil {
		t.Fatalf("no ConfigMap is mounted at %s", filepath.Dir(file))
	}
	data, ok := cm.Data[key]
	if !ok {
		t.Fatalf("ConfigMap %s has no key %s", cm.Name, key)
	}
	data = standInSecrets(t, pod, c, data)
	env := containerEnv(t, r, c)
	lookup := func(name string) (string, bool) {
		v, ok := env[name]
		return v, ok
	}
	var cfg T
	if err := config.Decode([]byte(data), &cfg, lookup); err != nil {
		t.Fatalf("ConfigMap %s key %s: %v", cm.Name, key, err)
	}
	return &cfg
}

// standInSecrets writes, for each Secret volume the container mounts, a
// file per item it projects (a test CA for *.crt, "secret:NAME/KEY"
// otherwise) under a temporary directory, and returns data with the mount
// paths pointed there, so that Validate reads files as the pod would.
func standInSecrets(t *testing.T, pod *corev1.PodSpec, c *corev1.Container, data string) string {
	t.Helper()
	dir := t.TempDir()
	var ca *testenv.CA
	for _, m := range c.VolumeMounts {
		v := volume(pod, m.Name)
		if v == nil || v.Secret == nil {
			continue
		}
		if len(v.Secret.Items) == 0 {
			t.Fatalf("Secret volume %s lists no items: name the keys the configuration reads", v.Name)
		}
		root := filepath.Join(dir, m.Name)
		for _, it := range v.Secret.Items {
			content := []byte("secret:" + v.Secret.SecretName + "/" + it.Key + "\n")
			if strings.HasSuffix(it.Path, ".crt") {
				if ca == nil {
					ca = testenv.NewCA(t, dir, "stand-in-ca")
				}
				var err error
				if content, err = os.ReadFile(ca.CertFile); err != nil {
					t.Fatal(err)
				}
			}
			if err := os.MkdirAll(filepath.Dir(filepath.Join(root, it.Path)), 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(root, it.Path), content, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		data = strings.ReplaceAll(data, strings.TrimRight(m.MountPath, "/")+"/", root+"/")
	}
	return data
}

// containerEnv resolves a container's environment as far as the manifests
// allow: literal values, ConfigMap keys, and stand-ins for Secret keys and
// the downward API.
func containerEnv(t *testing.T, r *rendered, c *corev1.Container) map[string]string {
	t.Helper()
	env := map[string]string{}
	for _, e := range c.Env {
		switch {
		case e.ValueFrom == nil:
			env[e.Name] = e.Value
		case e.ValueFrom.ConfigMapKeyRef != nil:
			ref := e.ValueFrom.ConfigMapKeyRef
			cm := find[*corev1.ConfigMap](t, r, ref.Name)
			v, ok := cm.Data[ref.Key]
			if !ok {
				t.Fatalf("env %s: ConfigMap %s has no key %s", e.Name, ref.Name, ref.Key)
			}
			env[e.Name] = v
		case e.ValueFrom.SecretKeyRef != nil:
			env[e.Name] = "secret:" + e.ValueFrom.SecretKeyRef.Name + "/" + e.ValueFrom.SecretKeyRef.Key
		case e.ValueFrom.FieldRef != nil && e.ValueFrom.FieldRef.FieldPath == "spec.nodeName":
			env[e.Name] = "test-node"
		default:
			t.Fatalf("env %s: unexpected source %+v", e.Name, e.ValueFrom)
		}
	}
	if len(c.EnvFrom) > 0 {
		t.Fatalf("container %s uses envFrom; resolve it in containerEnv", c.Name)
	}
	return env
}

// checkProbes checks that liveness and readiness hit /healthz and /readyz on
// the port http.listen names, and that listen is reachable from the kubelet.
func checkProbes(t *testing.T, c *corev1.Container, listen string) {
	t.Helper()
	host, portText, err := net.SplitHostPort(listen)
	if err != nil {
		t.Fatalf("http.listen %q: %v", listen, err)
	}
	if host != "" && host != "0.0.0.0" && host != "::" {
		t.Errorf("http.listen %q is not reachable from the kubelet; listen on 0.0.0.0", listen)
	}
	port, _ := strconv.Atoi(portText)
	for _, p := range []struct {
		name  string
		probe *corev1.Probe
		path  string
	}{{"livenessProbe", c.LivenessProbe, "/healthz"}, {"readinessProbe", c.ReadinessProbe, "/readyz"}} {
		if p.probe == nil || p.probe.HTTPGet == nil {
			t.Errorf("container %s has no HTTP %s", c.Name, p.name)
			continue
		}
		if p.probe.HTTPGet.Path != p.path {
			t.Errorf("container %s %s path = %q, want %s", c.Name, p.name, p.probe.HTTPGet.Path, p.path)
		}
		if got := containerPort(t, c, p.probe.HTTPGet.Port); got != port {
			t.Errorf("container %s %s port = %d, but http.listen is %s", c.Name, p.name, got, listen)
		}
	}
}

// checkService checks the metrics Service in front of the pods.
func checkService(t *testing.T, r *rendered, name string, podLabels map[string]string, c *corev1.Container) {
	t.Helper()
	svc := find[*corev1.Service](t, r, name)
	if len(svc.Spec.Selector) == 0 {
		t.Fatalf("Service %s has no selector", name)
	}
	for k, v := range svc.Spec.Selector {
		if podLabels[k] != v {
			t.Errorf("Service %s selector %s=%s does not match the pods", name, k, v)
		}
	}
	if len(svc.Spec.Ports) != 1 {
		t.Fatalf("Service %s ports = %+v", name, svc.Spec.Ports)
	}
	port := containerPort(t, c, svc.Spec.Ports[0].TargetPort)
	if svc.Annotations["prometheus.io/scrape"] != "true" || svc.Annotations["prometheus.io/port"] != strconv.Itoa(port) ||
		svc.Annotations["prometheus.io/path"] != "/metrics" {
		t.Errorf("Service %s annotations = %v, want prometheus.io scrape of /metrics on %d", name, svc.Annotations, port)
	}
	if !svc.Spec.PublishNotReadyAddresses {
		t.Errorf("Service %s drops not-ready pods from scraping", name)
	}
}

func checkResources(t *testing.T, c *corev1.Container, requests, limits map[corev1.ResourceName]string) {
	t.Helper()
	for _, res := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		req, okReq := c.Resources.Requests[res]
		lim, okLim := c.Resources.Limits[res]
		if !okReq || !okLim {
			t.Errorf("container %s has no %s request and limit", c.Name, res)
			continue
		}
		if req.Cmp(lim) > 0 {
			t.Errorf("container %s %s request %s is above its limit %s", c.Name, res, req.String(), lim.String())
		}
		if want, ok := requests[res]; ok && req.String() != want {
			t.Errorf("container %s %s request = %s, want %s", c.Name, res, req.String(), want)
		}
		if want, ok := limits[res]; ok && lim.String() != want {
			t.Errorf("container %s %s limit = %s, want %s", c.Name, res, lim.String(), want)
		}
	}
}

func checkSeccomp(t *testing.T, pod *corev1.PodSpec, c *corev1.Container) {
	t.Helper()
	profile := (*corev1.SeccompProfile)(nil)
	if pod.SecurityContext != nil {
		profile = pod.SecurityContext.SeccompProfile
	}
	if c.SecurityContext != nil && c.SecurityContext.SeccompProfile != nil {
		profile = c.SecurityContext.SeccompProfile
	}
	if profile == nil || profile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("container %s seccompProfile = %+v, want RuntimeDefault", c.Name, profile)
	}
}

func onlyContainer(t *testing.T, pod *corev1.PodSpec) *corev1.Container {
	t.Helper()
	if len(pod.Containers) != 1 {
		t.Fatalf("want one container, found %d", len(pod.Containers))
	}
	return &pod.Containers[0]
}

func volume(pod *corev1.PodSpec, name string) *corev1.Volume {
	for i := range pod.Volumes {
		if pod.Volumes[i].Name == name {
			return &pod.Volumes[i]
		}
	}
	return nil
}

// mountOfHostPath returns the container's mount of the hostPath volume with
// the given path, and the volume.
func mountOfHostPath(t *testing.T, pod *corev1.PodSpec, c *corev1.Container, path string) (*corev1.VolumeMount, *corev1.Volume) {
	t.Helper()
	for i := range c.VolumeMounts {
		v := volume(pod, c.VolumeMounts[i].Name)
		if v == nil {
			t.Fatalf("volumeMount %s has no volume", c.VolumeMounts[i].Name)
		}
		if v.HostPath != nil && v.HostPath.Path == path {
			return &c.VolumeMounts[i], v
		}
	}
	return nil, nil
}

func containerPort(t *testing.T, c *corev1.Container, p intstr.IntOrString) int {
	t.Helper()
	if p.Type == intstr.Int {
		return p.IntValue()
	}
	for _, cp := range c.Ports {
		if cp.Name == p.StrVal {
			return int(cp.ContainerPort)
		}
	}
	t.Errorf("container %s has no port named %q", c.Name, p.StrVal)
	return -1
}

func envVar(c *corev1.Container, name string) *corev1.EnvVar {
	for i := range c.Env {
		if c.Env[i].Name == name {
			return &c.Env[i]
		}
	}
	return nil
}

func under(path, dir string) bool {
	rel, err := filepath.Rel(dir, path)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, "../")
}

func isTrue(b *bool) bool { return b != nil && *b }

func ptrValue[T any](p *T) T {
	var v T
	if p != nil {
		v = *p
	}
	return v
}
