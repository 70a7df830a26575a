package shipper

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/sluicelog/sluice/internal/event"
)

// TestQuotaDropAfterJoinAndFilter: with multiline, a line filter and a
// drop quota on one container log, the quota is charged with the joined
// events the filter kept, and nothing else: five large health checks
// filtered at the start leave the quota to the line after them. Every
// event is shipped, filtered or dropped, once. And the stderr lines dropped
// over the quota move the registry only to the start of the stdout trace
// still pending in the joiner, not past it.
func TestQuotaDropAfterJoinAndFilter(t *testing.T) {
	l := newLifecycle(t, func(c *Config) {
		c.Inputs[0].Type = "container"
		c.Inputs[0].Format = FormatCRI
		c.Inputs[0].Multiline = &MultilineConfig{Preset: "java", Timeout: time.Minute}
		c.Inputs[0].ExcludeLines = []string{`GET /healthz`}
		c.Quotas = QuotaConfig{Namespaces: map[string]NamespaceQuota{"noisy": {BytesPerSecond: 1024, OverQuota: OverQuotaDrop}}}
	})
	path := l.path("noisy-6d5f8_noisy_app.log") // namespace noisy: 2 s of 1 KiB/s, 2 KiB at first
	const ts = "2026-12-06T07:41:02.000Z"
	var b strings.Builder
	for i := range 5 { // 5 KiB: over the quota, were filtered events charged
		fmt.Fprintf(&b, "%s stdout F GET /healthz %d %s\n", ts, i, strings.Repeat("h", 950))
	}
	fmt.Fprintf(&b, "%s stdout F important %s\n", ts, strings.Repeat("i", 500))
	traceStart := int64(b.Len())
	fmt.Fprintf(&b, "%s stdout F ERROR failed\n%s stdout F java.lang.IllegalStateException: boom\n%s stdout F \tat a.B.c(B.java:1)\n", ts, ts, ts)
	const stderrLines = 100
	for i := range stderrLines {
		fmt.Fprintf(&b, "%s stderr F noisy %03d %s\n", ts, i, strings.Repeat("n", 150))
	}
	appendTo(t, path, b.String())
	l.start()

	// The last stderr line and the trace wait in the joiner for their next
	// line; the other 99 stderr lines and "important" are shipped or dropped.
	dropped := func() int { return int(testutil.ToFloat64(l.sh.quotas.metrics.droppedLines.WithLabelValues("noisy"))) }
	waitUntil(t, "every complete event shipped or dropped", func() bool { return len(l.pub.shipped())+dropped() == 1+stderrLines-1 })
	waitUntil(t, "the registry at the pending trace", func() bool { return registryOffset(l.sh, path) == traceStart })
	time.Sleep(300 * time.Millisecond)
	if off := registryOffset(l.sh, path); off != traceStart {
		t.Fatalf("registry at %d, want %d: the start of the trace still pending", off, traceStart)
	}
	got := l.pub.shipped()
	if len(got) == 0 || !strings.HasPrefix(string(got[0].Line), "important ") {
		t.Fatalf("first record %q, want the line after the filtered health checks: they were charged to the quota", firstLine(got))
	}
	if n := testutil.ToFloat64(l.sh.metrics.linesFiltered.WithLabelValues("container")); n != 5 {
		t.Fatalf("sluice_shipper_lines_filtered_total = %v, want 5", n)
	}
	if d := dropped(); d < stderrLines/2 {
		t.Fatalf("%d lines dropped, %d shipped: want most of the stderr lines over 1 KiB/s dropped", d, len(got))
	}
	for _, ev := range got {
		if strings.Contains(string(ev.Line), "healthz") || strings.Contains(string(ev.Line), "boom") {
			t.Fatalf("shipped %q", ev.Line)
		}
	}
	t.Logf("%d events shipped, %d dropped, registry at %d", len(got), dropped(), traceStart)
}

func firstLine(evs []event.Event) string {
	if len(evs) == 0 {
		return ""
	}
	return string(evs[0].Line)
}

// TestMultilineHintFlushWithinQuota: the event a multiline hint's change
// flushes from the joiner (podJoin) goes through the quota as any other:
// over a drop quota it is dropped and counted, not shipped past it, and
// the registry moves over it. A 2 KiB line takes the namespace's whole
// burst (2 s of 1 KiB/s); the 3 KiB trace after it, flushed half a second
// later when the hint changes, is over the quota; the line after the
// change ships.
func TestMultilineHintFlushWithinQuota(t *testing.T) {
	client := fake.NewClientset(webPod(map[string]string{"sluice.io/multiline": "^\\s"}))
	dir, pub, sh := podShipper(t, client, func(c *Config) {
		c.Quotas = QuotaConfig{Burst: 2 * time.Second,
			Namespaces: map[string]NamespaceQuota{"shop": {BytesPerSecond: 1024, OverQuota: OverQuotaDrop}}}
	})
	path := podLogPath(dir)
	pad := strings.Repeat("x", 980)
	appendCRI(t, path, "warm "+strings.Repeat("w", 1980), "ERROR "+pad, "\tat "+pad, "\tat "+pad)
	// The 2 KiB line, shipped once the trace's first line ended it; the
	// trace waits in the joiner for its timeout (1s).
	pub.waitFor(t, 1, 10*time.Second)
	time.Sleep(300 * time.Millisecond)
	setHints(t, client, map[string]string{"sluice.io/multiline": "java"}) // and waits 200 ms
	appendCRI(t, path, "next request")
	dropped := func() float64 { return testutil.ToFloat64(sh.quotas.metrics.droppedLines.WithLabelValues("shop")) }
	waitUntil(t, "the trace dropped over the quota", func() bool { return dropped() == 1 })
	got := pub.waitFor(t, 2, 10*time.Second)
	if len(got) != 2 || !strings.HasPrefix(string(got[0].Line), "warm ") || string(got[1].Line) != "next request" {
		var lines []string
		for _, e := range got {
			lines = append(lines, fmt.Sprintf("%.20q", e.Line))
		}
		t.Fatalf("shipped %v; want the 2 KiB line and the next request, the flushed trace dropped", lines)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the registry at the end of the file", func() bool { return registryOffset(sh, path) == fi.Size() })
	if d := dropped(); d != 1 {
		t.Fatalf("%v events dropped, want the one trace", d)
	}
}
