package kubernetes

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clientset "k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/sluicelog/sluice/internal/testenv"
)

// TestWatchThroughHTTP runs the real client (REST client, reflector,
// informers) against an HTTP server speaking the list and watch API: a
// pod of the node is there at start, one of another node never shows, a
// pod is added, its labels changed, and it is deleted. What the client
// asked for is exactly Rules: the ClusterRole grants no more and no less
// (deploy/kubernetes's test compares it with Rules).
func TestWatchThroughHTTP(t *testing.T) {
	for _, mode := range []struct {
		name      string
		watchList bool
		nsLabels  []string
	}{
		{"list then watch", false, nil},
		{"watch-list", true, nil},
		{"with namespace labels", false, []string{"team"}},
	} {
		t.Run(mode.name, func(t *testing.T) {
			api := testenv.NewKubeAPI(t, mode.watchList)
			api.Put(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "shop", Labels: map[string]string{"team": "payments"}}})
			first := testPod()
			api.Put(first)
			other := testPod()
			other.Name, other.UID, other.Spec.NodeName = "elsewhere", "uid-other", "node-b"
			api.Put(other)

			client, err := clientset.NewForConfig(&rest.Config{Host: api.URL})
			if err != nil {
				t.Fatal(err)
			}
			cfg := testConfig()
			cfg.NamespaceLabels = mode.nsLabels
			s := NewStore(cfg, "node-a", prometheus.NewRegistry())
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() { defer close(done); s.Run(ctx, client, zap.NewNop()) }()
			defer func() { cancel(); <-done }()
			if !s.WaitSynced(ctx, 10*time.Second) {
				t.Fatal("not synced")
			}
			if s.Lookup(Ref{Namespace: "shop", Pod: first.Name, Container: "app"}) == nil {
				t.Fatal("the node's pod listed at start is not known")
			}
			if s.Lookup(Ref{Namespace: "shop", Pod: "elsewhere", Container: "app"}) != nil {
				t.Error("a pod of another node is known")
			}
			if mode.nsLabels != nil {
				if got := s.Lookup(Ref{Namespace: "shop", Pod: first.Name, Container: "app"}).Fields["kubernetes.namespace_labels.team"]; got != "payments" {
					t.Errorf("namespace label = %q", got)
				}
			}

			added := testPod()
			added.Name, added.UID = "web-1", "uid-web-1"
			added.Status.ContainerStatuses = nil
			api.Put(added)
			ref := Ref{Namespace: "shop", Pod: "web-1", Container: "app"}
			eventually(t, "the added pod", func() bool { return s.Lookup(ref) != nil })

			added = added.DeepCopy()
			added.Labels["tier"] = "canary"
			api.Put(added)
			eventually(t, "the changed label", func() bool { return s.Lookup(ref).Fields["kubernetes.labels.tier"] == "canary" })

			api.Delete(added)
			eventually(t, "the deletion", func() bool {
				s.mu.RLock()
				defer s.mu.RUnlock()
				e := s.byUID[added.UID]
				return e != nil && !e.deleted.IsZero()
			})
			if s.Lookup(ref) == nil {
				t.Error("a pod deleted a moment ago lost its metadata")
			}

			for _, sel := range api.Selectors() {
				if sel != "spec.nodeName=node-a" {
					t.Errorf("pods requested with field selector %q, want spec.nodeName=node-a", sel)
				}
			}
			// Against an API server without watch-list the client lists
			// and watches: exactly Rules. With it, it only watches, but
			// still needs list for the servers without.
			got, want := api.UsedRules(), Rules(cfg)
			if mode.watchList {
				for i := range want {
					want[i].Verbs = []string{"watch"}
				}
			}
			if !testenv.RulesEqual(got, want) {
				t.Errorf("the client asked for %v; want %v (Rules, and so the ClusterRole)", got, want)
			}
		})
	}
}

// TestAPIDown: with the API answering nothing but errors, the store does
// not sync, lookups answer at once (nothing known), and the failures are
// counted; once the API answers, the pods arrive.
func TestAPIDown(t *testing.T) {
	api := testenv.NewKubeAPI(t, false)
	api.Put(testPod())
	var up atomic.Bool
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !up.Load() {
			http.Error(w, "unavailable", http.StatusServiceUnavailable)
			return
		}
		target, _ := url.Parse(api.URL)
		httputil.NewSingleHostReverseProxy(target).ServeHTTP(w, r)
	}))
	defer front.Close()
	client, err := clientset.NewForConfig(&rest.Config{Host: front.URL})
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	s := NewStore(testConfig(), "node-a", reg)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); s.Run(ctx, client, zap.NewNop()) }()
	defer func() { cancel(); <-done }()
	if s.WaitSynced(ctx, 500*time.Millisecond) {
		t.Fatal("synced while the API is down")
	}
	ref := Ref{Namespace: "shop", Pod: testPod().Name, Container: "app"}
	start := time.Now()
	if s.Lookup(ref) != nil || time.Since(start) > 10*time.Millisecond {
		t.Errorf("lookup while the API is down: not at once, or not empty")
	}
	if n := testutil.ToFloat64(s.m.watchErrors); n < 1 {
		t.Errorf("sluice_shipper_kubernetes_watch_errors_total = %v while the API is down", n)
	}
	up.Store(true)
	eventually(t, "the pod once the API answers", func() bool { return s.Lookup(ref) != nil })
}
