// Package apidemo is the setup Sluice is for, in small: nginx in front of
// two services (orders and users) that log JSON lines with the request id
// into environment/customer/service folders, and a client making requests
// through nginx, some slow, some failing, some with the client's own
// request id, a traceparent or a forged X-Forwarded-For. The end-to-end
// test and `make demo` both run it.
package apidemo

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/sluicelog/sluice/parser"
)

// HTTPBlock is the http block of the README's nginx in front of services:
// its log_format is parser.FormatTraced, the request id is the client's
// X-Request-ID or nginx's own, passed on to the services and returned to
// the client. orders and users are the upstreams' server directives.
func HTTPBlock(accessLog string, port int, orders, users string) string {
	return fmt.Sprintf(`
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
`, accessLog, port, orders, users, parser.FormatTraced)
}

// Service is a small upstream service: it logs a JSON line when a request
// comes and one when it answers, with the request id and the traceparent
// it got.
type Service struct {
	Addr   string // host:port it listens on
	mu     sync.Mutex
	log    *os.File
	srv    *http.Server
	answer func(path string) (status int, delay time.Duration)
}

// StartService serves on a free port, logging to logPath.
func StartService(logPath string, answer func(path string) (int, time.Duration)) (*Service, error) {
	if err := os.MkdirAll(filepath.Dir(logPath), 0o755); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		f.Close()
		return nil, err
	}
	s := &Service{Addr: ln.Addr().String(), log: f, answer: answer}
	s.srv = &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = s.srv.Serve(ln) }()
	return s, nil
}

// Close stops serving and closes the log.
func (s *Service) Close() {
	_ = s.srv.Close()
	s.log.Close()
}

func (s *Service) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	status, delay := s.answer(r.URL.Path)
	s.write(r, "info", "request received", 0)
	time.Sleep(delay)
	level := "info"
	if status >= 500 {
		level = "error"
	}
	s.write(r, level, "request done", status)
	w.WriteHeader(status)
}

func (s *Service) write(r *http.Request, level, msg string, status int) {
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

// Orders answers /api/v1/orders/<n>: every 5th order is slow (150 ms)
// unless it asks for lines, every 7th fails with a 500.
func Orders(path string) (int, time.Duration) {
	var n int
	fmt.Sscanf(strings.TrimPrefix(path, "/api/v1/orders/"), "%d", &n)
	status, delay := http.StatusOK, time.Duration(0)
	if n%5 == 0 && !strings.HasSuffix(path, "/lines") {
		delay = 150 * time.Millisecond
	}
	if n%7 == 0 {
		status = http.StatusInternalServerError
	}
	return status, delay
}

// Users answers /api/v1/users/<uuid>, whose first group is a number n in
// hex: every 4th is slow (100 ms), n%6 == 1 fails with a 503 and n%6 == 2
// is not found (a client error).
func Users(path string) (int, time.Duration) {
	var n int
	fmt.Sscanf(strings.TrimPrefix(path, "/api/v1/users/"), "%x", &n)
	status, delay := http.StatusOK, time.Duration(0)
	if n%4 == 0 {
		delay = 100 * time.Millisecond
	}
	switch n % 6 {
	case 1:
		status = http.StatusServiceUnavailable
	case 2:
		status = http.StatusNotFound
	}
	return status, delay
}

// Call is one request the client makes and what it saw.
type Call struct {
	Path, Route       string
	RequestID         string // the one it sends, if any
	TraceID, ParentID string // of the traceparent it sends, if any
	// ForwardedFor is an X-Forwarded-For as a load balancer on 127.0.0.1
	// (trusted) passes it on, if any: a forged entry the client sent,
	// then RealClient, the address the load balancer saw.
	ForwardedFor, RealClient string
	Upstream                 bool // nginx passes it to a service
	Status                   int
	Took                     time.Duration
	GotID                    string // X-Request-ID of the answer
}

// Calls returns scale times: 40 orders, 15 order lines, 30 users by UUID
// and 5 of nginx's own health check; a third carry the client's request
// id, a fourth a traceparent and a fifth an X-Forwarded-For with a forged
// entry left of the real client's.
func Calls(scale int) []*Call {
	var calls []*Call
	for n := 1; n <= 40*scale; n++ {
		calls = append(calls, &Call{Path: fmt.Sprintf("/api/v1/orders/%d", 8100+n), Route: "/api/v1/orders/{id}", Upstream: true})
	}
	for n := 1; n <= 15*scale; n++ {
		calls = append(calls, &Call{Path: fmt.Sprintf("/api/v1/orders/%d/lines?page=%d", 8200+n, n), Route: "/api/v1/orders/{id}/lines", Upstream: true})
	}
	for n := 1; n <= 30*scale; n++ {
		calls = append(calls, &Call{Path: fmt.Sprintf("/api/v1/users/%08x-4f89-41d3-9a0c-0305e82c3301", n), Route: "/api/v1/users/{user}", Upstream: true})
	}
	for range 5 * scale {
		calls = append(calls, &Call{Path: "/healthz", Route: "/healthz"})
	}
	for i, c := range calls {
		if i%3 == 0 {
			c.RequestID = fmt.Sprintf("client-%d", i)
		}
		if i%4 == 1 {
			c.TraceID, c.ParentID = fmt.Sprintf("%032x", 0xabc000+i), fmt.Sprintf("%016x", 0xdef000+i)
		}
		if i%5 == 2 {
			c.RealClient = fmt.Sprintf("81.2.69.%d", i%256)
			c.ForwardedFor = fmt.Sprintf("6.6.6.%d, %s", i%256, c.RealClient)
		}
	}
	return calls
}

// Run makes the calls through base (nginx's URL), workers at a time, and
// checks each answer carries the request id.
func Run(base string, calls []*Call, workers int) error {
	client := &http.Client{Timeout: 10 * time.Second}
	work := make(chan *Call)
	errs := make(chan error, len(calls))
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for c := range work {
				if err := c.do(client, base); err != nil {
					errs <- err
				}
			}
		})
	}
	for _, c := range calls {
		work <- c
	}
	close(work)
	wg.Wait()
	close(errs)
	return <-errs // nil if there was none
}

func (c *Call) do(client *http.Client, base string) error {
	req, err := http.NewRequest(http.MethodGet, base+c.Path, nil)
	if err != nil {
		return err
	}
	if c.RequestID != "" {
		req.Header.Set("X-Request-ID", c.RequestID)
	}
	if c.TraceID != "" {
		req.Header.Set("traceparent", "00-"+c.TraceID+"-"+c.ParentID+"-01")
	}
	if c.ForwardedFor != "" {
		req.Header.Set("X-Forwarded-For", c.ForwardedFor)
	}
	start := time.Now()
	res, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("request through nginx: %w", err)
	}
	_, _ = res.Body.Read(make([]byte, 512))
	res.Body.Close()
	c.Took, c.Status, c.GotID = time.Since(start), res.StatusCode, res.Header.Get("X-Request-ID")
	if c.GotID == "" || c.RequestID != "" && c.GotID != c.RequestID {
		return fmt.Errorf("%s: answer's X-Request-ID %q, sent %q", c.Path, c.GotID, c.RequestID)
	}
	return nil
}
