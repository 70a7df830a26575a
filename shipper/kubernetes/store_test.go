package kubernetes

import (
	"context"
	"maps"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
)

// eventually waits up to 5s for cond.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// fakeClock is a settable clock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// TestStoreFollowsPods runs the informers on client-go's fake clientset:
// a pod added, its labels changed, deleted (kept for delete_grace, then
// forgotten), and a namespace's labels.
func TestStoreFollowsPods(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	shop := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "shop", Labels: map[string]string{"team": "payments"}}}
	client := fake.NewClientset(shop)
	cfg := testConfig()
	cfg.NamespaceLabels = []string{"team"}
	s := NewStore(cfg, "node-a", prometheus.NewRegistry())
	clock := &fakeClock{t: time.Unix(1000, 0)}
	s.now = clock.now
	done := make(chan struct{})
	go func() { defer close(done); s.Run(ctx, client, zap.NewNop()) }()
	if !s.WaitSynced(ctx, 5*time.Second) {
		t.Fatal("not synced")
	}
	ref := Ref{Namespace: "shop", Pod: "checkout-7d9f8b6c5d-x2x9q", Container: "app"}
	if s.Lookup(ref) != nil {
		t.Fatal("metadata before the pod exists")
	}

	pods := client.CoreV1().Pods("shop")
	pod := testPod()
	if _, err := pods.Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the pod", func() bool { return s.Lookup(ref) != nil })
	c := s.Lookup(ref)
	if c.Fields["kubernetes.labels.tier"] != "web" || c.Fields["kubernetes.namespace_labels.team"] != "payments" || c.Fields["kubernetes.deployment.name"] != "checkout" {
		t.Errorf("fields %v", c.Fields)
	}
	if byID := s.Lookup(Ref{ID: "abc123"}); byID != c {
		t.Errorf("lookup by container id: %v", byID)
	}
	// The cache holds no annotation that is neither allowed nor a hint.
	if _, ok := c.Fields["kubernetes.annotations.kubectl_kubernetes_io/last-applied-configuration"]; ok {
		t.Error("an annotation outside the allow-list is carried")
	}

	gen := s.Generation()
	pod.Labels["tier"] = "api"
	if _, err := pods.Update(ctx, pod, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the new label", func() bool { return s.Lookup(ref).Fields["kubernetes.labels.tier"] == "api" })
	if s.Generation() == gen {
		t.Error("generation did not move")
	}

	shop.Labels["team"] = "checkout"
	if _, err := client.CoreV1().Namespaces().Update(ctx, shop, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the namespace's new label", func() bool { return s.Lookup(ref).Fields["kubernetes.namespace_labels.team"] == "checkout" })

	if err := pods.Delete(ctx, pod.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the deletion", func() bool {
		s.mu.RLock()
		defer s.mu.RUnlock()
		e := s.byUID[pod.UID]
		return e != nil && !e.deleted.IsZero()
	})
	clock.add(cfg.DeleteGrace - time.Second)
	s.sweep()
	if s.Lookup(ref) == nil || s.Lookup(Ref{ID: "abc123"}) == nil {
		t.Fatal("a pod deleted within delete_grace lost its metadata")
	}
	clock.add(2 * time.Second)
	s.sweep()
	if s.Lookup(ref) != nil || s.Lookup(Ref{ID: "abc123"}) != nil || s.podCount() != 0 {
		t.Fatal("a pod deleted longer than delete_grace ago is still held")
	}
	cancel()
	<-done
}

// TestStoreRecreatedPod: a StatefulSet's pod deleted and created again
// under its name; the old run's container keeps its metadata by id while
// the name goes to the new pod.
func TestStoreRecreatedPod(t *testing.T) {
	cfg := testConfig()
	s := NewStore(cfg, "node-a", prometheus.NewRegistry())
	old := testPod()
	s.setPod(old)
	s.deletePod(old)
	recreated := testPod()
	recreated.UID = "uid-2"
	recreated.Labels["tier"] = "new"
	recreated.Status.ContainerStatuses[0].ContainerID = "containerd://def456"
	s.setPod(recreated)
	if c := s.Lookup(Ref{ID: "abc123"}); c == nil || c.Fields["kubernetes.pod.uid"] != "uid-1" {
		t.Errorf("old container by id: %v", c)
	}
	if c := s.Lookup(Ref{Namespace: "shop", Pod: recreated.Name, Container: "app"}); c == nil || c.Fields["kubernetes.pod.uid"] != "uid-2" {
		t.Errorf("by name: %v", c)
	}
}

// TestTrimPod: the informer's cache keeps of a pod only what the metadata
// is built from, so that a node's pods with big specs and annotations cost
// little memory.
func TestTrimPod(t *testing.T) {
	cfg := testConfig()
	s := NewStore(cfg, "node-a", prometheus.NewRegistry())
	pod := testPod()
	pod.ManagedFields = []metav1.ManagedFieldsEntry{{Manager: "kubectl"}}
	pod.Annotations["sluice.io/type"] = "service"
	pod.Spec.Containers[0].Env = []corev1.EnvVar{{Name: "BIG", Value: strings.Repeat("x", 1<<16)}}
	pod.Spec.Volumes = []corev1.Volume{{Name: "data"}}
	o, err := s.trimPod(pod)
	if err != nil {
		t.Fatal(err)
	}
	got := o.(*corev1.Pod)
	if len(got.ManagedFields) != 0 || len(got.Spec.Volumes) != 0 || len(got.Spec.Containers[0].Env) != 0 {
		t.Errorf("trimmed pod keeps %+v", got)
	}
	if _, ok := got.Annotations["kubectl.kubernetes.io/last-applied-configuration"]; ok || got.Annotations["sluice.io/type"] != "service" || got.Annotations["team.example.com/owner"] != "payments" {
		t.Errorf("annotations %v: want the hints and the allowed ones only", got.Annotations)
	}
	if !maps.Equal(buildPod(got, nil, "node-a", &cfg)["app"].Fields, buildPod(pod, nil, "node-a", &cfg)["app"].Fields) {
		t.Error("the trimmed pod's metadata differs from the pod's")
	}
}

// TestStoreKeepsMetadataOnStatusOnlyUpdates: a pod's status changes all the
// time (probes, conditions), each an update event with a new resource
// version. When nothing its metadata is built from changed, its containers'
// metadata stays the same (the same values, no new generation): every file
// of the pod would otherwise close its burst and build its fields, record
// headers and encoder again at each probe.
func TestStoreKeepsMetadataOnStatusOnlyUpdates(t *testing.T) {
	s := NewStore(testConfig(), "node-a", prometheus.NewRegistry())
	pod := testPod()
	pod.ResourceVersion = "1"
	s.setPod(pod)
	before, gen := s.Lookup(Ref{ID: "abc123"}), s.Generation()
	probed := testPod()
	probed.ResourceVersion = "2"
	probed.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionFalse}}
	s.setPod(probed)
	if after := s.Lookup(Ref{ID: "abc123"}); after != before || s.Generation() != gen {
		t.Errorf("a status-only update made new metadata (generation %d -> %d)", gen, s.Generation())
	}
	relabelled := testPod()
	relabelled.ResourceVersion = "3"
	relabelled.Labels["tier"] = "edge"
	s.setPod(relabelled)
	if after := s.Lookup(Ref{ID: "abc123"}); after == before || after.Fields["kubernetes.labels.tier"] != "edge" {
		t.Errorf("a label change did not reach the metadata: %v", after.Fields)
	}
}
