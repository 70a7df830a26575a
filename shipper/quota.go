package shipper

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluicelog/sluice/internal/config"
)

// Fair sharing of the node: a byte rate per Kubernetes namespace and per
// pod, so that a pod writing as fast as it can does not take the shipper,
// Kafka and the index from the others. Over its quota a pod's files are
// read more slowly (the file stays the buffer) or, where the operator chose
// drop for its namespace, its lines over the quota are skipped and counted.
// The namespace and pod are the file's kubernetes.namespace and
// kubernetes.pod.name fields (from the container log's file name); a file
// without a namespace has no quota.

// QuotaConfig is `quotas`: the defaults for every namespace and the
// namespaces that differ.
type QuotaConfig struct {
	// NamespaceBytesPerSecond caps the file bytes read per second for all
	// the files of one namespace (default 0: no cap).
	NamespaceBytesPerSecond int64 `yaml:"namespace_bytes_per_second"`
	// PodBytesPerSecond caps them for the files of one pod (default 0: no
	// cap).
	PodBytesPerSecond int64 `yaml:"pod_bytes_per_second"`
	// Burst is how long a quota's unused rate is saved up for a burst
	// (default 2s): a pod quiet for a while may read Burst × its rate at
	// once.
	Burst time.Duration `yaml:"burst"`
	// OverQuota is what happens to a pod over its quota: throttle (the
	// default: its files are read more slowly, nothing is lost) or drop
	// (its lines over the quota are skipped and counted).
	OverQuota string `yaml:"over_quota"`
	// Namespaces overrides the defaults per namespace, by name.
	Namespaces map[string]NamespaceQuota `yaml:"namespaces"`
}

// NamespaceQuota is one namespace's quotas; 0 takes the default, -1 is no
// cap.
type NamespaceQuota struct {
	BytesPerSecond    int64  `yaml:"bytes_per_second"`
	PodBytesPerSecond int64  `yaml:"pod_bytes_per_second"`
	OverQuota         string `yaml:"over_quota"`
}

// Values of quotas.over_quota.
const (
	OverQuotaThrottle = "throttle"
	OverQuotaDrop     = "drop"
)

// Fields a file's quota is keyed by.
const (
	namespaceField = "kubernetes.namespace"
	podField       = "kubernetes.pod.name"
)

// DefaultQuotaConfig is quotas' defaults: no quota, and a burst of 2 s
// throttled once over.
func DefaultQuotaConfig() QuotaConfig {
	return QuotaConfig{Burst: 2 * time.Second, OverQuota: OverQuotaThrottle}
}

func (q *QuotaConfig) validate(key string) error {
	checkRate := func(k string, v int64, allowNone bool) error {
		switch {
		case v == -1 && allowNone:
			return nil
		case v < 0:
			if allowNone {
				return config.Errorf(k, "must be a byte rate, 0 for the default or -1 for no quota, got %d", v)
			}
			return config.Errorf(k, "must be a byte rate, or 0 for no quota, got %d", v)
		case v > 0 && v < 1024:
			return config.Errorf(k, "%d bytes per second is less than one long line; write bytes per second, e.g. 1048576 for 1 MiB/s", v)
		}
		return nil
	}
	checkAction := func(k, v string) error {
		if v != "" && v != OverQuotaThrottle && v != OverQuotaDrop {
			return config.Errorf(k, "%q is not an action; use throttle (read the pod's files more slowly, nothing lost) or drop (skip and count its lines over the quota)", v)
		}
		return nil
	}
	if err := checkRate(config.Join(key, "namespace_bytes_per_second"), q.NamespaceBytesPerSecond, false); err != nil {
		return err
	}
	if err := checkRate(config.Join(key, "pod_bytes_per_second"), q.PodBytesPerSecond, false); err != nil {
		return err
	}
	if q.Burst < 100*time.Millisecond {
		return config.Errorf(config.Join(key, "burst"), "must be at least 100ms, e.g. 2s")
	}
	if err := checkAction(config.Join(key, "over_quota"), q.OverQuota); err != nil {
		return err
	}
	names := make([]string, 0, len(q.Namespaces))
	for ns := range q.Namespaces {
		names = append(names, ns)
	}
	sort.Strings(names)
	for _, ns := range names {
		nq := q.Namespaces[ns]
		k := config.Join(config.Join(key, "namespaces"), ns)
		if err := checkRate(config.Join(k, "bytes_per_second"), nq.BytesPerSecond, true); err != nil {
			return err
		}
		if err := checkRate(config.Join(k, "pod_bytes_per_second"), nq.PodBytesPerSecond, true); err != nil {
			return err
		}
		if err := checkAction(config.Join(k, "over_quota"), nq.OverQuota); err != nil {
			return err
		}
	}
	return nil
}

// forNamespace returns the rates (0: none) and the action for ns.
func (q *QuotaConfig) forNamespace(ns string) (nsRate, podRate int64, drop bool) {
	nsRate, podRate, action := q.NamespaceBytesPerSecond, q.PodBytesPerSecond, q.OverQuota
	if o, ok := q.Namespaces[ns]; ok {
		nsRate = pick(o.BytesPerSecond, nsRate)
		podRate = pick(o.PodBytesPerSecond, podRate)
		if o.OverQuota != "" {
			action = o.OverQuota
		}
	}
	return nsRate, podRate, action == OverQuotaDrop
}

// pick is an override: 0 keeps def, -1 means none (0).
func pick(v, def int64) int64 {
	switch v {
	case 0:
		return def
	case -1:
		return 0
	}
	return v
}

// tokenBucket is a byte rate: tokens come in at rate per second up to
// burst, and reading takes them. Safe for concurrent use.
type tokenBucket struct {
	rate, burst float64

	mu     sync.Mutex
	tokens float64
	last   time.Time
	users  int // files holding it (quotas.release)
}

func newTokenBucket(rate int64, burst time.Duration, now time.Time) *tokenBucket {
	b := float64(rate) * burst.Seconds()
	return &tokenBucket{rate: float64(rate), burst: b, tokens: b, last: now}
}

// refill adds the tokens earned since the last look. The caller holds mu.
func (b *tokenBucket) refill(now time.Time) {
	if dt := now.Sub(b.last).Seconds(); dt > 0 {
		b.tokens = min(b.burst, b.tokens+dt*b.rate)
		b.last = now
	}
}

// charge takes n tokens, into debt if need be (a throttled file has read
// the line already), and returns how long until the debt is paid.
func (b *tokenBucket) charge(n int64, now time.Time) time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.refill(now)
	b.tokens -= float64(n)
	return b.debtLocked()
}

// debt returns how long until the bucket is out of debt.
func (b *tokenBucket) debt(now time.Time) time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.refill(now)
	return b.debtLocked()
}

func (b *tokenBucket) debtLocked() time.Duration {
	if b.tokens >= 0 {
		return 0
	}
	return time.Duration(-b.tokens / b.rate * float64(time.Second))
}

// has reports whether n tokens (or a full bucket, for a line longer than
// the burst) are there to take.
func (b *tokenBucket) has(n int64, now time.Time) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.refill(now)
	return b.tokens >= min(float64(n), b.burst)
}

// quotas holds the buckets of the namespaces and pods whose files are
// open, shared by their files. Safe for concurrent use.
type quotas struct {
	cfg     QuotaConfig
	metrics *quotaMetrics

	mu         sync.Mutex
	namespaces map[string]*tokenBucket
	pods       map[string]*tokenBucket // by namespace/pod
}

func newQuotas(cfg QuotaConfig, m *quotaMetrics) *quotas {
	return &quotas{cfg: cfg, metrics: m, namespaces: map[string]*tokenBucket{}, pods: map[string]*tokenBucket{}}
}

// fileQuota is one open file's share: the buckets of its namespace and
// pod. Its methods are called by the file's harvester only.
type fileQuota struct {
	q                *quotas
	namespace, pod   string
	ns, podBucket    *tokenBucket // nil: no cap at that level
	drop             bool
	throttledSeconds prometheus.Counter
	droppedLines     prometheus.Counter
	droppedBytes     prometheus.Counter
}

// forFile returns the quota of a file with fields, or nil if it has none.
// The caller calls release when the file is closed.
func (q *quotas) forFile(fields map[string]string) *fileQuota {
	ns := fields[namespaceField]
	if q == nil || ns == "" {
		return nil
	}
	nsRate, podRate, drop := q.cfg.forNamespace(ns)
	if nsRate == 0 && podRate == 0 {
		return nil
	}
	pod := fields[podField]
	now := time.Now()
	fq := &fileQuota{q: q, namespace: ns, pod: pod, drop: drop,
		throttledSeconds: q.metrics.throttled.WithLabelValues(ns),
		droppedLines:     q.metrics.droppedLines.WithLabelValues(ns),
		droppedBytes:     q.metrics.droppedBytes.WithLabelValues(ns)}
	q.mu.Lock()
	defer q.mu.Unlock()
	if nsRate > 0 {
		fq.ns = hold(q.namespaces, ns, nsRate, q.cfg.Burst, now)
	}
	if podRate > 0 {
		fq.podBucket = hold(q.pods, ns+"/"+pod, podRate, q.cfg.Burst, now)
	}
	return fq
}

// hold returns the bucket of key in m, made if need be, and counts one more
// user.
func hold(m map[string]*tokenBucket, key string, rate int64, burst time.Duration, now time.Time) *tokenBucket {
	b, ok := m[key]
	if !ok {
		b = newTokenBucket(rate, burst, now)
		m[key] = b
	}
	b.users++
	return b
}

// release lets go of the file's buckets: a namespace or pod whose files
// are all closed is forgotten, so that the pods of a node's past hold no
// memory.
func (f *fileQuota) release() {
	if f == nil {
		return
	}
	q := f.q
	q.mu.Lock()
	defer q.mu.Unlock()
	unhold(q.namespaces, f.namespace, f.ns)
	unhold(q.pods, f.namespace+"/"+f.pod, f.podBucket)
}

func unhold(m map[string]*tokenBucket, key string, b *tokenBucket) {
	if b == nil {
		return
	}
	b.users--
	if b.users == 0 && m[key] == b {
		delete(m, key)
	}
}

// charge counts n bytes read and shipped; it returns true when the pod or
// its namespace is now over its quota, so the harvester stops reading
// until wait lets it.
func (f *fileQuota) charge(n int64) bool {
	now := time.Now()
	over := false
	for _, b := range f.buckets() {
		if b.charge(n, now) > 0 {
			over = true
		}
	}
	return over
}

// admit reports whether a line of n bytes fits the quota now, and takes it
// if so; under drop, a line that does not fit is skipped.
func (f *fileQuota) admit(n int64) bool {
	now := time.Now()
	for _, b := range f.buckets() {
		if !b.has(n, now) {
			return false
		}
	}
	for _, b := range f.buckets() {
		b.charge(n, now)
	}
	return true
}

// buckets returns the file's buckets, namespace first.
func (f *fileQuota) buckets() []*tokenBucket {
	out := make([]*tokenBucket, 0, 2)
	if f.ns != nil {
		out = append(out, f.ns)
	}
	if f.podBucket != nil {
		out = append(out, f.podBucket)
	}
	return out
}

// maxThrottle is the longest one sleep of a throttled harvester, so that it
// notices the end of ctx and a refill from a quiet namespace in time.
const maxThrottle = 250 * time.Millisecond

// wait returns once the file's pod and namespace are within their quota
// (at once under drop, which never waits), or ctx is done.
func (f *fileQuota) wait(ctx context.Context) error {
	if f == nil || f.drop {
		return nil
	}
	start := time.Now()
	defer func() {
		if d := time.Since(start); d > time.Millisecond {
			f.throttledSeconds.Add(d.Seconds())
		}
	}()
	for {
		now := time.Now()
		var d time.Duration
		for _, b := range f.buckets() {
			d = max(d, b.debt(now))
		}
		if d <= 0 {
			return nil
		}
		t := time.NewTimer(min(d, maxThrottle))
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}

// dropped counts a line of n bytes skipped over the quota.
func (f *fileQuota) dropped(n int64) {
	f.droppedLines.Inc()
	f.droppedBytes.Add(float64(n))
}

// quotaMetrics are fair sharing's metrics, by namespace.
type quotaMetrics struct {
	throttled, droppedLines, droppedBytes *prometheus.CounterVec
}

func newQuotaMetrics(reg prometheus.Registerer) *quotaMetrics {
	m := &quotaMetrics{
		throttled: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sluice_shipper_quota_throttled_seconds_total",
			Help: "Time files spent waiting for their pod's or namespace's byte-rate quota (quotas), summed over files, by namespace."}, []string{"namespace"}),
		droppedLines: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sluice_shipper_quota_dropped_lines_total",
			Help: "Lines skipped because their pod or namespace was over its quota with over_quota: drop, by namespace."}, []string{"namespace"}),
		droppedBytes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sluice_shipper_quota_dropped_bytes_total",
			Help: "File bytes of the lines counted in sluice_shipper_quota_dropped_lines_total, by namespace."}, []string{"namespace"}),
	}
	reg.MustRegister(m.throttled, m.droppedLines, m.droppedBytes)
	return m
}

// String describes a file's quota for its log line.
func (f *fileQuota) String() string {
	if f == nil {
		return "none"
	}
	action := OverQuotaThrottle
	if f.drop {
		action = OverQuotaDrop
	}
	var ns, pod float64
	if f.ns != nil {
		ns = f.ns.rate
	}
	if f.podBucket != nil {
		pod = f.podBucket.rate
	}
	return fmt.Sprintf("namespace %s %.0f B/s, pod %s %.0f B/s, %s", f.namespace, ns, f.pod, pod, action)
}
