package kubernetes

import (
	"context"
	"fmt"
	"time"

	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/informers"
	clientset "k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"
)

// Rules are the API permissions the shipper uses with cfg: list and watch
// of the pods (of its node: the field selector is not something RBAC can
// restrict to), and of namespaces when their labels are asked for. The
// ClusterRole in deploy/kubernetes grants exactly these (a test compares
// them, and another records what the client really asks for).
func Rules(cfg Config) []rbacv1.PolicyRule {
	rules := []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"list", "watch"}}}
	if len(cfg.NamespaceLabels) > 0 {
		rules = append(rules, rbacv1.PolicyRule{APIGroups: []string{""}, Resources: []string{"namespaces"}, Verbs: []string{"list", "watch"}})
	}
	return rules
}

// NewClient returns a client of the API: through cfg.Kubeconfig, or the
// pod's service account.
func NewClient(cfg Config) (clientset.Interface, error) {
	var rc *rest.Config
	var err error
	if cfg.Kubeconfig != "" {
		rc, err = clientcmd.BuildConfigFromFlags("", cfg.Kubeconfig)
	} else {
		rc, err = rest.InClusterConfig()
	}
	if err != nil {
		return nil, fmt.Errorf("kubernetes: %w (set kubernetes.kubeconfig, or run in a pod whose service account token is mounted)", err)
	}
	rc.UserAgent = "sluice-shipper"
	return clientset.NewForConfig(rc)
}

// Run watches the node's pods (and namespaces, if their labels are asked
// for) into s until ctx is done. It does not wait for the API: Synced
// says when the first list arrived.
func (s *Store) Run(ctx context.Context, client clientset.Interface, log *zap.Logger) {
	s.log = log
	selector := fields.OneTermEqualSelector("spec.nodeName", s.node).String()
	pods := informers.NewSharedInformerFactoryWithOptions(client, 0, informers.WithTweakListOptions(func(o *metav1.ListOptions) {
		o.FieldSelector = selector
	}))
	podInformer := pods.Core().V1().Pods().Informer()
	onError := func(_ *cache.Reflector, err error) {
		s.m.watchErrors.Inc()
		log.Warn("kubernetes API: list or watch failed; lines ship with the metadata cached", zap.Error(err))
	}
	_ = podInformer.SetWatchErrorHandler(onError)
	_ = podInformer.SetTransform(s.trimPod)
	_, _ = podInformer.AddEventHandler(handlers(s.setPod, s.deletePod))
	synced := []cache.InformerSynced{podInformer.HasSynced}
	pods.Start(ctx.Done())
	defer pods.Shutdown()
	if len(s.cfg.NamespaceLabels) > 0 {
		nss := informers.NewSharedInformerFactory(client, 0)
		nsInformer := nss.Core().V1().Namespaces().Informer()
		_ = nsInformer.SetWatchErrorHandler(onError)
		_, _ = nsInformer.AddEventHandler(handlers(s.setNamespace, s.deleteNamespace))
		synced = append(synced, nsInformer.HasSynced)
		nss.Start(ctx.Done())
		defer nss.Shutdown()
	}
	go func() {
		if cache.WaitForCacheSync(ctx.Done(), synced...) {
			s.synced.Store(true)
			log.Info("kubernetes metadata synced", zap.String("node", s.node), zap.Int("pods", s.podCount()))
		}
	}()
	sweep := time.NewTicker(max(s.cfg.DeleteGrace/4, time.Second))
	defer sweep.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-sweep.C:
			s.sweep()
		}
	}
}

// handlers calls set for objects of type T added or updated, and del for
// those deleted, also when the informer only learnt of it after the fact
// (DeletedFinalStateUnknown).
func handlers[T any](set, del func(T)) cache.ResourceEventHandlerFuncs {
	return cache.ResourceEventHandlerFuncs{
		AddFunc:    func(o any) { set(o.(T)) },
		UpdateFunc: func(_, o any) { set(o.(T)) },
		DeleteFunc: func(o any) {
			if d, ok := o.(cache.DeletedFinalStateUnknown); ok {
				o = d.Obj
			}
			if t, ok := o.(T); ok {
				del(t)
			}
		},
	}
}

// WaitSynced waits up to timeout for the first list of the node's pods,
// and reports whether it came.
func (s *Store) WaitSynced(ctx context.Context, timeout time.Duration) bool {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for !s.Synced() {
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
		}
	}
	return true
}

func (s *Store) podCount() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.byUID)
}

// trimPod keeps of a pod what the metadata is built from, so that the
// informer's cache holds no more than that (managed fields, volumes, env
// and big annotations such as last-applied-configuration are dropped).
func (s *Store) trimPod(o any) (any, error) {
	p, ok := o.(*corev1.Pod)
	if !ok {
		return o, nil
	}
	t := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{
		Name: p.Name, Namespace: p.Namespace, UID: p.UID, ResourceVersion: p.ResourceVersion,
		Labels: p.Labels, OwnerReferences: p.OwnerReferences, DeletionTimestamp: p.DeletionTimestamp,
	}}
	for k, v := range p.Annotations {
		if s.keepAnnotation(k) {
			if t.Annotations == nil {
				t.Annotations = map[string]string{}
			}
			t.Annotations[k] = v
		}
	}
	t.Spec.NodeName = p.Spec.NodeName
	for _, c := range p.Spec.InitContainers {
		t.Spec.InitContainers = append(t.Spec.InitContainers, corev1.Container{Name: c.Name, Image: c.Image})
	}
	for _, c := range p.Spec.Containers {
		t.Spec.Containers = append(t.Spec.Containers, corev1.Container{Name: c.Name, Image: c.Image})
	}
	for _, c := range p.Spec.EphemeralContainers {
		t.Spec.EphemeralContainers = append(t.Spec.EphemeralContainers, corev1.EphemeralContainer{EphemeralContainerCommon: corev1.EphemeralContainerCommon{Name: c.Name, Image: c.Image}})
	}
	for _, c := range p.Status.InitContainerStatuses {
		t.Status.InitContainerStatuses = append(t.Status.InitContainerStatuses, corev1.ContainerStatus{Name: c.Name, ContainerID: c.ContainerID})
	}
	for _, c := range p.Status.ContainerStatuses {
		t.Status.ContainerStatuses = append(t.Status.ContainerStatuses, corev1.ContainerStatus{Name: c.Name, ContainerID: c.ContainerID})
	}
	return t, nil
}
