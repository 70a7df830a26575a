package testenv

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
)

// KubeAPI speaks enough of the Kubernetes API for the informers: list
// and watch of pods (with the spec.nodeName field selector) and of
// namespaces, the watch either from a resource version or, as watch-list,
// with its initial events and the bookmark that ends them. It records the
// requests as RBAC verbs and resources.
type KubeAPI struct {
	// URL is the server's address, for a rest.Config's Host or a
	// kubeconfig (Kubeconfig).
	URL string

	t testing.TB
	// watchList: answer sendInitialEvents watches; off, refuse them as an
	// API server before watch-list does, so the client lists first.
	watchList bool

	mu       sync.Mutex
	rv       int
	objects  map[string]map[string]runtime.Object // resource -> namespace/name -> object
	history  []watchEvent
	watchers map[chan watchEvent]string // -> resource
	used     map[[2]string]bool         // {resource, verb}
	selector []string                   // field selectors of pod requests
}

type watchEvent struct {
	resource string
	rv       int
	Type     string          `json:"type"`
	Object   json.RawMessage `json:"object"`
}

// NewKubeAPI starts a KubeAPI, stopped when t ends. watchList makes it
// answer watch-list requests; without, it refuses them as API servers
// before watch-list do, and the client lists first.
func NewKubeAPI(t testing.TB, watchList bool) *KubeAPI {
	a := &KubeAPI{t: t, watchList: watchList, objects: map[string]map[string]runtime.Object{"pods": {}, "namespaces": {}},
		watchers: map[chan watchEvent]string{}, used: map[[2]string]bool{}}
	srv := httptest.NewServer(a)
	t.Cleanup(func() {
		a.mu.Lock()
		for ch := range a.watchers {
			close(ch)
			delete(a.watchers, ch)
		}
		a.mu.Unlock()
		srv.Close()
	})
	a.URL = srv.URL
	return a
}

// Kubeconfig writes a kubeconfig file that reaches a, and returns its path.
func (a *KubeAPI) Kubeconfig(t testing.TB) string {
	p := filepath.Join(t.TempDir(), "kubeconfig")
	cfg := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
  - name: test
    cluster: {server: %q}
users:
  - name: test
    user: {}
contexts:
  - name: test
    context: {cluster: test, user: test}
current-context: test
`, a.URL)
	if err := os.WriteFile(p, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func resourceOf(o runtime.Object) string {
	if _, ok := o.(*corev1.Pod); ok {
		return "pods"
	}
	return "namespaces"
}

func (a *KubeAPI) encode(o runtime.Object, rv int) json.RawMessage {
	switch v := o.(type) {
	case *corev1.Pod:
		v = v.DeepCopy()
		v.APIVersion, v.Kind, v.ResourceVersion = "v1", "Pod", strconv.Itoa(rv)
		o = v
	case *corev1.Namespace:
		v = v.DeepCopy()
		v.APIVersion, v.Kind, v.ResourceVersion = "v1", "Namespace", strconv.Itoa(rv)
		o = v
	}
	b, err := json.Marshal(o)
	if err != nil {
		a.t.Error(err)
	}
	return b
}

// Put adds or updates a pod or namespace; Delete deletes it. Watchers
// get the event.
func (a *KubeAPI) Put(o runtime.Object)    { a.change(o, false) }
func (a *KubeAPI) Delete(o runtime.Object) { a.change(o, true) }

func (a *KubeAPI) change(o runtime.Object, deleted bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.rv++
	res := resourceOf(o)
	key := keyOf(o)
	typ := "ADDED"
	if _, ok := a.objects[res][key]; ok {
		typ = "MODIFIED"
	}
	if deleted {
		typ = "DELETED"
		delete(a.objects[res], key)
	} else {
		a.objects[res][key] = o.DeepCopyObject()
	}
	ev := watchEvent{resource: res, rv: a.rv, Type: typ, Object: a.encode(o, a.rv)}
	a.history = append(a.history, ev)
	for ch, r := range a.watchers {
		if r == res {
			ch <- ev
		}
	}
}

func keyOf(o runtime.Object) string {
	switch v := o.(type) {
	case *corev1.Pod:
		return v.Namespace + "/" + v.Name
	case *corev1.Namespace:
		return v.Name
	}
	return ""
}

// matches applies a pod field selector.
func matches(o runtime.Object, selector string) bool {
	p, ok := o.(*corev1.Pod)
	if !ok || selector == "" {
		return true
	}
	sel, err := fields.ParseSelector(selector)
	if err != nil {
		return false
	}
	return sel.Matches(fields.Set{"spec.nodeName": p.Spec.NodeName})
}

func (a *KubeAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	res := strings.TrimPrefix(r.URL.Path, "/api/v1/")
	if r.Method != http.MethodGet || (res != "pods" && res != "namespaces") {
		a.t.Errorf("unexpected request %s %s", r.Method, r.URL)
		http.Error(w, "not found", http.StatusNotFound)
		return
	}
	q := r.URL.Query()
	verb := "list"
	if q.Get("watch") == "true" || q.Get("watch") == "1" {
		verb = "watch"
	}
	selector := q.Get("fieldSelector")
	a.mu.Lock()
	a.used[[2]string{res, verb}] = true
	if res == "pods" {
		a.selector = append(a.selector, selector)
	}
	a.mu.Unlock()
	if verb == "list" {
		a.list(w, res, selector)
		return
	}
	if q.Get("sendInitialEvents") == "true" && !a.watchList {
		http.Error(w, `{"kind":"Status","apiVersion":"v1","status":"Failure","message":"resourceVersionMatch is forbidden for watch","reason":"BadRequest","code":400}`, http.StatusBadRequest)
		return
	}
	from, _ := strconv.Atoi(q.Get("resourceVersion"))
	a.watch(w, r, res, selector, from, q.Get("sendInitialEvents") == "true")
}

func (a *KubeAPI) list(w http.ResponseWriter, res, selector string) {
	a.mu.Lock()
	items := []json.RawMessage{}
	for _, o := range a.objects[res] {
		if matches(o, selector) {
			items = append(items, a.encode(o, a.rv))
		}
	}
	kind := map[string]string{"pods": "PodList", "namespaces": "NamespaceList"}[res]
	body := fmt.Sprintf(`{"kind":%q,"apiVersion":"v1","metadata":{"resourceVersion":"%d"},"items":[%s]}`, kind, a.rv, joinRaw(items))
	a.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write([]byte(body))
}

func joinRaw(items []json.RawMessage) string {
	s := make([]string, len(items))
	for i, it := range items {
		s[i] = string(it)
	}
	return strings.Join(s, ",")
}

func (a *KubeAPI) watch(w http.ResponseWriter, r *http.Request, res, selector string, from int, initial bool) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Transfer-Encoding", "chunked")
	flusher := w.(http.Flusher)
	enc := json.NewEncoder(w)
	ch := make(chan watchEvent, 64)
	a.mu.Lock()
	var backlog []watchEvent
	if initial {
		for _, o := range a.objects[res] {
			if matches(o, selector) {
				backlog = append(backlog, watchEvent{Type: "ADDED", Object: a.encode(o, a.rv)})
			}
		}
		kind := map[string]string{"pods": "Pod", "namespaces": "Namespace"}[res]
		backlog = append(backlog, watchEvent{Type: "BOOKMARK", Object: json.RawMessage(fmt.Sprintf(
			`{"kind":%q,"apiVersion":"v1","metadata":{"resourceVersion":"%d","annotations":{"k8s.io/initial-events-end":"true"}}}`, kind, a.rv))})
	} else {
		for _, ev := range a.history {
			if ev.resource == res && ev.rv > from {
				backlog = append(backlog, ev)
			}
		}
	}
	a.watchers[ch] = res
	a.mu.Unlock()
	defer func() {
		a.mu.Lock()
		if _, ok := a.watchers[ch]; ok {
			delete(a.watchers, ch)
		}
		a.mu.Unlock()
	}()
	send := func(ev watchEvent) bool {
		if ev.Type != "BOOKMARK" && selector != "" {
			var p corev1.Pod
			if json.Unmarshal(ev.Object, &p) == nil && !matches(&p, selector) {
				return true
			}
		}
		if err := enc.Encode(ev); err != nil {
			return false
		}
		flusher.Flush()
		return true
	}
	for _, ev := range backlog {
		if !send(ev) {
			return
		}
	}
	flusher.Flush()
	for {
		select {
		case <-r.Context().Done():
			return
		case ev, ok := <-ch:
			if !ok || !send(ev) {
				return
			}
		}
	}
}

// UsedRules returns what the clients asked for, as RBAC rules: one per
// resource, its verbs in the order get, list, watch.
func (a *KubeAPI) UsedRules() []rbacv1.PolicyRule {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []rbacv1.PolicyRule
	for _, res := range []string{"pods", "namespaces"} {
		var verbs []string
		for _, v := range []string{"get", "list", "watch"} {
			if a.used[[2]string{res, v}] {
				verbs = append(verbs, v)
			}
		}
		if len(verbs) > 0 {
			out = append(out, rbacv1.PolicyRule{APIGroups: []string{""}, Resources: []string{res}, Verbs: verbs})
		}
	}
	return out
}

// Selectors returns the field selectors pods were requested with.
func (a *KubeAPI) Selectors() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.selector)
}

// RulesEqual reports whether two lists of rules grant the same, in the
// same order.
func RulesEqual(a, b []rbacv1.PolicyRule) bool {
	return slices.EqualFunc(a, b, func(x, y rbacv1.PolicyRule) bool {
		return slices.Equal(x.APIGroups, y.APIGroups) && slices.Equal(x.Resources, y.Resources) && slices.Equal(x.Verbs, y.Verbs) &&
			len(x.ResourceNames) == 0 && len(y.ResourceNames) == 0 && len(x.NonResourceURLs) == 0 && len(y.NonResourceURLs) == 0
	})
}
