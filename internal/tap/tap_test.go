package tap

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicelog/sluice/internal/event"
)

func line(typ, service, text string, offset int64) *event.Event {
	return &event.Event{Type: typ, Node: "n1", Path: "/var/log/" + service + ".log", FileID: "f-" + service, Offset: offset,
		Fields: map[string]string{"service": service, "environment": "prod"}, Line: []byte(text)}
}

// drain takes what t holds now.
func drain(t *Tap) []*Event {
	var out []*Event
	for {
		select {
		case e, ok := <-t.c:
			if !ok {
				return out
			}
			t.taken(e)
			out = append(out, e)
		default:
			return out
		}
	}
}

// withHub runs the test on a fresh Default hub.
func withHub(t *testing.T) *Hub {
	old := Default
	Default = NewHub()
	t.Cleanup(func() { Default = old })
	return Default
}

func TestFilterTypeServiceAndWhere(t *testing.T) {
	h := withHub(t)
	tp := h.Open(Filter{Stage: StageLines, Types: []string{"service"}, Services: []string{"checkout"},
		Where: []Match{{"log.level", "error"}, {"environment", "prod"}}})
	defer tp.Close()
	Line(line("service", "checkout", `{"log":{"level":"error"},"msg":"a"}`, 0))
	Line(line("service", "checkout", `{"log.level":"error","msg":"b"}`, 10))
	Line(line("service", "checkout", `{"log":{"level":"info"},"msg":"c"}`, 20))
	Line(line("service", "billing", `{"log.level":"error","msg":"d"}`, 30))
	Line(line("nginx", "checkout", `{"log.level":"error","msg":"e"}`, 40))
	Line(line("service", "checkout", `not json log.level=error`, 50))
	Document(line("service", "checkout", `{"log.level":"error"}`, 60), "logs-x", []byte(`{"log":{"level":"error"}}`))
	got := drain(tp)
	var offsets []int64
	for _, e := range got {
		offsets = append(offsets, *e.Offset)
	}
	if !reflect.DeepEqual(offsets, []int64{0, 10}) {
		t.Fatalf("tapped offsets %v, want [0 10]", offsets)
	}
	if got[0].Line != `{"log":{"level":"error"},"msg":"a"}` || got[0].Service != "checkout" || got[0].Path != "/var/log/checkout.log" {
		t.Errorf("event %+v", got[0])
	}
}

func TestDocumentsWhereReadsTheDocument(t *testing.T) {
	h := withHub(t)
	tp := h.Open(Filter{Stage: StageDocuments, Where: []Match{{"http.response.status_code", "502"}}})
	defer tp.Close()
	ev := line("nginx", "web", "ignored", 7)
	Document(ev, "logs-nginx-web-prod", []byte(`{"http":{"response":{"status_code":502}},"message":"x"}`))
	Document(ev, "logs-nginx-web-prod", []byte(`{"http":{"response":{"status_code":200}},"message":"y"}`))
	got := drain(tp)
	if len(got) != 1 {
		t.Fatalf("got %d documents, want 1", len(got))
	}
	if got[0].Index != "logs-nginx-web-prod" || got[0].ID != ev.DocID() || !strings.Contains(string(got[0].Document), "502") {
		t.Errorf("document event %+v", got[0])
	}
}

func TestDeadLetterFromRecord(t *testing.T) {
	h := withHub(t)
	if Tapping() {
		t.Fatal("dead letters tapped with no tap open")
	}
	tp := h.Open(Filter{Stage: StageDeadLetters, Services: []string{"checkout"}})
	defer tp.Close()
	if !Tapping() {
		t.Fatal("dead letters not tapped with a tap open")
	}
	ev := line("service", "checkout", `{"a":1}`, 5)
	rec := ev.Record("logs-service", event.EncodeFields(ev.Fields))
	rec.Partition = 2
	DeadLetter(rec, 400, "mapper_parsing_exception", "logs-service-checkout-prod")
	DeadLetter(&kgo.Record{Topic: "logs-service", Value: []byte("garbage")}, 0, "malformed", "")
	got := drain(tp)
	if len(got) != 1 {
		t.Fatalf("got %d dead letters, want the checkout one only", len(got))
	}
	e := got[0]
	if *e.Status != 400 || e.Reason != "mapper_parsing_exception" || e.Line != `{"a":1}` || *e.Partition != 2 || *e.Offset != 5 {
		t.Errorf("dead letter event %+v", e)
	}
}

func TestSampleRateAndLimit(t *testing.T) {
	h := withHub(t)
	sampled := h.Open(Filter{Stage: StageLines, Rate: 0.1})
	limited := h.Open(Filter{Stage: StageLines, Limit: 5})
	for i := range 1000 {
		Line(line("service", "s", "x", int64(i)))
		if i == 500 {
			if n := len(drain(sampled)); n != 50 {
				t.Fatalf("rate 0.1 took %d of the first 501 lines, want 50", n)
			}
		}
	}
	if n := len(drain(sampled)); n != 50 {
		t.Errorf("rate 0.1 took %d of the last 499 lines, want 50", n)
	}
	got := drain(limited)
	if len(got) != 5 || *got[4].Offset != 4 {
		t.Errorf("limit 5 took %d lines", len(got))
	}
	if _, ok := <-limited.c; ok {
		t.Error("a tap at its limit is not closed")
	}
	limited.Close()
	sampled.Close()
	if h.on[lines].Load() {
		t.Error("lines still tapped after every tap closed")
	}
}

func TestSlowClientDropsAndCounts(t *testing.T) {
	h := withHub(t)
	tp := h.Open(Filter{Stage: StageLines})
	defer tp.Close()
	for i := range tapBuffer + 10 {
		Line(line("service", "s", "x", int64(i)))
	}
	if n := tp.Dropped(); n != 10 {
		t.Errorf("dropped %d, want 10", n)
	}
}

func TestParseQuery(t *testing.T) {
	f := Filter{Stage: StageDocuments, Types: []string{"nginx"}, Services: []string{"a", "b"},
		Where: []Match{{"log.level", "error"}, {"url.path", "/a=b"}}, Rate: 0.25, Limit: 3}
	got, err := ParseQuery(f.Query())
	if err != nil || !reflect.DeepEqual(got, f) {
		t.Fatalf("round trip: %+v, %v", got, err)
	}
	got, err = ParseQuery(url.Values{"stage": {"lines"}, "service": {"a, b"}})
	if err != nil || !reflect.DeepEqual(got.Services, []string{"a", "b"}) {
		t.Errorf("comma list: %+v %v", got, err)
	}
	for q, want := range map[string]string{
		"stage=docs":             `stage "docs": use one of lines, documents, dead_letters`,
		"stage=lines&rate=2":     `rate "2"`,
		"stage=lines&limit=-1":   `limit "-1"`,
		"stage=lines&where=oops": `where "oops": write field=value`,
	} {
		v, _ := url.ParseQuery(q)
		if _, err := ParseQuery(v); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", q, err, want)
		}
	}
}

func TestServeHTTPStreamsAndRefuses(t *testing.T) {
	h := withHub(t)
	srv := httptest.NewServer(h)
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() { done <- Read(ctx, addr, Filter{Stage: StageLines, Limit: 2}, pw); pw.Close() }()
	for !h.on[lines].Load() {
		time.Sleep(time.Millisecond)
	}
	for i := range 3 {
		Line(line("service", "s", "line", int64(i)))
	}
	sc := bufio.NewScanner(pr)
	var n int
	for sc.Scan() {
		var e Event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil || e.Stage != StageLines {
			t.Fatalf("%s: %v", sc.Bytes(), err)
		}
		n++
	}
	if err := <-done; err != nil || n != 2 {
		t.Fatalf("read %d events (%v), want 2 then the end", n, err)
	}

	resp, err := http.Post(srv.URL+Path+"?stage=lines", "text/plain", nil)
	if err == nil {
		resp.Body.Close()
	}
	if err != nil || resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST: %v %v", resp.Status, err)
	}
	if err := Read(ctx, addr, Filter{Stage: "nope"}, new(strings.Builder)); err == nil || !strings.Contains(err.Error(), "400") {
		t.Errorf("bad stage: %v", err)
	}
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodGet, Path+"?stage=lines", nil)
	req.RemoteAddr = "10.1.2.3:5555"
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusForbidden {
		t.Errorf("a client from 10.1.2.3 got %d, want 403", rec.Code)
	}
}

// BenchmarkHooksOff is the hooks' cost on the hot path while nobody taps.
func BenchmarkHooksOff(b *testing.B) {
	ev := line("service", "s", `{"msg":"x"}`, 1)
	src := []byte(`{"message":"x"}`)
	b.Run("Line", func(b *testing.B) {
		for range b.N { // not b.Loop, which keeps the hook from being inlined
			Line(ev)
		}
	})
	b.Run("Document", func(b *testing.B) {
		for range b.N {
			Document(ev, "logs", src)
		}
	})
}

// TestServeHTTPRefusesProxiedClients: a client relayed by a proxy on the
// same host arrives from a loopback address. A service mesh's sidecar
// (Istio's envoy connects from 127.0.0.6 to the pod's own address) or a
// local reverse proxy (nginx adding X-Forwarded-For) would otherwise open
// the tap, the logs themselves, to anyone who reaches the proxy.
func TestServeHTTPRefusesProxiedClients(t *testing.T) {
	h := withHub(t)
	podIP := &net.TCPAddr{IP: net.ParseIP("10.244.1.7"), Port: 9600}
	cases := map[string]func(*http.Request) *http.Request{
		"sidecar to the pod address": func(r *http.Request) *http.Request {
			r.RemoteAddr = "127.0.0.6:40312"
			return r.WithContext(context.WithValue(r.Context(), http.LocalAddrContextKey, net.Addr(podIP)))
		},
	}
	for _, hdr := range []string{"X-Forwarded-For", "Forwarded", "X-Real-IP", "Via"} {
		cases[hdr] = func(r *http.Request) *http.Request {
			r.Header.Set(hdr, "203.0.113.9")
			return r
		}
	}
	for name, req := range cases {
		r := httptest.NewRequest(http.MethodGet, Path+"?stage=lines&limit=1", nil)
		r.RemoteAddr = "127.0.0.1:40312"
		r = req(r)
		rec := httptest.NewRecorder()
		ctx, cancel := context.WithTimeout(r.Context(), time.Second)
		h.ServeHTTP(rec, r.WithContext(ctx))
		cancel()
		if rec.Code != http.StatusForbidden {
			t.Errorf("%s: got %d, want 403", name, rec.Code)
		}
	}
}

// TestSlowClientHoldsBoundedBytes: a client that does not read holds at
// most tapBufferBytes of events, not tapBuffer events of any size: 1,024
// multiline events or documents of a megabyte each would be a gigabyte per
// tap, eight taps a process.
func TestSlowClientHoldsBoundedBytes(t *testing.T) {
	h := withHub(t)
	tp := h.Open(Filter{Stage: StageLines})
	defer tp.Close()
	big := strings.Repeat("x", 32<<10)
	for i := range tapBuffer {
		Line(line("service", "s", big, int64(i)))
	}
	var held int
	for _, e := range drain(tp) {
		held += len(e.Line)
	}
	if held > tapBufferBytes+len(big) {
		t.Fatalf("a tap nobody reads holds %d MiB of events, want at most %d MiB", held>>20, tapBufferBytes>>20)
	}
	if n := tp.Dropped(); n == 0 {
		t.Fatalf("no event counted dropped")
	}
	// Taken events make room again.
	Line(line("service", "s", big, 0))
	if got := drain(tp); len(got) != 1 {
		t.Fatalf("%d events after the client read, want 1", len(got))
	}
}

// TestClientThatStopsReadingIsLetGo: a client that stops reading (sluice
// tap suspended with Ctrl-Z, a stalled port-forward) but keeps its
// connection is let go once a write has waited tapWriteTimeout: it held a
// tap slot, and made every line pay for the tap, for as long as it lived.
func TestClientThatStopsReadingIsLetGo(t *testing.T) {
	old := tapWriteTimeout
	tapWriteTimeout = 300 * time.Millisecond
	t.Cleanup(func() { tapWriteTimeout = old })
	h := withHub(t)
	srv := httptest.NewServer(h)
	defer srv.Close()
	conn, err := net.Dial("tcp", strings.TrimPrefix(srv.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := io.WriteString(conn, "GET "+Path+"?stage=lines HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	for !h.on[lines].Load() {
		time.Sleep(time.Millisecond)
	}
	big := strings.Repeat("x", 64<<10)
	deadline := time.Now().Add(20 * time.Second)
	for h.count() > 0 {
		if time.Now().After(deadline) {
			t.Fatal("the tap of a client that reads nothing is still open after 20s")
		}
		for i := range 64 {
			Line(line("service", "s", big, int64(i)))
		}
		time.Sleep(10 * time.Millisecond)
	}
	if h.on[lines].Load() {
		t.Fatal("the stage is still tapped")
	}
}
