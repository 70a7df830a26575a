package kubernetes

import (
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/types"
)

// Store keeps the metadata of the containers of one node's pods, as the
// informers report them; lookups never wait on the API. Its memory is
// bounded by the node's pods (and those deleted less than delete_grace
// ago). Safe for concurrent use.
type Store struct {
	cfg  Config
	node string
	now  func() time.Time
	m    *metrics
	log  *zap.Logger // Run's

	mu     sync.RWMutex
	byUID  map[types.UID]*podEntry
	byName map[string]*podEntry         // namespace/name: the newest pod of that name
	byID   map[string]*Container        // container id (without the runtime's scheme)
	nsLabs map[string]map[string]string // namespace labels, if watched
	// gen counts changes, so that readers re-look only when something
	// changed.
	gen    atomic.Uint64
	synced atomic.Bool
}

// podEntry is one pod's metadata.
type podEntry struct {
	pod        *corev1.Pod
	containers map[string]*Container
	ids        []string  // its keys in byID
	deleted    time.Time // zero while the pod exists
}

// Ref names a container as its log file's path does.
type Ref struct {
	Namespace, Pod, Container string
	// ID is the container id, if the path has it.
	ID string
}

// NewStore returns an empty store for the pods of node, with its metrics
// on reg. cfg must have its defaults set.
func NewStore(cfg Config, node string, reg prometheus.Registerer) *Store {
	s := &Store{cfg: cfg, node: node, now: time.Now, m: newMetrics(reg), log: zap.NewNop(),
		byUID: map[types.UID]*podEntry{}, byName: map[string]*podEntry{}, byID: map[string]*Container{}, nsLabs: map[string]map[string]string{}}
	return s
}

// Lookup returns the metadata of the container r, nil if it is not known
// (yet, or the API is out of reach since before it started).
func (s *Store) Lookup(r Ref) *Container {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if r.ID != "" {
		if c := s.byID[r.ID]; c != nil {
			return c
		}
	}
	if e := s.byName[r.Namespace+"/"+r.Pod]; e != nil {
		return e.containers[r.Container]
	}
	return nil
}

// Generation changes whenever the metadata of some container does.
func (s *Store) Generation() uint64 { return s.gen.Load() }

// Synced reports whether the first list of the node's pods arrived.
func (s *Store) Synced() bool { return s.synced.Load() }

// CountUnknown counts n lines shipped without their pod's metadata.
func (s *Store) CountUnknown(n int) { s.m.unknown.Add(float64(n)) }

// CountExcluded counts n lines left out by the sluice.io/exclude hint.
func (s *Store) CountExcluded(n int) { s.m.excluded.Add(float64(n)) }

// setPod adds or updates a pod.
func (s *Store) setPod(pod *corev1.Pod) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if old := s.byUID[pod.UID]; old != nil && old.deleted.IsZero() && s.sameMetadata(old.pod, pod) {
		// A status-only update (probes, conditions): the metadata stays
		// as it is, and so do the fields of the pod's files.
		old.pod = pod
		return
	}
	e := &podEntry{pod: pod}
	s.build(e)
	for name, c := range e.containers {
		if len(c.Ignored) > 0 {
			s.log.Warn("pod hints ignored", zap.String("namespace", pod.Namespace), zap.String("pod", pod.Name),
				zap.String("container", name), zap.Strings("hints", c.Ignored))
		}
	}
	if old := s.byUID[pod.UID]; old != nil {
		s.unindex(old)
	}
	s.byUID[pod.UID] = e
	s.byName[pod.Namespace+"/"+pod.Name] = e
	s.index(e)
	s.changed()
}

// sameMetadata reports whether a and b, two versions of one pod, give the
// same metadata: whatever trimPod keeps but the resource version is alike.
func (s *Store) sameMetadata(a, b *corev1.Pod) bool {
	ta, _ := s.trimPod(a)
	tb, _ := s.trimPod(b)
	pa, pb := ta.(*corev1.Pod), tb.(*corev1.Pod)
	pa.ResourceVersion, pb.ResourceVersion = "", ""
	return equality.Semantic.DeepEqual(pa, pb)
}

// deletePod marks a pod deleted: its metadata stays for delete_grace.
func (s *Store) deletePod(pod *corev1.Pod) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e := s.byUID[pod.UID]; e != nil && e.deleted.IsZero() {
		e.deleted = s.now()
	}
}

// setNamespace records a namespace's labels and rebuilds its pods.
func (s *Store) setNamespace(ns *corev1.Namespace) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.nsLabs[ns.Name] = ns.Labels
	s.rebuildNamespace(ns.Name)
}

func (s *Store) deleteNamespace(ns *corev1.Namespace) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.nsLabs, ns.Name)
	s.rebuildNamespace(ns.Name)
}

func (s *Store) rebuildNamespace(name string) {
	for _, e := range s.byUID {
		if e.pod.Namespace == name {
			s.unindex(e)
			s.build(e)
			s.index(e)
		}
	}
	s.changed()
}

// sweep forgets the pods deleted longer than delete_grace ago.
func (s *Store) sweep() {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	n := 0
	for uid, e := range s.byUID {
		if e.deleted.IsZero() || now.Sub(e.deleted) < s.cfg.DeleteGrace {
			continue
		}
		s.unindex(e)
		delete(s.byUID, uid)
		if key := e.pod.Namespace + "/" + e.pod.Name; s.byName[key] == e {
			delete(s.byName, key)
		}
		n++
	}
	if n > 0 {
		s.changed()
	}
}

func (s *Store) build(e *podEntry) {
	var ns map[string]string
	if len(s.cfg.NamespaceLabels) > 0 {
		ns = s.nsLabs[e.pod.Namespace]
	}
	e.containers = buildPod(e.pod, ns, s.node, &s.cfg)
	e.ids = e.ids[:0]
	for _, c := range e.containers {
		if id := c.Fields["container.id"]; id != "" {
			e.ids = append(e.ids, id)
		}
	}
}

func (s *Store) index(e *podEntry) {
	for _, c := range e.containers {
		if id := c.Fields["container.id"]; id != "" {
			s.byID[id] = c
		}
	}
}

func (s *Store) unindex(e *podEntry) {
	for _, id := range e.ids {
		if c := s.byID[id]; c != nil && e.containers[c.Fields["kubernetes.container.name"]] == c {
			delete(s.byID, id)
		}
	}
}

// changed bumps the generation and the pods gauge; s.mu is held.
func (s *Store) changed() {
	s.gen.Add(1)
	s.m.pods.Set(float64(len(s.byUID)))
}

// keepAnnotation reports whether an annotation is worth keeping in the
// cache: an allowed one, or a hint.
func (s *Store) keepAnnotation(k string) bool {
	return strings.HasPrefix(k, "sluice.io") || matchAny(s.cfg.Annotations, k)
}

// metrics are the store's.
type metrics struct {
	pods              prometheus.Gauge
	unknown, excluded prometheus.Counter
	watchErrors       prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		pods:        prometheus.NewGauge(prometheus.GaugeOpts{Name: "sluice_shipper_kubernetes_pods", Help: "Pods whose metadata the shipper holds: its node's, and those deleted less than kubernetes.delete_grace ago."}),
		unknown:     prometheus.NewCounter(prometheus.CounterOpts{Name: "sluice_shipper_kubernetes_unknown_lines_total", Help: "Container lines shipped without their pod's metadata (pod not in the cache: not yet seen, or the API out of reach), flagged no_pod_metadata."}),
		excluded:    prometheus.NewCounter(prometheus.CounterOpts{Name: "sluice_shipper_kubernetes_excluded_lines_total", Help: "Container lines not shipped because their pod says sluice.io/exclude: \"true\"."}),
		watchErrors: prometheus.NewCounter(prometheus.CounterOpts{Name: "sluice_shipper_kubernetes_watch_errors_total", Help: "Failed lists and watches of the Kubernetes API; the informers retry with backoff, and lines ship with the metadata cached meanwhile."}),
	}
	reg.MustRegister(m.pods, m.unknown, m.excluded, m.watchErrors)
	return m
}
