package shipper

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap/zaptest"

	"github.com/sluicelog/sluice/internal/event"
)

// tenantNode lays out, under a temporary directory, a node shared by
// tenants as the seed's layout does: services/<environment>/<customer>/
// <service>/ holds each customer's logs, written by them. Files of others
// live around it: a root-only file, a service-account token, another
// customer's log and another pod's log folder, each owned by another uid
// and readable by its owner only.
type tenantNode struct {
	t    *testing.T
	root string
}

// otherUID owns the files the tenant must not get at.
const otherUID = 4321

func newTenantNode(t *testing.T) *tenantNode {
	if os.Geteuid() != 0 {
		t.Skip("needs root: the shipper's reads of other users' 0600 files are what is tested")
	}
	n := &tenantNode{t: t, root: t.TempDir()}
	n.file("secret", "SECRET root-only password=hunter2\n")
	n.file("run/secrets/kubernetes.io/serviceaccount/token", "TOKEN eyJhbGciOiJSUzI1NiJ9\n")
	n.file("pods/other_pod_uid/app/0.log", "OTHERPOD private line\n")
	n.file("services/prod/victim/api/app.log", "VICTIM private line 1\nVICTIM private line 2\n")
	n.file("services/prod/acme/api/app.log", "ACME own line\n")
	return n
}

func (n *tenantNode) path(rel string) string { return filepath.Join(n.root, rel) }

// file writes a file readable by otherUID only.
func (n *tenantNode) file(rel, content string) {
	p := n.path(rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		n.t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		n.t.Fatal(err)
	}
	if err := os.Chown(p, otherUID, otherUID); err != nil {
		n.t.Fatal(err)
	}
}

func (n *tenantNode) symlink(target, rel string) {
	if err := os.MkdirAll(filepath.Dir(n.path(rel)), 0o755); err != nil {
		n.t.Fatal(err)
	}
	if err := os.Symlink(target, n.path(rel)); err != nil {
		n.t.Fatal(err)
	}
}

// servicesInput is the seed's service input over the node's layout.
func (n *tenantNode) servicesInput() InputConfig {
	return InputConfig{Type: "service", Paths: []string{n.path("services/*/*/*/*.log")},
		PathFields: n.path("services") + "/{environment}/{customer}/{service}/"}
}

// ship runs a shipper over inputs until it shipped want lines and some
// scans more, and returns what it shipped and its refusal counter.
func (n *tenantNode) ship(inputs []InputConfig, fallback bool, want int) ([]event.Event, *prometheus.CounterVec) {
	t := n.t
	cfg := testConfig(n.root)
	cfg.Inputs = inputs
	pub := &collectingPublisher{}
	sh, err := New(cfg, prometheus.NewRegistry(), zaptest.NewLogger(t), WithPublisher(pub))
	if err != nil {
		t.Fatal(err)
	}
	for _, in := range sh.inputs {
		in.opener.noOpenat2.Store(fallback)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- sh.Run(ctx) }()
	pub.waitFor(t, want, 10*time.Second)
	time.Sleep(5 * cfg.ScanInterval) // what should not be shipped has had its chances
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if fallback && !sh.inputs[0].opener.noOpenat2.Load() {
		t.Fatal("the fallback was not used")
	}
	return pub.shipped(), sh.metrics.filesRefused
}

// forEachResolver runs test with openat2 and with the component-by-
// component fallback of kernels without it.
func forEachResolver(t *testing.T, test func(t *testing.T, fallback bool)) {
	for _, fallback := range []bool{false, true} {
		t.Run(map[bool]string{false: "openat2", true: "O_NOFOLLOW"}[fallback], func(t *testing.T) { test(t, fallback) })
	}
}

// assertOnly fails for any event not from one of paths, with the fields
// its own path gives it, and for any of paths' lines not shipped once.
func assertOnly(t *testing.T, events []event.Event, lines map[string][]string) {
	t.Helper()
	seen := map[string]int{}
	for _, ev := range events {
		want, ok := lines[ev.Path]
		if !ok {
			t.Errorf("shipped %q from %s (fields %v)", ev.Line, ev.Path, ev.Fields)
			continue
		}
		if c := ev.Fields["customer"]; c != "" && !strings.Contains(ev.Path, "/"+c+"/") {
			t.Errorf("%s shipped with customer %q", ev.Path, c)
		}
		if !containsString(want, string(ev.Line)) {
			t.Errorf("shipped %q from %s, which holds %q", ev.Line, ev.Path, want)
		}
		seen[ev.Path+"\x00"+string(ev.Line)]++
	}
	for p, ls := range lines {
		for _, l := range ls {
			if c := seen[p+"\x00"+l]; c != 1 {
				t.Errorf("%q of %s shipped %d times, want once", l, p, c)
			}
		}
	}
}

func containsString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// TestTenantLinksAreNotFollowed: the attacks of a tenant on its own log
// folder. Links to a root-only file, to a service-account token, to
// another customer's log and to /proc/self/status, a link to another pod's
// folder, a hard link to another's file and a FIFO are all left alone;
// the tenant's own log and the victim's log are each shipped once, by
// their own paths with their own fields.
func TestTenantLinksAreNotFollowed(t *testing.T) {
	forEachResolver(t, func(t *testing.T, fallback bool) {
		n := newTenantNode(t)
		api := "services/prod/acme/api/"
		n.symlink(n.path("secret"), api+"a-secret.log")
		n.symlink(n.path("run/secrets/kubernetes.io/serviceaccount/token"), api+"a-token.log")
		n.symlink("../../victim/api/app.log", api+"a-victim.log") // sorts before the victim's own path
		n.symlink("/proc/self/status", api+"a-status.log")
		n.symlink(n.path("pods/other_pod_uid/app"), "services/prod/acme/a-otherpod") // a directory
		n.file("shadow", "HARDLINKED private line\n")
		if err := os.Link(n.path("shadow"), n.path(api+"a-hard.log")); err != nil {
			t.Fatal(err)
		}
		if err := syscall.Mkfifo(n.path(api+"a-fifo.log"), 0o644); err != nil {
			t.Fatal(err)
		}

		got, refused := n.ship([]InputConfig{n.servicesInput()}, fallback, 3)
		assertOnly(t, got, map[string][]string{
			n.path(api + "app.log"):                    {"ACME own line"},
			n.path("services/prod/victim/api/app.log"): {"VICTIM private line 1", "VICTIM private line 2"},
		})
		for reason, want := range map[string]float64{refusedSymlink: 5, refusedHardLink: 1, refusedNotRegular: 1} {
			if c := testutil.ToFloat64(refused.WithLabelValues(reason)); c != want {
				t.Errorf("files refused for %s = %v, want %v (each once, not once per scan)", reason, c, want)
			}
		}
	})
}

// TestContainerLinksFollowedIntoRoots: the kubelet's
// /var/log/containers/*.log are links into /var/log/pods (on Docker nodes,
// links again into /var/lib/docker/containers); with symlinks.follow and
// those roots they are read, under the link's name (which names the pod).
// Links out of the roots, and into a root on procfs, are not.
func TestContainerLinksFollowedIntoRoots(t *testing.T) {
	forEachResolver(t, func(t *testing.T, fallback bool) {
		n := newTenantNode(t)
		cri := "2026-12-06T05:00:00.1Z stdout F "
		n.file("pods/shop_web-1_uid/web/0.log", cri+"web line\n")
		n.file("docker/abc/abc-json.log", cri+"docker line\n")
		n.symlink(n.path("docker/abc/abc-json.log"), "pods/shop_web-1_uid/side/0.log")
		n.symlink("../pods/shop_web-1_uid/web/0.log", "containers/web-1_shop_web-0001.log")
		n.symlink(n.path("pods/shop_web-1_uid/side/0.log"), "containers/web-1_shop_side-0002.log")
		n.symlink(n.path("secret"), "containers/evil_shop_secret-0003.log")
		n.symlink("/proc/self/status", "containers/evil_shop_status-0004.log")
		in := InputConfig{Type: "container", Format: FormatCRI, Paths: []string{n.path("containers/*.log")},
			Symlinks: SymlinksConfig{Follow: true, Roots: []string{n.path("pods"), n.path("docker"), "/proc/self"}}}

		got, refused := n.ship([]InputConfig{in}, fallback, 2)
		assertOnly(t, got, map[string][]string{
			n.path("containers/web-1_shop_web-0001.log"):  {"web line"},
			n.path("containers/web-1_shop_side-0002.log"): {"docker line"},
		})
		for _, ev := range got {
			if ev.Fields["kubernetes.pod.name"] != "web-1" || ev.Fields["kubernetes.namespace"] != "shop" {
				t.Errorf("%s shipped with fields %v", ev.Path, ev.Fields)
			}
		}
		for reason, want := range map[string]float64{refusedOutsideRoots: 1, refusedPseudoFS: 1} {
			if c := testutil.ToFloat64(refused.WithLabelValues(reason)); c != want {
				t.Errorf("files refused for %s = %v, want %v", reason, c, want)
			}
		}
	})
}

// TestKernelFilesNeverRead: a glob naming a procfs file directly (its
// directory is the operator's, so no link is involved) ships nothing.
func TestKernelFilesNeverRead(t *testing.T) {
	n := &tenantNode{t: t, root: t.TempDir()}
	if err := os.WriteFile(n.path("app.log"), []byte("own line\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	in := InputConfig{Type: "service", Paths: []string{"/proc/self/status", "/proc/self/task/*/status", n.path("app.log")}}
	got, refused := n.ship([]InputConfig{in}, false, 1)
	assertOnly(t, got, map[string][]string{n.path("app.log"): {"own line"}})
	if c := testutil.ToFloat64(refused.WithLabelValues(refusedPseudoFS)); c < 2 {
		t.Errorf("files refused on procfs = %v, want at least 2", c)
	}
}

// TestLinkSwappedAfterScanIsNotFollowed: a file the scan found regular is
// swapped for a link to another's file before it is opened; the open,
// which resolves the path again without following links, refuses it.
func TestLinkSwappedAfterScanIsNotFollowed(t *testing.T) {
	forEachResolver(t, func(t *testing.T, fallback bool) {
		n := newTenantNode(t)
		in := newOpener(n.servicesInput())
		in.noOpenat2.Store(fallback)
		p := n.path("services/prod/acme/api/app.log")
		if _, err := in.stat(p); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(p, p+".old"); err != nil {
			t.Fatal(err)
		}
		n.symlink(n.path("secret"), "services/prod/acme/api/app.log")
		if f, err := in.openRead(p); err == nil {
			f.Close()
			t.Fatal("opened a link swapped in after the scan")
		}
		// An intermediate directory swapped for a link is refused too.
		if err := os.Rename(n.path("services/prod/acme/api"), n.path("services/prod/acme/api.old")); err != nil {
			t.Fatal(err)
		}
		n.symlink(n.path("services/prod/victim/api"), "services/prod/acme/api")
		if f, err := in.openRead(p); err == nil {
			f.Close()
			t.Fatal("opened a file through a directory swapped for a link")
		}
	})
}

// TestRepeatedTruncationBacksOff: a file rewritten in place in a loop is a
// new generation each time; the shipper reads a few of them, not each.
func TestRepeatedTruncationBacksOff(t *testing.T) {
	l := newLifecycle(t, nil)
	p := l.path("loop.log")
	if err := os.WriteFile(p, []byte("gen 0000\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	l.start()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 1; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
			// Same size, another first line: truncated and rewritten.
			if err := os.WriteFile(p, fmt.Appendf(nil, "gen %04d\n", i%10000), 0o644); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	time.Sleep(3 * time.Second)
	close(stop)
	wg.Wait()
	l.stop()
	ids := map[string]bool{}
	for _, ev := range l.pub.shipped() {
		ids[ev.FileID] = true
	}
	t.Logf("%d generations shipped", len(ids))
	// Generations read at about 0, 0, 1s and 3s.
	if len(ids) > 5 {
		t.Errorf("%d generations shipped in 3s of truncations every 5ms, want at most 5", len(ids))
	}
	if len(ids) == 0 {
		t.Error("nothing shipped")
	}
}

// TestRestartLimiter: truncations close together wait, doubling up to
// restartMaxWait; one after a quiet spell does not.
func TestRestartLimiter(t *testing.T) {
	var r restartLimiter
	now := time.Unix(1000, 0)
	var waits []time.Duration
	for range 9 {
		w := r.restarted(now)
		waits = append(waits, w)
		now = now.Add(w)
	}
	want := []time.Duration{0, time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 16 * time.Second, 32 * time.Second, time.Minute, time.Minute}
	if fmt.Sprint(waits) != fmt.Sprint(want) {
		t.Errorf("waits %v, want %v", waits, want)
	}
	if w := r.restarted(now.Add(restartQuiet)); w != 0 {
		t.Errorf("after a quiet spell: wait %v, want 0", w)
	}
}

// TestLiteralDir: the operator's part of a glob, from which nothing is
// followed, and the deepest such directory a path is under.
func TestLiteralDir(t *testing.T) {
	for glob, want := range map[string]string{
		"/var/log/services/*/*/*/*.log": "/var/log/services",
		"/var/log/nginx/access*.log":    "/var/log/nginx",
		"/var/log/app/app.log":          "/var/log/app",
		"/var/log/[ab]pp/x.log":         "/var/log",
		`/var/log/a\*b/x.log`:           "/var/log",
		"/*.log":                        "/",
	} {
		if got := literalDir(glob); got != want {
			t.Errorf("literalDir(%q) = %q, want %q", glob, got, want)
		}
	}
	dir, rel, ok := beneath([]string{"/var/log", "/var/log/pods"}, "/var/log/pods/a/0.log")
	if !ok || dir != "/var/log/pods" || rel != "a/0.log" {
		t.Errorf("beneath = %q %q %v", dir, rel, ok)
	}
	if _, _, ok := beneath([]string{"/var/log/pods"}, "/var/log/podsx/0.log"); ok {
		t.Error("/var/log/podsx is not under /var/log/pods")
	}
}

// TestHardLinks: a file with a second hard link is refused, by both its
// names, unless the input sets allow_hard_links.
func TestHardLinks(t *testing.T) {
	n := newTenantNode(t)
	victim := n.path("services/prod/victim/api/app.log")
	link := n.path("services/prod/acme/api/victim.log")
	if err := os.Link(victim, link); err != nil {
		t.Fatal(err)
	}
	in := n.servicesInput()
	for _, p := range []string{victim, link} {
		_, err := newOpener(in).openRead(p)
		if ref := (*refusal)(nil); !errors.As(err, &ref) || ref.reason != refusedHardLink {
			t.Errorf("%s: %v, want a hard_link refusal", p, err)
		}
	}
	in.AllowHardLinks = true
	f, err := newOpener(in).openRead(link)
	if err != nil {
		t.Fatalf("with allow_hard_links: %v", err)
	}
	f.Close()
}
