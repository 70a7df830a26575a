package main

import (
	"fmt"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sluicelog/sluice/internal/event"
)

// TestShipAndAggregateReload sends SIGHUP to a shipper and an aggregator
// while lines are written: the shipper's new configuration adds a second
// input glob, the aggregator's changes its bulk settings. Kafka then holds
// every line exactly once, and Elasticsearch exactly one document per line.
// A rejected configuration leaves the shipper shipping.
func TestShipAndAggregateReload(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test needs Kafka and Elasticsearch")
	}
	p := newPipeline(t)
	shipListen, aggListen := freeAddr(t), freeAddr(t)
	shipperConfig := func(globs ...string) string {
		var in strings.Builder
		for _, g := range globs {
			fmt.Fprintf(&in, "  - type: service\n    paths: [%q]\n    path_fields: %s/services/{environment}/{customer}/{service}/\n", g, p.logs)
		}
		return fmt.Sprintf(`
node: test-node
registry: %s/registry
scan_interval: 200ms
registry_flush: 200ms
inputs:
%s
kafka:
  brokers: ["%s"]
  topic: %s-{type}
  partitions: 3
http:
  listen: %s
`, p.dir, in.String(), p.stack.Broker, p.prefix, shipListen)
	}
	checkoutGlob := p.logs + "/services/prod/acme/checkout/*.log"
	billingGlob := p.logs + "/services/prod/acme/billing/*.log"
	writeFile(t, p.shipperCfg, shipperConfig(checkoutGlob))
	aggCfg := p.aggregatorConfig(t, p.stack.Elasticsearch, aggListen)

	const total, billing = 20000, 1000
	done := writeInBackground(t, filepath.Join(p.logs, "services/prod/acme/checkout/app.log"), total, 200, 20*time.Millisecond)
	appendLines(t, filepath.Join(p.logs, "services/prod/acme/billing/app.log"), serviceLines(0, billing, "billing"))
	ship := startSluice(t, "ship", "-c", p.shipperCfg)
	agg := startSluice(t, "aggregate", "-c", aggCfg)
	time.Sleep(time.Second)

	writeFile(t, p.shipperCfg, shipperConfig(checkoutGlob, billingGlob))
	ship.reload(t, shipListen, "success", 1)
	editConfig(t, aggCfg, "retry_max: 1s", "retry_max: 1s\n  bulk_bytes: 1048576\n  workers: 2")
	agg.reload(t, aggListen, "success", 1)

	writeFile(t, p.shipperCfg, strings.Replace(shipperConfig(checkoutGlob, billingGlob), "scan_interval: 200ms", "scan_interval: often", 1))
	ship.reload(t, shipListen, "failure", 1)
	<-done

	want := total + billing
	topic := p.prefix + "-service"
	recs := p.stack.ReadTopic(t, topic, want+1, 10*time.Second) // waits out would-be duplicates
	seen := map[string]int{}
	for _, r := range recs {
		ev, err := event.Decode(r)
		if err != nil {
			t.Fatal(err)
		}
		seen[fmt.Sprintf("%s@%d", ev.FileID, ev.Offset)]++
	}
	if len(recs) != want || len(seen) != want {
		t.Errorf("kafka holds %d records of %d distinct lines, want exactly %d", len(recs), len(seen), want)
	}
	assertExactly(t, p, want)
	ship.stop()
	agg.stop()
}

// reload sends SIGHUP and waits until the process, serving metrics on
// listen, has counted n reloads with result (success or failure).
func (p *proc) reload(t *testing.T, listen, result string, n int) {
	t.Helper()
	_ = p.cmd.Process.Signal(syscall.SIGHUP)
	waitMetric(t, listen, `sluice_config_reload_total{result="`+result+`"}`, float64(n))
}
