package shipper

import (
	"context"
	"path/filepath"
	"slices"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	clientset "k8s.io/client-go/kubernetes"

	"github.com/sluicelog/sluice/internal/event"
	"github.com/sluicelog/sluice/internal/template"
	"github.com/sluicelog/sluice/shipper/kubernetes"
)

// podMeta is a container log file's view of its pod's metadata, kept by
// the shipper's kubernetes.Store. Owned by the harvester's goroutine.
type podMeta struct {
	store *kubernetes.Store
	ref   kubernetes.Ref
	// base is the file's fields without the metadata: the input's, the
	// path's.
	base map[string]string
	gen  uint64
	// cur is the metadata the file's lines carry now (nil: not known).
	cur *kubernetes.Container
	// typ is the document type, the input's or the sluice.io/type hint.
	typ string
	// filter is the line filter under the sluice.io/include-lines and
	// exclude-lines hints (nil: none); filtered says a hint gave it.
	filter   *lineFilter
	filtered bool
	// multiline is the sluice.io/multiline hint the joiner was built by.
	multiline string
	// topic is the topic of the lines under this metadata; read by
	// /files from any goroutine.
	topic atomic.Pointer[string]
}

// podUID is the field of a pod's uid in its containers' metadata.
const podUID = "kubernetes.pod.uid"

// containerRef names the container whose log is at path, as its name
// says: /var/log/containers/<pod>_<namespace>_<container>-<id>.log, or
// Docker's /var/lib/docker/containers/<id>/<id>-json.log.
func containerRef(path string) kubernetes.Ref {
	f := map[string]string{}
	kubernetesFields(path, f)
	r := kubernetes.Ref{Namespace: f["kubernetes.namespace"], Pod: f["kubernetes.pod.name"], Container: f["kubernetes.container.name"], ID: f["container.id"]}
	if dir := filepath.Base(filepath.Dir(path)); r.ID == "" && len(dir) == 64 && filepath.Base(path) == dir+"-json.log" {
		r.ID = dir
	}
	return r
}

// attachPod gives h, a container log file's harvester, its pod's
// metadata (when the shipper watches the API): its fields, type and topic
// as they are now.
func (h *harvester) attachPod(path string, now time.Time) {
	s := h.sh
	if s.kube == nil || (h.input.cfg.Format != FormatCRI && h.input.cfg.Format != FormatDocker) {
		return
	}
	h.pod = &podMeta{store: s.kube, ref: containerRef(path), base: h.fields, typ: h.input.cfg.Type}
	h.pod.gen = s.kube.Generation()
	h.applyPod(s.kube.Lookup(h.pod.ref), path, now)
	h.pod.multiline = h.multilineHint() // the joiner is built by it (multilineConfig)
	h.topic = *h.pod.topic.Load()       // before the harvester runs: its Prepare's
}

// applyPod makes c the metadata of h's lines.
func (h *harvester) applyPod(c *kubernetes.Container, path string, now time.Time) {
	p := h.pod
	p.cur = c
	fields := make(map[string]string, len(p.base)+32)
	for k, v := range p.base {
		fields[k] = v
	}
	p.typ = h.input.cfg.Type
	if c != nil {
		for k, v := range c.Fields {
			fields[k] = v
		}
		// The file's own container id wins: the pod's status names the
		// container's current run, the file one run of it.
		if id, ok := p.base["container.id"]; ok {
			fields["container.id"] = id
		}
		if c.Type != "" {
			p.typ = c.Type
		}
	}
	p.filter, p.filtered = nil, false
	if c != nil && (c.IncludeLines != nil || c.ExcludeLines != nil) {
		in := InputConfig{IncludeLines: h.input.cfg.IncludeLines, ExcludeLines: h.input.cfg.ExcludeLines}
		if c.IncludeLines != nil {
			in.IncludeLines = c.IncludeLines
		}
		if c.ExcludeLines != nil {
			in.ExcludeLines = c.ExcludeLines
		}
		p.filter, p.filtered = newLineFilter(&in), true
	}
	h.fields, h.fieldsHeader = fields, event.EncodeFields(fields)
	probe := event.Event{Type: p.typ, Node: h.sh.cfg.Node, Path: path, Fields: fields}
	topic := template.TopicName(h.sh.topic.Render(probe.Field, now, template.TopicValue))
	p.topic.Store(&topic)
	h.dropEncoder()
}

// currentTopic is the topic of h's lines now: the one rendered at start,
// or under its pod's metadata. Safe from any goroutine.
func (h *harvester) currentTopic() string {
	if h.pod != nil {
		return *h.pod.topic.Load()
	}
	return h.topic
}

// podLine runs before each line of a container log file is shipped: it
// takes metadata that changed since the last line, and says whether the
// line is left out (sluice.io/exclude) and whether it goes without
// metadata. It never waits on the API.
func (h *harvester) podLine(ctx context.Context, now time.Time) (exclude, unknown bool, err error) {
	if err := h.refreshPod(ctx, now); err != nil {
		return false, false, err
	}
	if h.pod.cur == nil {
		return false, true, nil
	}
	return h.pod.cur.Exclude, false, nil
}

// refreshPod takes the metadata of h's container if it changed since it
// last looked.
func (h *harvester) refreshPod(ctx context.Context, now time.Time) error {
	p := h.pod
	g := p.store.Generation()
	if g == p.gen {
		return nil
	}
	p.gen = g
	c := p.store.Lookup(p.ref)
	if c == p.cur || p.cur != nil && (c == nil || c.Fields[podUID] != p.cur.Fields[podUID]) {
		// A file is one run of one container, of one pod for good: a
		// pod of its name found since is another (deleted and created
		// again, as a StatefulSet's are), and one forgotten (past
		// delete_grace) is still the one its lines were written in.
		return nil
	}
	topic := h.currentTopic()
	h.closeBurst() // Prepare may wait for Kafka: not holding the burst's budget
	h.applyPod(c, h.currentPath(), now)
	if t := h.currentTopic(); t != topic {
		return h.sh.publisher.Prepare(ctx, t)
	}
	return nil
}

// podJoin runs before each line read from a container log file goes to
// the joiner: it takes metadata that changed, and if its
// sluice.io/multiline hint did, the lines the joiner holds are shipped as
// the events they are so far (joined by the rule they were read under),
// and the line and those after it are joined by the new rule. A hint that
// comes after a stack trace's first lines were read thus splits that one
// trace, and no line is held back or read twice.
//
// The flushed events go through the filter, the exclusion and the quota
// as any others (shipAll); over reports the quota's (shipFair).
func (h *harvester) podJoin(ctx context.Context, now time.Time) (over bool, err error) {
	if err := h.refreshPod(ctx, now); err != nil {
		return false, err
	}
	want := h.multilineHint()
	if want == h.pod.multiline {
		return false, nil
	}
	if h.join != nil && h.join.pending() {
		if over, err = h.shipAll(ctx, h.join.flushAll(), now); err != nil {
			return over, err
		}
	}
	h.pod.multiline = want
	h.join = newJoiner(h.multilineConfig())
	return over, nil
}

// multilineConfig is the multiline block h's lines are joined by: the
// input's, or the one the sluice.io/multiline hint of its container makes
// (a preset, none, or a pattern that continuation lines match, joined to
// the line before them), with the input's caps and timeout if it has
// them; nil joins nothing.
func (h *harvester) multilineConfig() *MultilineConfig {
	in := h.input.cfg.Multiline
	hint := h.multilineHint()
	switch {
	case hint == "":
		return in
	case hint == "none":
		return nil
	}
	m := MultilineConfig{}
	if in != nil {
		m = MultilineConfig{MaxLines: in.MaxLines, MaxBytes: in.MaxBytes, Timeout: in.Timeout}
	}
	if slices.Contains(multilinePresets, hint) {
		m.Preset = hint
	} else {
		m.Pattern = hint
	}
	m.setDefaults(h.sh.cfg.MaxLineBytes)
	return &m
}

// lineFilter is the filter of h's lines: the hints', or the input's.
func (h *harvester) lineFilter() *lineFilter {
	if h.pod != nil && h.pod.filtered {
		return h.pod.filter
	}
	return h.input.filter
}

// skipLine moves past a line (or event) that is not shipped: left out by a
// line filter or an exclude hint, over its quota (over_quota: drop), or
// shipped before a restart (rejoin). It is handled with the open burst's
// lines, in order, without going to Kafka or counting as read; the
// registry moves over it with the burst once the burst is acknowledged,
// though not past an event still pending in another stream. The caller
// counts it under its reason.
func (h *harvester) skipLine(l line, now time.Time) {
	if h.gen.pending {
		h.identify(h.reader.head, h.gen.acks) // as ship would: the offset moves under the file's name
	}
	if h.burst == nil {
		h.burst = h.openBurst(now)
	}
	_, resume := l.covered()
	if h.join != nil {
		if at, ok := h.join.firstPending(); ok && at < resume {
			resume = at
		}
	}
	h.burst.skip(resume)
	h.ended(h.burst, l)
}

// docType is the document type of h's lines.
func (h *harvester) docType() string {
	if h.pod != nil {
		return h.pod.typ
	}
	return h.input.cfg.Type
}

// multilineHint returns the sluice.io/multiline hint of the file's container
// ("" if none, or not a container log with metadata): for the multiline
// reader.
func (h *harvester) multilineHint() string {
	if h.pod == nil || h.pod.cur == nil {
		return ""
	}
	return h.pod.cur.Multiline
}

// kubeClient is the Kubernetes API client the metadata is watched with.
type kubeClient = clientset.Interface

// WithKubernetesClient makes the shipper watch pods through client instead
// of one made from the kubernetes section (in-cluster or kubeconfig).
func WithKubernetesClient(client clientset.Interface) Option {
	return func(s *Shipper) { s.kubeClient = client }
}

// newKubernetes prepares the pod metadata store, when kubernetes.enabled.
func (s *Shipper) newKubernetes(reg prometheus.Registerer) error {
	if !s.cfg.Kubernetes.Enabled {
		return nil
	}
	if s.kubeClient == nil {
		c, err := kubernetes.NewClient(s.cfg.Kubernetes)
		if err != nil {
			return err
		}
		s.kubeClient = c
	}
	s.kube = kubernetes.NewStore(s.cfg.Kubernetes, s.cfg.Node, reg)
	return nil
}

// runKubernetes starts watching the node's pods and waits up to
// kubernetes.sync_timeout for their first list, so that the files read at
// start carry their metadata; the returned channel is closed once the
// watch stopped with ctx.
func (s *Shipper) runKubernetes(ctx context.Context) <-chan struct{} {
	done := make(chan struct{})
	if s.kube == nil {
		close(done)
		return done
	}
	log := s.log.Named("kubernetes")
	kubernetes.LogTo(log)
	go func() {
		defer close(done)
		s.kube.Run(ctx, s.kubeClient, log)
	}()
	if !s.kube.WaitSynced(ctx, s.cfg.Kubernetes.SyncTimeout) && ctx.Err() == nil {
		s.log.Warn("kubernetes: the node's pods were not listed within kubernetes.sync_timeout; container lines ship without pod metadata, flagged no_pod_metadata, until they are",
			zap.Duration("sync_timeout", s.cfg.Kubernetes.SyncTimeout))
	}
	return done
}
