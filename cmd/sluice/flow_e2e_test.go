package main

import (
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestWriteBlockIsWaitedOut sets index.blocks.write on the index while
// lines flow: Elasticsearch answers each item 403 cluster_block_exception,
// a passing state. The documents wait (named in
// sluice_aggregator_index_failing), none is dead-lettered, and once the
// block is lifted every line is indexed exactly once.
func TestWriteBlockIsWaitedOut(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test needs Kafka and Elasticsearch")
	}
	p := newPipeline(t)
	listen := freeAddr(t)
	cfg := p.aggregatorConfig(t, p.stack.Elasticsearch, listen)
	path := filepath.Join(p.logs, "services/prod/acme/checkout/app.log")
	index := p.prefix + "-service-checkout-prod"
	block := func(on bool) {
		body := fmt.Sprintf(`{"index.blocks.write": %v}`, on)
		if st := p.stack.ES(t, http.MethodPut, "/"+index+"/_settings", strings.NewReader(body), nil); st != http.StatusOK {
			t.Fatalf("setting index.blocks.write %v: status %d", on, st)
		}
	}
	appendLines(t, path, serviceLines(0, 1000, "checkout"))
	ship := startSluice(t, "ship", "-c", p.shipperCfg)
	agg := startSluice(t, "aggregate", "-c", cfg)
	if got := p.stack.WaitCount(t, p.indexPattern, 1000, time.Minute); got != 1000 {
		t.Fatalf("before the block: %d documents", got)
	}
	block(true)
	t.Cleanup(func() {
		p.stack.ES(t, http.MethodPut, "/"+index+"/_settings", strings.NewReader(`{"index.blocks.write": false}`), nil)
	})
	appendLines(t, path, serviceLines(1000, 3000, "checkout"))
	waitMetricAbove(t, listen, fmt.Sprintf(`sluice_aggregator_index_failing{index=%q}`, index), 0)
	time.Sleep(3 * time.Second)
	if dead := metric(t, listen, "sluice_aggregator_dead_lettered_total"); dead != 0 {
		t.Fatalf("%v documents dead-lettered during a write block", dead)
	}
	block(false)
	assertExactly(t, p, 3000)
	if dead := metric(t, listen, "sluice_aggregator_dead_lettered_total"); dead != 0 {
		t.Fatalf("%v documents dead-lettered", dead)
	}
	agg.stop()
	ship.stop()
}

// waitMetricAbove waits until series is above v.
func waitMetricAbove(t *testing.T, addr, series string, v float64) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for metric(t, addr, series) <= v {
		if time.Now().After(deadline) {
			t.Fatalf("%s not above %v after 30s", series, v)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestGracefulStopResendsNothing stops the aggregator (SIGTERM) in the
// middle of a topic: what it had in flight is delivered and committed
// before it exits, so the next one consumes only what the first did not
// index. Counted exactly: records consumed by the second aggregator less
// the documents it had left to index.
func TestGracefulStopResendsNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test needs Kafka and Elasticsearch")
	}
	p := newPipeline(t)
	const total = 40000
	appendLines(t, filepath.Join(p.logs, "services/prod/acme/checkout/app.log"), serviceLines(0, total, "checkout"))
	ship := startSluice(t, "ship", "-c", p.shipperCfg)
	// Both shipped before the aggregator starts, so that it is stopped
	// mid-stream with full polls in flight.
	time.Sleep(3 * time.Second)
	// Small requests, so that the stop comes with work in flight and more
	// to poll.
	small := func(cfg string) string {
		editConfig(t, cfg, "retry_max: 1s", "retry_max: 1s\n  bulk_bytes: 65536\n  workers: 1")
		return cfg
	}
	agg := startSluice(t, "aggregate", "-c", small(p.aggCfg))
	deadline := time.Now().Add(time.Minute)
	for p.stack.Count(t, p.indexPattern) < 2000 {
		if time.Now().After(deadline) {
			t.Fatal("nothing indexed")
		}
		time.Sleep(20 * time.Millisecond)
	}
	agg.stop()
	first := p.stack.Count(t, p.indexPattern)
	if first >= total {
		t.Skipf("the first aggregator indexed all %d lines before it was stopped", total)
	}
	listen := freeAddr(t)
	agg = startSluice(t, "aggregate", "-c", small(p.aggregatorConfig(t, p.stack.Elasticsearch, listen)))
	assertExactly(t, p, total)
	consumed, _ := metricSum(t, listen, "sluice_aggregator_records_consumed_total")
	again := int(consumed) - (total - first)
	t.Logf("stopped with %d of %d indexed; the next aggregator consumed %v records, %d of them again", first, total, consumed, again)
	if again > 0 {
		t.Errorf("%d records consumed again after a graceful stop, want 0", again)
	}
	agg.stop()
	ship.stop()
}

// TestAggregatorPausedLongerThanSession stops the aggregator (SIGSTOP)
// for longer than session_timeout while lines flow, so that the group
// expels it with work in flight: on SIGCONT its commits are refused
// (UNKNOWN_MEMBER_ID); it must let the rebalance go on, join again and
// index everything, not retry the commit for ever.
func TestAggregatorPausedLongerThanSession(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test needs Kafka and Elasticsearch")
	}
	p := newPipeline(t)
	path := filepath.Join(p.logs, "services/prod/acme/checkout/app.log")
	appendLines(t, path, serviceLines(0, 2000, "checkout"))
	ship := startSluice(t, "ship", "-c", p.shipperCfg)
	agg := startSluice(t, "aggregate", "-c", p.aggCfg)
	if got := p.stack.WaitCount(t, p.indexPattern, 2000, time.Minute); got != 2000 {
		t.Fatalf("before the pause: %d documents", got)
	}
	done := writeInBackground(t, path, 20000, 500, 20*time.Millisecond) // ids 0..2000 again: new offsets
	time.Sleep(300 * time.Millisecond)
	if err := agg.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	time.Sleep(10 * time.Second) // session_timeout is 6s
	if err := agg.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	<-done
	appendLines(t, path, serviceLines(20000, 22000, "checkout"))
	assertExactly(t, p, 2000+20000+2000) // the background lines are new offsets, new ids
	agg.stop()
	ship.stop()
}

// TestRedIndexDoesNotStallOthers makes one service's index red (its
// primary cannot be allocated: every item waits, then 503) while two
// services' lines flow: the other service's lines keep being indexed, the
// red index is named in sluice_aggregator_index_failing, and once its
// primary is allocated every line of both is indexed exactly once, none
// dead-lettered.
func TestRedIndexDoesNotStallOthers(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test needs Kafka and Elasticsearch")
	}
	p := newPipeline(t)
	listen := freeAddr(t)
	cfg := p.aggregatorConfig(t, p.stack.Elasticsearch, listen)
	editConfig(t, cfg, "retry_max: 1s", "retry_max: 1s\n  workers: 2")
	red := p.prefix + "-service-checkout-prod"
	// Created before the aggregator's first document, unallocatable.
	p.stack.ES(t, http.MethodPut, "/_index_template/"+p.prefix+"-red", strings.NewReader(fmt.Sprintf(
		`{"index_patterns":[%q],"priority":500,"template":{"settings":{"number_of_replicas":0,"index.routing.allocation.require._name":"no-such-node"}}}`, red)), nil)
	t.Cleanup(func() { p.stack.ES(t, http.MethodDelete, "/_index_template/"+p.prefix+"-red", nil, nil) })
	if st := p.stack.ES(t, http.MethodPut, "/"+red+"?wait_for_active_shards=0", nil, nil); st != http.StatusOK {
		t.Fatalf("creating the red index: status %d", st)
	}
	checkout := filepath.Join(p.logs, "services/prod/acme/checkout/app.log")
	payments := filepath.Join(p.logs, "services/prod/acme/payments/app.log")
	const n = 3000
	appendLines(t, checkout, serviceLines(0, n, "checkout"))
	appendLines(t, payments, serviceLines(0, n, "payments"))
	ship := startSluice(t, "ship", "-c", p.shipperCfg)
	agg := startSluice(t, "aggregate", "-c", cfg)
	healthy := p.prefix + "-service-payments-prod"
	start := time.Now()
	if got := p.stack.WaitCount(t, healthy, n, time.Minute); got != n {
		t.Fatalf("%d of %d documents of the healthy index while the other is red", got, n)
	}
	t.Logf("%v: the healthy index's first %d documents", time.Since(start).Round(time.Millisecond), n)
	// Both services' lines mixed in every request: retried in place, the
	// red ones would hold every worker.
	for i := n; i < 2*n; i += n / 5 {
		appendLines(t, checkout, serviceLines(i, i+n/5, "checkout"))
		appendLines(t, payments, serviceLines(i, i+n/5, "payments"))
		time.Sleep(200 * time.Millisecond)
	}
	if got := p.stack.WaitCount(t, healthy, 2*n, time.Minute); got != 2*n {
		t.Fatalf("%d of %d documents of the healthy index while the other is red", got, 2*n)
	}
	t.Logf("%v: the healthy index's %d documents, paused partitions %v", time.Since(start).Round(time.Millisecond), 2*n,
		metric(t, listen, "sluice_aggregator_paused_partitions"))
	if st := p.stack.ES(t, http.MethodPut, "/"+red+"/_settings", strings.NewReader(`{"index.routing.allocation.require._name":null}`), nil); st != http.StatusOK {
		t.Fatalf("lifting the allocation filter: status %d", st)
	}
	assertExactly(t, p, 4*n)
	t.Logf("%v: all %d documents", time.Since(start).Round(time.Millisecond), 4*n)
	if dead := metric(t, listen, "sluice_aggregator_dead_lettered_total"); dead != 0 {
		t.Fatalf("%v documents dead-lettered", dead)
	}
	agg.stop()
	ship.stop()
}
