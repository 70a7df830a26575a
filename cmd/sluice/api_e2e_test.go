package main

import (
	"encoding/json"
	"fmt"
	"math"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluicelog/sluice/internal/testenv"
	"github.com/sluicelog/sluice/parser"
)

// apiNginxConf is the http block of the README's nginx in front of
// services: its log_format is parser.FormatTraced, the request id is the
// client's X-Request-ID or nginx's own, passed on to the services and
// returned to the client. %[1]s is the access log, %[2]d the port, %[3]s
// and %[4]s the orders and users upstreams' servers.
const apiNginxConf = `
  log_format sluice '%[5]s';
  map $http_x_request_id $sluice_request_id {
    default $http_x_request_id;
    ""      $request_id;
  }
  upstream orders { %[3]s }
  upstream users { %[4]s }
  server {
    listen 127.0.0.1:%[2]d;
    access_log %[1]s sluice;
    proxy_set_header X-Request-ID $sluice_request_id;
    proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
    add_header X-Request-ID $sluice_request_id always;
    location /api/v1/orders/ { proxy_pass http://orders; }
    location /api/v1/users/ { proxy_pass http://users; }
    location = /healthz { return 204; }
  }
`

// apiService is a small upstream service: it logs a JSON line when a
// request comes and one when it answers, with the request id and the
// traceparent it got, into its environment/customer/service folder.
type apiService struct {
	mu     sync.Mutex
	log    *os.File
	answer func(r *http.Request) (status int, delay time.Duration)
}

func startAPIService(t *testing.T, logPath string, answer func(r *http.Request) (int, time.Duration)) string {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(logPath), 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	s := &apiService{log: f, answer: answer}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: s}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close(); f.Close() })
	return ln.Addr().String()
}

func (s *apiService) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	status, delay := s.answer(r)
	s.write(r, "info", "request received", 0)
	time.Sleep(delay)
	level := "info"
	if status >= 500 {
		level = "error"
	}
	s.write(r, level, "request done", status)
	w.WriteHeader(status)
}

func (s *apiService) write(r *http.Request, level, msg string, status int) {
	line := map[string]any{
		"time": time.Now().UTC().Format(time.RFC3339Nano), "level": level, "msg": msg,
		"request_id": r.Header.Get("X-Request-ID"), "path": r.URL.Path,
	}
	if tp := r.Header.Get("traceparent"); tp != "" {
		line["traceparent"] = tp
	}
	if status != 0 {
		line["status"] = status
	}
	data, _ := json.Marshal(line)
	s.mu.Lock()
	defer s.mu.Unlock()
	_, _ = s.log.Write(append(data, '\n'))
}

// apiCall is one request the client made and what it saw.
type apiCall struct {
	path, route       string
	requestID         string // the one it sent, if any
	traceID, parentID string // of the traceparent it sent, if any
	forwardedFor      string // a forged X-Forwarded-For, if any
	upstream          bool   // nginx passes it to a service
	status            int
	took              time.Duration
	gotID             string // X-Request-ID of the answer
}

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
	orders := startAPIService(t, filepath.Join(p.logs, "services/prod/acme/orders/app.log"), func(r *http.Request) (int, time.Duration) {
		var n int
		fmt.Sscanf(strings.TrimPrefix(r.URL.Path, "/api/v1/orders/"), "%d", &n)
		status, delay := http.StatusOK, time.Duration(0)
		if n%5 == 0 && !strings.HasSuffix(r.URL.Path, "/lines") {
			delay = 150 * time.Millisecond
		}
		if n%7 == 0 {
			status = http.StatusInternalServerError
		}
		return status, delay
	})
	users := startAPIService(t, filepath.Join(p.logs, "services/prod/acme/users/app.log"), func(r *http.Request) (int, time.Duration) {
		var n int
		fmt.Sscanf(strings.TrimPrefix(r.URL.Path, "/api/v1/users/"), "%x", &n)
		status, delay := http.StatusOK, time.Duration(0)
		if n%4 == 0 {
			delay = 100 * time.Millisecond
		}
		switch n % 6 {
		case 1:
			status = http.StatusServiceUnavailable
		case 2:
			status = http.StatusNotFound // a client error: not counted as an error
		}
		return status, delay
	})
	// The orders upstream lists a server that refuses connections first,
	// and nginx never takes it out (max_fails=0): every other request is
	// tried twice.
	dead := testenv.FreePort(t)
	port := testenv.FreePort(t)
	access := filepath.Join(p.logs, "nginx/access.log")
	if err := os.MkdirAll(filepath.Dir(access), 0o755); err != nil {
		t.Fatal(err)
	}
	testenv.RunNginx(t, t.TempDir(), fmt.Sprintf(apiNginxConf, access, port,
		fmt.Sprintf("server 127.0.0.1:%d max_fails=0; server %s max_fails=0;", dead, orders),
		"server "+users+";", parser.FormatTraced), port)

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
	calls := apiCalls()
	runAPICalls(t, fmt.Sprintf("http://127.0.0.1:%d", port), calls)
	t.Logf("%d requests made in %v", len(calls), time.Since(start))
	want := 0
	for _, c := range calls {
		want++ // the access line
		if c.upstream {
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

// apiCalls are the requests the test makes: orders (some slow, some
// failing), order lines, users by UUID (some slow, some failing, some
// not found) and nginx's own health check; some carry the client's request
// id, a traceparent or a forged X-Forwarded-For.
func apiCalls() []*apiCall {
	var calls []*apiCall
	for n := 1; n <= 40; n++ {
		calls = append(calls, &apiCall{path: fmt.Sprintf("/api/v1/orders/%d", 8100+n), route: "/api/v1/orders/{id}", upstream: true})
	}
	for n := 1; n <= 15; n++ {
		calls = append(calls, &apiCall{path: fmt.Sprintf("/api/v1/orders/%d/lines?page=%d", 8200+n, n), route: "/api/v1/orders/{id}/lines", upstream: true})
	}
	for n := 1; n <= 30; n++ {
		calls = append(calls, &apiCall{path: fmt.Sprintf("/api/v1/users/%08x-4f89-41d3-9a0c-0305e82c3301", n), route: "/api/v1/users/{user}", upstream: true})
	}
	for n := 1; n <= 5; n++ {
		calls = append(calls, &apiCall{path: "/healthz", route: "/healthz"})
	}
	for i, c := range calls {
		if i%3 == 0 {
			c.requestID = fmt.Sprintf("client-%d", i)
		}
		if i%4 == 1 {
			c.traceID, c.parentID = fmt.Sprintf("%032x", 0xabc000+i), fmt.Sprintf("%016x", 0xdef000+i)
		}
		if i%5 == 2 {
			c.forwardedFor = fmt.Sprintf("6.6.6.%d", i)
		}
	}
	return calls
}

// runAPICalls makes the calls, four at a time.
func runAPICalls(t *testing.T, base string, calls []*apiCall) {
	t.Helper()
	client := &http.Client{Timeout: 10 * time.Second}
	work := make(chan *apiCall)
	var wg sync.WaitGroup
	errs := make(chan error, len(calls))
	for range 4 {
		wg.Go(func() {
			for c := range work {
				req, _ := http.NewRequest(http.MethodGet, base+c.path, nil)
				if c.requestID != "" {
					req.Header.Set("X-Request-ID", c.requestID)
				}
				if c.traceID != "" {
					req.Header.Set("traceparent", "00-"+c.traceID+"-"+c.parentID+"-01")
				}
				if c.forwardedFor != "" {
					req.Header.Set("X-Forwarded-For", c.forwardedFor)
				}
				start := time.Now()
				res, err := client.Do(req)
				if err != nil {
					errs <- err
					continue
				}
				_, _ = res.Body.Read(make([]byte, 512))
				res.Body.Close()
				c.took, c.status, c.gotID = time.Since(start), res.StatusCode, res.Header.Get("X-Request-ID")
			}
		})
	}
	for _, c := range calls {
		work <- c
	}
	close(work)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("request through nginx: %v", err)
	}
	for _, c := range calls {
		if c.gotID == "" || c.requestID != "" && c.gotID != c.requestID {
			t.Fatalf("%s: answer's X-Request-ID %q, sent %q", c.path, c.gotID, c.requestID)
		}
	}
}

// assertRoutes reads requests, errors (5xx) and latency percentiles per
// route from Elasticsearch and compares them with the client's.
func assertRoutes(t *testing.T, p *pipeline, calls []*apiCall) {
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
	byRoute := map[string][]*apiCall{}
	for _, c := range calls {
		byRoute[c.route] = append(byRoute[c.route], c)
	}
	if len(res.Aggregations.Routes.Buckets) != len(byRoute) {
		t.Errorf("routes in Elasticsearch: %+v; want the %d the client called", res.Aggregations.Routes.Buckets, len(byRoute))
	}
	for _, b := range res.Aggregations.Routes.Buckets {
		cs := byRoute[b.Key]
		errors := 0
		var took []time.Duration
		for _, c := range cs {
			if c.status >= 500 {
				errors++
			}
			took = append(took, c.took)
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
func assertCorrelated(t *testing.T, p *pipeline, calls []*apiCall) {
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
		want := "nginx:1"
		if c.upstream {
			want = "nginx:1 service:2"
		}
		wantIDs[c.gotID] = want
		if c.traceID != "" {
			wantTraces[c.traceID] = want
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
// and that a forged X-Forwarded-For did not become the source address.
func assertUpstreams(t *testing.T, p *pipeline, calls []*apiCall) {
	t.Helper()
	docs := p.stack.Search(t, p.prefix+"-nginx-*", `{"size":1000}`)
	byID := map[string]map[string]any{}
	for _, d := range docs {
		id, _ := d["http.request.id"].(string)
		byID[id] = d
	}
	retried := 0
	for _, c := range calls {
		d := byID[c.gotID]
		if d == nil {
			t.Fatalf("no access line for %s (id %s)", c.path, c.gotID)
		}
		if ip := d["source.ip"]; ip != "127.0.0.1" {
			t.Errorf("%s: source.ip %v, want the peer's 127.0.0.1", c.path, ip)
		}
		if c.forwardedFor != "" && fmt.Sprint(d["nginx.x_forwarded_for"]) != "["+c.forwardedFor+"]" {
			t.Errorf("%s: nginx.x_forwarded_for %v, want the forged [%s]", c.path, d["nginx.x_forwarded_for"], c.forwardedFor)
		}
		if c.traceID != "" && d["span.id"] != c.parentID {
			t.Errorf("%s: span.id %v, want the caller's %s", c.path, d["span.id"], c.parentID)
		}
		if !c.upstream {
			if _, ok := d["nginx.upstream_tries"]; ok {
				t.Errorf("%s: answered by nginx, but has upstream fields: %v", c.path, d)
			}
			continue
		}
		status, _ := d["nginx.upstream_status"].(float64)
		reqTime, _ := d["nginx.request_time"].(float64)
		upTime, _ := d["nginx.upstream_response_time"].(float64)
		own, hasOwn := d["nginx.own_time"].(float64)
		// The two times are taken from different clocks, to the
		// millisecond: the upstream's may come out a little longer.
		if int(status) != c.status || !hasOwn || upTime > reqTime+0.002 || math.Abs(max(reqTime-upTime, 0)-own) > 1e-6 {
			t.Errorf("%s: upstream status %v (client got %d), request_time %v, upstream %v, own %v", c.path, status, c.status, reqTime, upTime, own)
		}
		if tries, _ := d["nginx.upstream_tries"].(float64); tries == 2 {
			retried++
			attempts, _ := d["nginx.upstream_attempts"].([]any)
			first, _ := attempts[0].(map[string]any)
			second, _ := attempts[len(attempts)-1].(map[string]any)
			if len(attempts) != 2 || first["status"] != float64(502) || second["status"] != float64(c.status) {
				t.Errorf("%s: retried, attempts %v", c.path, attempts)
			}
		}
	}
	if retried == 0 {
		t.Errorf("no access line shows the retry past the server that refuses connections")
	}
	t.Logf("%d of %d requests retried past the dead orders server", retried, len(calls))
}
