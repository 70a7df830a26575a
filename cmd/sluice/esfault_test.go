package main

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// readyz returns the status of a process's /readyz.
func readyz(addr string) int {
	res, err := http.Get("http://" + addr + "/readyz")
	if err != nil {
		return 0
	}
	defer res.Body.Close()
	_, _ = io.Copy(io.Discard, res.Body)
	return res.StatusCode
}

// rssMiB reads a process's resident memory.
func rssMiB(pid int) int {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(l, "VmRSS:") {
			kb, _ := strconv.Atoi(strings.Fields(l)[1])
			return kb / 1024
		}
	}
	return 0
}

// TestElasticsearchOutage takes Elasticsearch away while lines flow: the
// aggregator reports not ready, holds its offsets and its memory, and is
// even killed during the outage; once Elasticsearch is back every line is
// indexed exactly once.
func TestElasticsearchOutage(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test needs Kafka and Elasticsearch")
	}
	p := newPipeline(t)
	proxy := p.stack.ESProxy(t)
	listen := freeAddr(t)
	cfg := p.aggregatorConfig(t, proxy.URL(), listen)
	path := filepath.Join(p.logs, "services/prod/acme/checkout/app.log")
	const total = 30000
	appendLines(t, path, serviceLines(0, 5000, "checkout"))
	ship := startSluice(t, "ship", "-c", p.shipperCfg)
	agg := startSluice(t, "aggregate", "-c", cfg)
	if got := p.stack.WaitCount(t, p.indexPattern, 5000, time.Minute); got != 5000 {
		t.Fatalf("before the outage: %d documents", got)
	}

	proxy.SetDown(true)
	done := writeInBackground(t, path, total, 1000, 50*time.Millisecond) // ids 0..5000 again: same lines, new offsets
	deadline := time.Now().Add(20 * time.Second)
	for readyz(listen) != http.StatusServiceUnavailable {
		if time.Now().After(deadline) {
			t.Fatal("/readyz still ready while Elasticsearch is unreachable")
		}
		time.Sleep(200 * time.Millisecond)
	}
	<-done
	time.Sleep(2 * time.Second)
	if rss := rssMiB(agg.cmd.Process.Pid); rss > 256 {
		t.Errorf("aggregator RSS %d MiB during the outage", rss)
	} else {
		t.Logf("aggregator RSS during the outage: %d MiB", rss)
	}
	agg.kill() // its uncommitted work must come back after a restart
	agg = startSluice(t, "aggregate", "-c", cfg)
	time.Sleep(2 * time.Second)
	proxy.SetDown(false)
	assertExactly(t, p, 5000+total)
	if readyz(listen) != http.StatusOK {
		t.Error("/readyz not ready after Elasticsearch came back")
	}
	agg.stop()
	ship.stop()
}

// TestItemLevel429 answers a third of the bulk items with 429 on their first
// two attempts: only those items are sent again, and every line is indexed
// exactly once.
func TestItemLevel429(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test needs Kafka and Elasticsearch")
	}
	p := newPipeline(t)
	proxy := p.stack.ESProxy(t)
	proxy.RejectItems(func(id string, attempt int) bool { return attempt <= 2 && id[len(id)-1]%3 == 0 })
	cfg := p.aggregatorConfig(t, proxy.URL(), "127.0.0.1:0")
	const total = 5000
	appendLines(t, filepath.Join(p.logs, "services/prod/acme/checkout/app.log"), serviceLines(0, total, "checkout"))
	ship := startSluice(t, "ship", "-c", p.shipperCfg)
	agg := startSluice(t, "aggregate", "-c", cfg)
	assertExactly(t, p, total)
	if proxy.Rejected() < total/10 {
		t.Fatalf("only %d items were rejected; the test did not exercise retries", proxy.Rejected())
	}
	t.Logf("%d item rejections retried", proxy.Rejected())
	agg.stop()
	ship.stop()
}
