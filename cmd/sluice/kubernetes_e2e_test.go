package main

import (
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/sluicelog/sluice/internal/testenv"
)

// TestKubernetesMetadataEndToEnd runs the shipper against a Kubernetes API
// server (testenv.KubeAPI) and the real Kafka and Elasticsearch: a
// Deployment's container writing JSON to stdout gets documents that carry
// its pod's labels, owner and image, are parsed (log.level, message), and
// land in the index of the service its label names and the environment
// its namespace maps to; a pod annotated sluice.io/exclude: "true" ships
// nothing.
func TestKubernetesMetadataEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test needs Kafka and Elasticsearch")
	}
	stack := testenv.Start(t)
	dir := t.TempDir()
	prefix := testenv.Name(t, "k8s")
	stack.DeleteIndices(t, prefix+"-*")
	t.Cleanup(func() { stack.ES(t, http.MethodDelete, "/_index_template/"+prefix, nil, nil) })

	api := testenv.NewKubeAPI(t, true)
	id := strings.Repeat("ab", 32)
	ctrl := true
	api.Put(&corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "checkout-5f6d8-x2x9q", Namespace: "shop", UID: "uid-checkout",
			Labels:          map[string]string{"app.kubernetes.io/name": "checkout", "pod-template-hash": "5f6d8"},
			OwnerReferences: []metav1.OwnerReference{{Kind: "ReplicaSet", Name: "checkout-5f6d8", Controller: &ctrl}}},
		Spec:   corev1.PodSpec{NodeName: "test-node", Containers: []corev1.Container{{Name: "app", Image: "registry.example.com/shop/checkout:1.4.2"}}},
		Status: corev1.PodStatus{ContainerStatuses: []corev1.ContainerStatus{{Name: "app", ContainerID: "containerd://" + id}}},
	})
	api.Put(&corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "noisy-0", Namespace: "shop", UID: "uid-noisy",
			Annotations: map[string]string{"sluice.io/exclude": "true"}},
		Spec: corev1.PodSpec{NodeName: "test-node", Containers: []corev1.Container{{Name: "health", Image: "busybox"}}},
	})
	// A Java service: its stack trace is one document by its
	// sluice.io/multiline hint, though the input joins nothing.
	api.Put(&corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "billing-0", Namespace: "shop", UID: "uid-billing",
			Labels:      map[string]string{"app.kubernetes.io/name": "billing"},
			Annotations: map[string]string{"sluice.io/multiline": "java"}},
		Spec: corev1.PodSpec{NodeName: "test-node", Containers: []corev1.Container{{Name: "app", Image: "billing:3"}}},
	})

	logs := filepath.Join(dir, "containers")
	trace := []string{
		`Exception in thread "main" java.lang.IllegalStateException: invoice 9 not found`,
		"\tat com.shop.Invoices.find(Invoices.java:88)",
		"Caused by: java.sql.SQLException: timeout",
		"\tat com.shop.Db.query(Db.java:12)",
		"\t... 1 more",
	}
	var traceLines []string
	for _, l := range trace {
		traceLines = append(traceLines, "2026-11-25T10:00:02.000000000Z stderr F "+l)
	}
	appendLines(t, filepath.Join(logs, "billing-0_shop_app-"+strings.Repeat("ef", 32)+".log"), traceLines)
	appendLines(t, filepath.Join(logs, "noisy-0_shop_health-"+strings.Repeat("cd", 32)+".log"), []string{
		"2026-11-25T10:00:00.000000000Z stdout F GET /healthz 200",
		"2026-11-25T10:00:01.000000000Z stdout F GET /healthz 200",
	})
	appendLines(t, filepath.Join(logs, "checkout-5f6d8-x2x9q_shop_app-"+id+".log"), []string{
		`2026-11-25T10:00:00.000000000Z stdout F {"@timestamp":"2026-11-25T10:00:00.000Z","level":"error","message":"payment declined","order":"o-17"}`,
		"2026-11-25T10:00:01.000000000Z stderr F plain text on stderr",
	})

	shipperCfg := filepath.Join(dir, "shipper.yaml")
	listen := freeAddr(t)
	writeFile(t, shipperCfg, fmt.Sprintf(`
node: test-node
registry: %[1]s/registry
scan_interval: 200ms
registry_flush: 200ms
inputs:
  - type: container
    format: cri
    paths: ["%[2]s/*.log"]
    fields: {service: kubernetes, environment: production}
kubernetes:
  enabled: true
  kubeconfig: %[3]s
  environments:
    - {namespace: shop, environment: prod}
kafka:
  brokers: ["%[4]s"]
  topic: %[5]s-{type}
  partitions: 1
http:
  listen: %[6]s
`, dir, logs, api.Kubeconfig(t), stack.Broker, prefix, listen))
	aggCfg := filepath.Join(dir, "aggregator.yaml")
	writeFile(t, aggCfg, fmt.Sprintf(`
kafka:
  brokers: ["%[1]s"]
  group: %[2]s
  topics: [%[2]s-container]
  dead_letter_topic: %[2]s-dead-letter
  session_timeout: 6s
elasticsearch:
  addresses: ["%[3]s"]
  index: %[2]s-{type}-{service}-{environment}
  template_name: %[2]s
http:
  listen: 127.0.0.1:0
`, stack.Broker, prefix, stack.Elasticsearch))

	ship := startSluice(t, "ship", "-c", shipperCfg)
	agg := startSluice(t, "aggregate", "-c", aggCfg)
	index := prefix + "-container-checkout-prod"
	if got := stack.WaitCount(t, index, 2, 2*time.Minute); got != 2 {
		t.Fatalf("%s holds %d documents, want 2", index, got)
	}
	// The noisy pod's lines were read and left out: counted, not shipped.
	deadline := time.Now().Add(30 * time.Second)
	for {
		n, _ := metricSum(t, listen, "sluice_shipper_kubernetes_excluded_lines_total")
		if n == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("sluice_shipper_kubernetes_excluded_lines_total = %v, want 2", n)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if n, _ := metricSum(t, listen, "sluice_shipper_kubernetes_unknown_lines_total"); n != 0 {
		t.Errorf("%v lines shipped without metadata", n)
	}

	hits := stack.Search(t, index, `{"query":{"match":{"message":"payment declined"}}}`)
	if len(hits) != 1 {
		t.Fatalf("%d documents for the JSON line, want 1", len(hits))
	}
	doc := hits[0]
	for path, want := range map[string]string{
		"log.level":                                "error",
		"order":                                    "o-17",
		"service.name":                             "checkout",
		"service.environment":                      "prod",
		"kubernetes.namespace":                     "shop",
		"kubernetes.pod.name":                      "checkout-5f6d8-x2x9q",
		"kubernetes.pod.uid":                       "uid-checkout",
		"kubernetes.node.name":                     "test-node",
		"kubernetes.container.name":                "app",
		"kubernetes.deployment.name":               "checkout",
		"kubernetes.labels.app_kubernetes_io/name": "checkout",
		"container.image.name":                     "registry.example.com/shop/checkout:1.4.2",
		"container.id":                             id,
		"stream":                                   "stdout",
	} {
		if got := lookupPath(doc, path); got != want {
			t.Errorf("%s = %v, want %q\ndocument: %v", path, got, want, doc)
		}
	}
	raw := stack.Search(t, index, `{"query":{"match":{"stream":"stderr"}}}`)
	if len(raw) != 1 || raw[0]["message"] != "plain text on stderr" || raw[0]["error"] != nil {
		t.Errorf("the plain line's document: %v; want its message raw, without an error", raw)
	}
	billing := prefix + "-container-billing-prod"
	if got := stack.WaitCount(t, billing, 1, time.Minute); got != 1 {
		t.Fatalf("%s holds %d documents, want the stack trace as 1", billing, got)
	}
	time.Sleep(2 * time.Second) // a noisy line, or a trace line on its own, shipped anyway would have arrived
	if got := stack.Count(t, prefix+"-*"); got != 3 {
		t.Errorf("%d documents in %s-*, want 3: the excluded pod's lines were shipped, or the trace was split", got, prefix)
	}
	if docs := stack.Search(t, billing, `{"query":{"match_all":{}}}`); len(docs) != 1 || docs[0]["message"] != strings.Join(trace, "\n") {
		t.Errorf("the stack trace's documents: %v; want one, whose message is the whole trace", docs)
	}
	ship.stop()
	agg.stop()
}

// lookupPath reads a dotted path from a document's _source, where objects
// nest and a key may itself hold dots.
func lookupPath(doc map[string]any, path string) any {
	if v, ok := doc[path]; ok {
		return v
	}
	for i := strings.IndexByte(path, '.'); i > 0; i = next(path, i) {
		if m, ok := doc[path[:i]].(map[string]any); ok {
			if v := lookupPath(m, path[i+1:]); v != nil {
				return v
			}
		}
	}
	return nil
}

func next(path string, i int) int {
	j := strings.IndexByte(path[i+1:], '.')
	if j < 0 {
		return -1
	}
	return i + 1 + j
}
