package main

import (
	"fmt"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sluicelog/sluice/internal/apidemo"
	"github.com/sluicelog/sluice/internal/testenv"
	"github.com/sluicelog/sluice/parser"
)

// TestAPIPerformanceThroughNginx is the setup Sluice is for: a real nginx
// in front of two services, all logging; the shipper and the aggregator
// carry both kinds of logs through the real Kafka into the real
// Elasticsearch, where the requests, errors and latency per route match
// what the client measured, and each request's access line and its service
// lines share one id.
func TestAPIPerformanceThroughNginx(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test needs Kafka and Elasticsearch")
	}
	began := time.Now()
	p := newPipeline(t)
	t.Cleanup(func() { t.Logf("the test took %v", time.Since(began)) })
	t.Logf("Kafka and Elasticsearch ready after %v", time.Since(began))
	orders, err := apidemo.StartService(filepath.Join(p.logs, "services/prod/acme/orders/app.log"), apidemo.Orders)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(orders.Close)
	users, err := apidemo.StartService(filepath.Join(p.logs, "services/prod/acme/users/app.log"), apidemo.Users)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(users.Close)
	// The orders upstream lists a server that refuses connections first,
	// and nginx never takes it out (max_fails=0): every other request is
	// tried twice.
	dead := testenv.FreePort(t)
	port := testenv.FreePort(t)
	access := filepath.Join(p.logs, "nginx/access.log")
	if err := os.MkdirAll(filepath.Dir(access), 0o755); err != nil {
		t.Fatal(err)
	}
	testenv.RunNginx(t, t.TempDir(), apidemo.HTTPBlock(access, port,
		fmt.Sprintf("server 127.0.0.1:%d max_fails=0; server %s max_fails=0;", dead, orders.Addr),
		"server "+users.Addr+";"), port)

	aggCfg := p.aggregatorConfig(t, p.stack.Elasticsearch, "127.0.0.1:0")
	appendLines(t, aggCfg, []string{
		"parsers:",
		"  nginx_format: '" + parser.FormatTraced + "'",
		"  routes:",
		"    - prefix: /api/v1/users",
		`      templates: ["/api/v1/users/{user}"]`,
	})
	ship := startSluice(t, "ship", "-c", p.shipperCfg)
	agg := startSluice(t, "aggregate", "-c", aggCfg)

	start := time.Now()
	calls := apidemo.Calls(1)
	if err := apidemo.Run(fmt.Sprintf("http://127.0.0.1:%d", port), calls, 4); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d requests made in %v", len(calls), time.Since(start))
	want := 0
	for _, c := range calls {
		want++ // the access line
		if c.Upstream {
			want += 2 // the service's lines
		}
	}
	if got := p.stack.WaitCount(t, p.indexPattern, want, time.Minute); got != want {
		t.Fatalf("indexed %d documents, want %d", got, want)
	}
	t.Logf("all %d lines indexed %v after the start", want, time.Since(start))
	assertRoutes(t, p, calls)
	assertCorrelated(t, p, calls)
	assertUpstreams(t, p, calls)
	ship.stop()
	agg.stop()
	t.Logf("done %v after the start", time.Since(start))
}

// assertRoutes reads requests, errors (5xx) and latency percentiles per
// route from Elasticsearch and compares them with the client's.
func assertRoutes(t *testing.T, p *pipeline, calls []*apidemo.Call) {
	t.Helper()
	var res struct {
		Aggregations struct {
			Routes struct {
				Buckets []struct {
					Key      string `json:"key"`
					DocCount int    `json:"doc_count"`
					Errors   struct {
						DocCount int `json:"doc_count"`
					} `json:"errors"`
					Latency struct {
						Values map[string]float64 `json:"values"`
					} `json:"latency"`
				} `json:"buckets"`
			} `json:"routes"`
		} `json:"aggregations"`
	}
	query := `{"size":0,"aggs":{"routes":{"terms":{"field":"http.route","size":50},"aggs":{
	  "errors":{"filter":{"range":{"http.response.status_code":{"gte":500}}}},
	  "latency":{"percentiles":{"field":"nginx.request_time","percents":[50,95]}}}}}}`
	p.stack.ES(t, http.MethodPost, "/"+p.prefix+"-nginx-*/_search", strings.NewReader(query), &res)
	byRoute := map[string][]*apidemo.Call{}
	for _, c := range calls {
		byRoute[c.Route] = append(byRoute[c.Route], c)
	}
	if len(res.Aggregations.Routes.Buckets) != len(byRoute) {
		t.Errorf("routes in Elasticsearch: %+v; want the %d the client called", res.Aggregations.Routes.Buckets, len(byRoute))
	}
	for _, b := range res.Aggregations.Routes.Buckets {
		cs := byRoute[b.Key]
		errors := 0
		var took []time.Duration
		for _, c := range cs {
			if c.Status >= 500 {
				errors++
			}
			took = append(took, c.Took)
		}
		if b.DocCount != len(cs) || b.Errors.DocCount != errors {
			t.Errorf("route %s: %d requests, %d errors in Elasticsearch; the client made %d, %d failed", b.Key, b.DocCount, b.Errors.DocCount, len(cs), errors)
		}
		slices.Sort(took)
		for _, pc := range []float64{50, 95} {
			got := b.Latency.Values[fmt.Sprintf("%.1f", pc)] * 1000
			want := float64(percentile(took, pc)) / 1e6
			// nginx times a part of what the client times, to the
			// millisecond; the client's part adds a little, more when
			// the machine is busy.
			if got > want+2 || got < want-math.Max(20, want*0.15) {
				t.Errorf("route %s: p%v latency %.1f ms in Elasticsearch, the client measured %.1f ms", b.Key, pc, got, want)
			}
			t.Logf("route %s: %d requests, %d errors, p%v %.1f ms (client %.1f ms)", b.Key, b.DocCount, b.Errors.DocCount, pc, got, want)
		}
	}
}

// percentile is the nearest-rank percentile of sorted values.
func percentile(sorted []time.Duration, pc float64) time.Duration {
	i := int(math.Ceil(pc/100*float64(len(sorted)))) - 1
	return sorted[max(i, 0)]
}

// assertCorrelated checks that each request's access line and its two
// service lines share http.request.id, and trace.id when the client sent a
// traceparent.
func assertCorrelated(t *testing.T, p *pipeline, calls []*apidemo.Call) {
	t.Helper()
	type buckets struct {
		Buckets []struct {
			Key      string `json:"key"`
			DocCount int    `json:"doc_count"`
			Datasets struct {
				Buckets []struct {
					Key      string `json:"key"`
					DocCount int    `json:"doc_count"`
				} `json:"buckets"`
			} `json:"datasets"`
		} `json:"buckets"`
	}
	var res struct {
		Aggregations struct {
			IDs    buckets `json:"ids"`
			Traces buckets `json:"traces"`
		} `json:"aggregations"`
	}
	query := `{"size":0,"aggs":{
	  "ids":{"terms":{"field":"http.request.id","size":1000},"aggs":{"datasets":{"terms":{"field":"event.dataset"}}}},
	  "traces":{"terms":{"field":"trace.id","size":1000},"aggs":{"datasets":{"terms":{"field":"event.dataset"}}}}}}`
	p.stack.ES(t, http.MethodPost, "/"+p.indexPattern+"/_search", strings.NewReader(query), &res)
	lines := func(b buckets) map[string]string {
		out := map[string]string{}
		for _, id := range b.Buckets {
			var parts []string
			for _, d := range id.Datasets.Buckets {
				parts = append(parts, fmt.Sprintf("%s:%d", d.Key, d.DocCount))
			}
			slices.Sort(parts)
			out[id.Key] = strings.Join(parts, " ")
		}
		return out
	}
	ids, traces := lines(res.Aggregations.IDs), lines(res.Aggregations.Traces)
	wantIDs, wantTraces := map[string]string{}, map[string]string{}
	for _, c := range calls {
		want := "nginx.access:1"
		if c.Upstream {
			want = "nginx.access:1 service:2"
		}
		wantIDs[c.GotID] = want
		if c.TraceID != "" {
			wantTraces[c.TraceID] = want
		}
	}
	for id, want := range wantIDs {
		if ids[id] != want {
			t.Errorf("request id %s: lines %q, want %q", id, ids[id], want)
		}
	}
	if len(ids) != len(wantIDs) {
		t.Errorf("%d request ids in Elasticsearch, want %d", len(ids), len(wantIDs))
	}
	for id, want := range wantTraces {
		if traces[id] != want {
			t.Errorf("trace id %s: lines %q, want %q", id, traces[id], want)
		}
	}
	if len(traces) != len(wantTraces) {
		t.Errorf("%d trace ids in Elasticsearch, want %d", len(traces), len(wantTraces))
	}
}

// assertUpstreams checks the access lines' upstream attempts and totals,
// and that a forged X-Forwarded-For entry did not become the source address.
func assertUpstreams(t *testing.T, p *pipeline, calls []*apidemo.Call) {
	t.Helper()
	docs := p.stack.Search(t, p.prefix+"-nginx-*", `{"size":1000}`)
	byID := map[string]map[string]any{}
	for _, d := range docs {
		d = testenv.Flat(d)
		id, _ := d["http.request.id"].(string)
		byID[id] = d
	}
	retried := 0
	for _, c := range calls {
		d := byID[c.GotID]
		if d == nil {
			t.Fatalf("no access line for %s (id %s)", c.Path, c.GotID)
		}
		// The client is the right-most address the trusted load balancer
		// (127.0.0.1) reported, never the forged entry left of it.
		wantIP := "127.0.0.1"
		if c.RealClient != "" {
			wantIP = c.RealClient
			if d["client.ip"] != "127.0.0.1" {
				t.Errorf("%s: client.ip %v, want the peer's 127.0.0.1", c.Path, d["client.ip"])
			}
			if want := "[" + strings.ReplaceAll(c.ForwardedFor, ",", "") + "]"; fmt.Sprint(d["nginx.x_forwarded_for"]) != want {
				t.Errorf("%s: nginx.x_forwarded_for %v, want %s", c.Path, d["nginx.x_forwarded_for"], want)
			}
		}
		if ip := d["source.ip"]; ip != wantIP {
			t.Errorf("%s: source.ip %v, want %s (X-Forwarded-For %q)", c.Path, ip, wantIP, c.ForwardedFor)
		}
		if c.TraceID != "" && d["span.id"] != c.ParentID {
			t.Errorf("%s: span.id %v, want the caller's %s", c.Path, d["span.id"], c.ParentID)
		}
		if !c.Upstream {
			if _, ok := d["nginx.upstream_tries"]; ok {
				t.Errorf("%s: answered by nginx, but has upstream fields: %v", c.Path, d)
			}
			continue
		}
		status, _ := d["nginx.upstream_status"].(float64)
		reqTime, _ := d["nginx.request_time"].(float64)
		upTime, _ := d["nginx.upstream_response_time"].(float64)
		own, hasOwn := d["nginx.own_time"].(float64)
		// The two times are taken from different clocks, to the
		// millisecond: the upstream's may come out a little longer.
		if int(status) != c.Status || !hasOwn || upTime > reqTime+0.002 || math.Abs(max(reqTime-upTime, 0)-own) > 1e-6 {
			t.Errorf("%s: upstream status %v (client got %d), request_time %v, upstream %v, own %v", c.Path, status, c.Status, reqTime, upTime, own)
		}
		if tries, _ := d["nginx.upstream_tries"].(float64); tries == 2 {
			retried++
			attempts, _ := d["nginx.upstream_attempts"].([]any)
			first, _ := attempts[0].(map[string]any)
			second, _ := attempts[len(attempts)-1].(map[string]any)
			if len(attempts) != 2 || first["status"] != float64(502) || second["status"] != float64(c.Status) {
				t.Errorf("%s: retried, attempts %v", c.Path, attempts)
			}
		}
	}
	if retried == 0 {
		t.Errorf("no access line shows the retry past the server that refuses connections")
	}
	t.Logf("%d of %d requests retried past the dead orders server", retried, len(calls))
}
