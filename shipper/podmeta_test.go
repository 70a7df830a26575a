package shipper

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap/zaptest"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/sluicelog/sluice/internal/event"
)

// topicPublisher is a heldPublisher that keeps each record's topic and
// acknowledges at once until hold names a topic to hold.
type topicPublisher struct {
	heldPublisher
	topicsMu sync.Mutex
	topics   []string
}

func newTopicPublisher() *topicPublisher {
	return &topicPublisher{heldPublisher: heldPublisher{released: true}}
}

func (p *topicPublisher) Publish(ctx context.Context, rec *kgo.Record, acked func()) error {
	p.topicsMu.Lock()
	p.topics = append(p.topics, rec.Topic)
	p.topicsMu.Unlock()
	return p.heldPublisher.Publish(ctx, rec, acked)
}

// hold keeps the acknowledgements of topic's records until release.
func (p *topicPublisher) hold(topic string) {
	p.mu.Lock()
	p.topic, p.released = topic, false
	p.mu.Unlock()
}

// podShipper runs a shipper of container logs (dir/logs/*.log, format
// cri) whose pods come from client.
func podShipper(t *testing.T, client *fake.Clientset, adjust ...func(*Config)) (dir string, pub *topicPublisher, sh *Shipper) {
	dir = t.TempDir()
	if err := os.MkdirAll(dir+"/logs", 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(dir)
	cfg.Inputs = []InputConfig{{Type: "container", Format: FormatCRI, Paths: []string{dir + "/logs/*.log"}, Fields: map[string]string{"environment": "production"}}}
	cfg.Kafka.Topic = "logs-{type}"
	cfg.Kubernetes.Enabled = true
	cfg.Kubernetes.DeleteGrace = time.Minute
	for _, a := range adjust {
		a(&cfg)
	}
	pub = newTopicPublisher()
	sh, err := New(cfg, prometheus.NewRegistry(), zaptest.NewLogger(t), WithPublisher(pub), WithKubernetesClient(client))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- sh.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return dir, pub, sh
}

const podLogID = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

func podLogPath(dir string) string { return dir + "/logs/web-0_shop_app-" + podLogID + ".log" }

func appendCRI(t *testing.T, path string, lines ...string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, l := range lines {
		fmt.Fprintf(f, "2026-11-25T10:00:00Z stdout F %s\n", l)
	}
}

func webPod(ann map[string]string) *corev1.Pod {
	ctrl := true
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "web-0", Namespace: "shop", UID: "uid-web-0", Annotations: ann,
			Labels:          map[string]string{"app.kubernetes.io/name": "web"},
			OwnerReferences: []metav1.OwnerReference{{Kind: "StatefulSet", Name: "web", Controller: &ctrl}}},
		Spec: corev1.PodSpec{NodeName: "test-node", Containers: []corev1.Container{{Name: "app", Image: "web:2"}}},
	}
}

// TestPodMetadataFollowsThePod: a line read before its pod is known ships
// at once, with what the path gives, flagged; the lines after carry the
// pod's metadata, and a sluice.io/type hint added later changes their type
// and topic.
func TestPodMetadataFollowsThePod(t *testing.T) {
	client := fake.NewClientset()
	dir, pub, sh := podShipper(t, client)
	path := podLogPath(dir)
	appendCRI(t, path, "before the pod is known")
	first := pub.waitFor(t, 1, 10*time.Second)[0]
	if !first.HasFlag(event.FlagNoPodMetadata) || first.Fields["kubernetes.pod.name"] != "web-0" || first.Fields["kubernetes.labels.app_kubernetes_io/name"] != "" {
		t.Errorf("line before the pod: flags %v fields %v; want flagged %s, the path's fields only", first.Flags, first.Fields, event.FlagNoPodMetadata)
	}

	ctx := context.Background()
	pods := client.CoreV1().Pods("shop")
	if _, err := pods.Create(ctx, webPod(nil), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond) // the informer's event
	appendCRI(t, path, `{"message":"with the pod"}`)
	second := pub.waitFor(t, 2, 10*time.Second)[1]
	for k, want := range map[string]string{"kubernetes.statefulset.name": "web", "service": "web", "environment": "production",
		"container.image.name": "web:2", "container.id": podLogID, "kubernetes.labels.app_kubernetes_io/name": "web"} {
		if second.Fields[k] != want {
			t.Errorf("%s = %q, want %q (fields %v)", k, second.Fields[k], want, second.Fields)
		}
	}
	if len(second.Flags) != 0 || second.Type != "container" {
		t.Errorf("second line: type %s flags %v", second.Type, second.Flags)
	}

	if _, err := pods.Update(ctx, webPod(map[string]string{"sluice.io/type": "service", "sluice.io/environment": "canary"}), metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	appendCRI(t, path, `{"message":"typed"}`)
	third := pub.waitFor(t, 3, 10*time.Second)[2]
	if third.Type != "service" || third.Fields["environment"] != "canary" {
		t.Errorf("after the hints: type %s, environment %q", third.Type, third.Fields["environment"])
	}
	pub.topicsMu.Lock()
	topics := strings.Join(pub.topics, ",")
	pub.topicsMu.Unlock()
	if topics != "logs-container,logs-container,logs-service" {
		t.Errorf("topics %s", topics)
	}
	for _, f := range sh.Files() {
		if f.Path == path && f.Topic != "logs-service" {
			t.Errorf("/files says topic %s", f.Topic)
		}
	}
}

// TestExcludedPodShipsNothing: the lines of a pod annotated
// sluice.io/exclude: "true" are read and counted, not shipped, and the
// registry moves over them: once the hint is gone, only new lines ship.
func TestExcludedPodShipsNothing(t *testing.T) {
	client := fake.NewClientset(webPod(map[string]string{"sluice.io/exclude": "true"}))
	dir, pub, sh := podShipper(t, client)
	path := podLogPath(dir)
	for i := range 50 {
		appendCRI(t, path, fmt.Sprintf("GET /healthz %d", i))
	}
	fi, _ := os.Stat(path)
	deadline := time.Now().Add(10 * time.Second)
	for {
		var off int64
		for _, e := range sh.registry.snapshot() {
			if !e.Pending { // named by its first line, as a shipped file is
				off = max(off, e.Offset)
			}
		}
		if off == fi.Size() {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("registry at %d of %d bytes of an excluded pod's file", off, fi.Size())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if n := len(pub.shipped()); n != 0 {
		t.Fatalf("%d lines of an excluded pod shipped", n)
	}
	// Left out as filtered lines are: not read, not acknowledged lines.
	if c := sh.metrics.forType("container"); testutil.ToFloat64(c.linesRead) != 0 || testutil.ToFloat64(c.linesAcked) != 0 {
		t.Errorf("excluded lines counted as read (%v) or acknowledged (%v)", testutil.ToFloat64(c.linesRead), testutil.ToFloat64(c.linesAcked))
	}

	if _, err := client.CoreV1().Pods("shop").Update(context.Background(), webPod(nil), metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	appendCRI(t, path, "after the hint is gone")
	got := pub.waitFor(t, 1, 10*time.Second)
	time.Sleep(200 * time.Millisecond)
	if got = pub.shipped(); len(got) != 1 || string(got[0].Line) != "after the hint is gone" {
		t.Errorf("shipped %d lines, first %q; want only the line after the hint", len(got), got[0].Line)
	}
}

// javaTrace is a Java stack trace as a container writes it, one CRI line
// a line.
var javaTrace = []string{
	`Exception in thread "main" java.lang.IllegalStateException: order 42 not found`,
	"\tat com.shop.Orders.find(Orders.java:88)",
	"\tat com.shop.Api.get(Api.java:31)",
	"Caused by: java.sql.SQLException: timeout",
	"\tat com.shop.Db.query(Db.java:12)",
	"\t... 2 more",
}

// TestMultilineHintJoinsStackTrace: a pod annotated sluice.io/multiline:
// java has its stack traces shipped as one event each, though its input
// has no multiline block; a hint added later applies from the next line
// read, and sluice.io/multiline: none turns joining off again.
func TestMultilineHintJoinsStackTrace(t *testing.T) {
	client := fake.NewClientset(webPod(map[string]string{"sluice.io/multiline": "java"}))
	dir, pub, _ := podShipper(t, client)
	path := podLogPath(dir)
	appendCRI(t, path, javaTrace...)
	appendCRI(t, path, "next request")
	got := pub.waitFor(t, 1, 10*time.Second)
	if want := strings.Join(javaTrace, "\n"); string(got[0].Line) != want {
		t.Fatalf("first event %q, want the whole trace %q", got[0].Line, want)
	}
	// "next request" is held by the joiner until its timeout: two events.
	got = pub.waitFor(t, 2, 10*time.Second)
	if string(got[1].Line) != "next request" {
		t.Errorf("second event %q", got[1].Line)
	}

	if _, err := client.CoreV1().Pods("shop").Update(context.Background(), webPod(map[string]string{"sluice.io/multiline": "none"}), metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	appendCRI(t, path, javaTrace[:2]...)
	got = pub.waitFor(t, 4, 10*time.Second)
	if string(got[2].Line) != javaTrace[0] || string(got[3].Line) != javaTrace[1] {
		t.Errorf("with multiline none: %q, %q; want one event a line", got[2].Line, got[3].Line)
	}
}

// TestMultilineHintArrivesMidTrace: metadata that brings a multiline hint
// while the first lines of a trace were read splits that trace where the
// hint came, and loses or repeats no line; the next trace is one event.
func TestMultilineHintArrivesMidTrace(t *testing.T) {
	client := fake.NewClientset(webPod(map[string]string{"sluice.io/multiline": "^\\s"}))
	dir, pub, _ := podShipper(t, client)
	path := podLogPath(dir)
	appendCRI(t, path, javaTrace[:3]...)
	// Read within this: the joiner holds the three lines, for its
	// timeout (1s).
	time.Sleep(300 * time.Millisecond)
	if _, err := client.CoreV1().Pods("shop").Update(context.Background(), webPod(map[string]string{"sluice.io/multiline": "java"}), metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	appendCRI(t, path, javaTrace[3:]...)
	appendCRI(t, path, javaTrace...)
	appendCRI(t, path, "next request")
	got := pub.waitFor(t, 4, 10*time.Second)
	var lines []string
	for _, e := range got {
		lines = append(lines, string(e.Line))
	}
	want := []string{strings.Join(javaTrace[:3], "\n"), strings.Join(javaTrace[3:], "\n"), strings.Join(javaTrace, "\n"), "next request"}
	if strings.Join(lines, "|") != strings.Join(want, "|") {
		t.Errorf("events\n%q\nwant\n%q", lines, want)
	}
}

// TestLineFilterHints: sluice.io/include-lines and exclude-lines filter a
// container's lines on the node, one expression a line, the container's
// own hint over the pod's; the filtered lines move the registry and are
// counted, and an expression that is not valid leaves the input's filter.
func TestLineFilterHints(t *testing.T) {
	client := fake.NewClientset(webPod(map[string]string{
		"sluice.io/include-lines":     "^DELETE",
		"sluice.io.app/include-lines": "^GET\n^POST, {1,2}",
		"sluice.io/exclude-lines":     "healthz",
	}))
	dir, pub, sh := podShipper(t, client)
	path := podLogPath(dir)
	appendCRI(t, path, "GET /healthz", "GET /a", "POST, /b", "POST /c", "DELETE /d", "GET /e")
	got := pub.waitFor(t, 3, 10*time.Second)
	fi, _ := os.Stat(path)
	deadline := time.Now().Add(10 * time.Second)
	for registryOffset(sh, path) != fi.Size() && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if off := registryOffset(sh, path); off != fi.Size() {
		t.Errorf("registry at %d of %d bytes", off, fi.Size())
	}
	got = pub.shipped()
	var lines []string
	for _, e := range got {
		lines = append(lines, string(e.Line))
	}
	if strings.Join(lines, "|") != "GET /a|POST, /b|GET /e" {
		t.Errorf("shipped %q", lines)
	}
	if n := testutil.ToFloat64(sh.metrics.forType("container").filtered); n != 3 {
		t.Errorf("%v lines counted filtered, want 3", n)
	}

	// Not a valid expression: the hint is ignored, the input has no filter.
	if _, err := client.CoreV1().Pods("shop").Update(context.Background(), webPod(map[string]string{"sluice.io/exclude-lines": "a("}), metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	appendCRI(t, path, "GET /healthz")
	if got = pub.waitFor(t, 4, 10*time.Second); string(got[3].Line) != "GET /healthz" {
		t.Errorf("after an invalid hint: %q", got[3].Line)
	}
}

// TestRecreatedPodKeepsItsFilesMetadata: a StatefulSet's pod is deleted
// and created again under its name (a new uid) while the old container's
// file still has lines to read, read after the old pod's delete_grace: they
// carry the old pod's metadata, which they were written under, never the
// new pod's.
func TestRecreatedPodKeepsItsFilesMetadata(t *testing.T) {
	old := webPod(nil)
	old.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "app", ContainerID: "containerd://" + podLogID}}
	client := fake.NewClientset(old)
	dir, pub, _ := podShipper(t, client, func(c *Config) { c.Kubernetes.DeleteGrace = 100 * time.Millisecond })
	path := podLogPath(dir)
	appendCRI(t, path, "old pod")
	if got := pub.waitFor(t, 1, 10*time.Second)[0]; got.Fields["kubernetes.pod.uid"] != "uid-web-0" {
		t.Fatalf("first line: pod uid %q", got.Fields["kubernetes.pod.uid"])
	}
	ctx := context.Background()
	pods := client.CoreV1().Pods("shop")
	if err := pods.Delete(ctx, "web-0", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	recreated := webPod(nil)
	recreated.UID = "uid-web-0-new"
	recreated.Labels["controller-revision-hash"] = "web-7c9"
	recreated.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "app", ContainerID: "containerd://" + strings.Repeat("9", 64)}}
	if _, err := pods.Create(ctx, recreated, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2500 * time.Millisecond) // past delete_grace and a sweep (every 1s)
	appendCRI(t, path, "old pod, read late")
	got := pub.waitFor(t, 2, 10*time.Second)[1]
	if got.Fields["kubernetes.pod.uid"] != "uid-web-0" || got.HasFlag(event.FlagNoPodMetadata) {
		t.Errorf("a late line of the old pod's container: pod uid %q, flags %v; want the old pod's uid-web-0", got.Fields["kubernetes.pod.uid"], got.Flags)
	}
}

// TestTopicChangeKeepsAckOrder: a sluice.io/type hint moves a file's lines
// to another topic while the lines sent to the first are not acknowledged
// yet. The second topic's acknowledgements come first: the registry must
// not move past the first topic's lines until they are acknowledged too.
func TestTopicChangeKeepsAckOrder(t *testing.T) {
	client, pub, sh, path := heldPodShipper(t)
	appendCRI(t, path, "first topic 1", "first topic 2")
	pub.waitFor(t, 2, 10*time.Second)
	held, _ := os.Stat(path)
	setHints(t, client, map[string]string{"sluice.io/type": "service"})
	appendCRI(t, path, "second topic")
	pub.waitFor(t, 3, 10*time.Second)
	time.Sleep(300 * time.Millisecond) // the second topic's ack is in
	if off := registryOffset(sh, path); off > 0 {
		t.Fatalf("registry at %d with the first topic's lines (to %d) unacknowledged", off, held.Size())
	}
	pub.release()
	fi, _ := os.Stat(path)
	waitUntil(t, "the registry at the file's end", func() bool { return registryOffset(sh, path) == fi.Size() })
}

// TestExcludeHintWhileLinesInFlight: sluice.io/exclude is added while the
// pod's lines sent before are not acknowledged yet. The lines after it are
// left out, and the registry does not move over them, nor over the lines in
// flight, until those are acknowledged.
func TestExcludeHintWhileLinesInFlight(t *testing.T) {
	client, pub, sh, path := heldPodShipper(t)
	appendCRI(t, path, "in flight 1", "in flight 2")
	pub.waitFor(t, 2, 10*time.Second)
	setHints(t, client, map[string]string{"sluice.io/exclude": "true"})
	appendCRI(t, path, "excluded 1", "excluded 2")
	time.Sleep(500 * time.Millisecond)
	if off := registryOffset(sh, path); off > 0 {
		t.Fatalf("registry at %d with the lines in flight unacknowledged", off)
	}
	if n := len(pub.shipped()); n != 2 {
		t.Fatalf("%d lines shipped, want the 2 before the hint", n)
	}
	pub.release()
	fi, _ := os.Stat(path)
	waitUntil(t, "the registry at the file's end", func() bool { return registryOffset(sh, path) == fi.Size() })
}

// heldPodShipper is a podShipper of web-0's log whose records of topic
// logs-container Kafka does not acknowledge until pub.release.
func heldPodShipper(t *testing.T) (client *fake.Clientset, pub *topicPublisher, sh *Shipper, path string) {
	client = fake.NewClientset(webPod(nil))
	dir, pub, sh := podShipper(t, client)
	pub.hold("logs-container")
	return client, pub, sh, podLogPath(dir)
}

// setHints updates web-0 with annotations ann, and gives the informer a
// moment to see it.
func setHints(t *testing.T, client *fake.Clientset, ann map[string]string) {
	t.Helper()
	if _, err := client.CoreV1().Pods("shop").Update(context.Background(), webPod(ann), metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
}
