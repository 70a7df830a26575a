package deliver

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/elastic/go-elasticsearch/v8"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap/zaptest"
)

// fakeBulk is an Elasticsearch _bulk endpoint that answers each item with
// the status statusFor returns for it, and records what it received.
type fakeBulk struct {
	mu        sync.Mutex
	requests  int
	seen      map[string]int // id -> times received
	statusFor func(id string, attempt int) int
	tooLarge  int // answer 413 to requests with more items than this (0: never)
	// errType is the error type of a failed item (default
	// mapper_parsing_exception).
	errType func(id string) string
	// refuse, when set, answers whole requests with this status.
	refuse int
}

func (f *fakeBulk) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !strings.HasSuffix(r.URL.Path, "/_bulk") {
		w.Header().Set("X-Elastic-Product", "Elasticsearch")
		w.Write([]byte(`{}`))
		return
	}
	sc := bufio.NewScanner(r.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	var ids []string
	for sc.Scan() {
		var action map[string]struct {
			ID string `json:"_id"`
		}
		if err := json.Unmarshal(sc.Bytes(), &action); err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		for _, a := range action {
			ids = append(ids, a.ID)
		}
		sc.Scan() // the document
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests++
	w.Header().Set("X-Elastic-Product", "Elasticsearch")
	if f.refuse != 0 {
		w.WriteHeader(f.refuse)
		w.Write([]byte(`{"error":{"type":"security_exception","reason":"unable to authenticate user [sluice]"},"status":401}`))
		return
	}
	if f.tooLarge > 0 && len(ids) > f.tooLarge {
		w.WriteHeader(http.StatusRequestEntityTooLarge)
		return
	}
	var items []string
	for _, id := range ids {
		f.seen[id]++
		st := f.statusFor(id, f.seen[id])
		errPart := ""
		if st >= 300 {
			typ := "mapper_parsing_exception"
			if f.errType != nil {
				typ = f.errType(id)
			}
			errPart = fmt.Sprintf(`,"error":{"type":%q,"reason":"failed"}`, typ)
		}
		items = append(items, fmt.Sprintf(`{"index":{"_id":%q,"status":%d%s}}`, id, st, errPart))
	}
	fmt.Fprintf(w, `{"errors":true,"items":[%s]}`, strings.Join(items, ","))
}

func newTestIndexer(t *testing.T, f *fakeBulk, maxBytes int) *Bulk {
	t.Helper()
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	es, err := elasticsearch.NewClient(elasticsearch.Config{Addresses: []string{srv.URL}})
	if err != nil {
		t.Fatal(err)
	}
	return &Bulk{es: es, action: "index", maxBytes: maxBytes, retryMax: 20 * time.Millisecond,
		log: zaptest.NewLogger(t), metrics: NewMetrics(prometheus.NewRegistry())}
}

func testItems(n int) []Item {
	items := make([]Item, n)
	for i := range items {
		items[i] = Item{Index: "idx", ID: fmt.Sprint("id", i), Source: []byte(`{"message":"x"}`)}
	}
	return items
}

func TestBulkItemOutcomes(t *testing.T) {
	tests := []struct {
		name          string
		statusFor     func(id string, attempt int) int
		wantDelivered int
		wantRejected  map[string]int // id -> final status
		wantReceived  map[string]int // id -> times sent
		errType       func(id string) string
	}{
		{"all ok", func(string, int) int { return 201 }, 4, nil, map[string]int{"id0": 1, "id3": 1}, nil},
		{"409 is delivered", func(id string, _ int) int {
			if id == "id1" {
				return 409
			}
			return 200
		}, 4, nil, map[string]int{"id1": 1}, nil},
		{"429 retried for that item only", func(id string, attempt int) int {
			if id == "id2" && attempt < 3 {
				return 429
			}
			return 201
		}, 4, nil, map[string]int{"id0": 1, "id2": 3}, nil},
		{"503 retried", func(id string, attempt int) int {
			if attempt == 1 {
				return 503
			}
			return 201
		}, 4, nil, map[string]int{"id0": 2, "id3": 2}, nil},
		{"400 rejected, not retried", func(id string, _ int) int {
			if id == "id3" {
				return 400
			}
			return 201
		}, 3, map[string]int{"id3": 400}, map[string]int{"id3": 1}, nil},
		// index.blocks.write, a flood-stage watermark: passing states, for
		// an operator to lift, not reasons to dead-letter.
		{"403 cluster block retried", func(id string, attempt int) int {
			if attempt < 3 {
				return 403
			}
			return 201
		}, 4, nil, map[string]int{"id0": 3, "id3": 3}, func(string) string { return "cluster_block_exception" }},
		{"rejected execution retried whatever its status", func(id string, attempt int) int {
			if id == "id1" && attempt < 2 {
				return 400
			}
			return 201
		}, 4, nil, map[string]int{"id1": 2}, func(string) string { return "es_rejected_execution_exception" }},
		{"403 other than a block rejected", func(id string, _ int) int {
			if id == "id2" {
				return 403
			}
			return 201
		}, 3, map[string]int{"id2": 403}, map[string]int{"id2": 1}, func(string) string { return "security_exception" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &fakeBulk{seen: map[string]int{}, statusFor: tt.statusFor, errType: tt.errType}
			b := newTestIndexer(t, f, 1<<20)
			items := testItems(4)
			out, err := b.DeliverAll(context.Background(), items)
			if err != nil {
				t.Fatal(err)
			}
			delivered := 0
			for i, o := range out {
				if o.Delivered {
					delivered++
					continue
				}
				if want := tt.wantRejected[items[i].ID]; o.Status != want || o.Reason == "" {
					t.Errorf("%s: status %d reason %q, want status %d with a reason", items[i].ID, o.Status, o.Reason, want)
				}
			}
			if delivered != tt.wantDelivered {
				t.Errorf("delivered %d, want %d", delivered, tt.wantDelivered)
			}
			for id, n := range tt.wantReceived {
				if f.seen[id] != n {
					t.Errorf("%s sent %d times, want %d", id, f.seen[id], n)
				}
			}
		})
	}
}

// TestBulkRefusedRequestIsLoud: a whole request refused (401: wrong
// credentials) is sent again later, but says so: an error, readiness
// failing, sluice_aggregator_elasticsearch_refused 1; until a request is
// taken again.
func TestBulkRefusedRequestIsLoud(t *testing.T) {
	f := &fakeBulk{seen: map[string]int{}, statusFor: func(string, int) int { return 201 }, refuse: 401}
	b := newTestIndexer(t, f, 1<<20)
	b.health = &esHealth{}
	out, err := b.Deliver(context.Background(), testItems(2))
	if err != nil {
		t.Fatal(err)
	}
	for i, o := range out {
		if !o.Again || o.Delivered {
			t.Errorf("item %d: %+v, want to be sent again", i, o)
		}
	}
	_, refused := b.health.state()
	if refused == nil || !strings.Contains(refused.Error(), "401") {
		t.Errorf("refusal %v, want the 401", refused)
	}
	if v := testutil.ToFloat64(b.metrics.refused); v != 1 {
		t.Errorf("sluice_aggregator_elasticsearch_refused = %v, want 1", v)
	}
	f.mu.Lock()
	f.refuse = 0
	f.mu.Unlock()
	if _, err := b.Deliver(context.Background(), testItems(2)); err != nil {
		t.Fatal(err)
	}
	last, refused := b.health.state()
	if refused != nil || last.IsZero() || testutil.ToFloat64(b.metrics.refused) != 0 {
		t.Errorf("after a request taken: refusal %v, last delivered %v, gauge %v", refused, last, testutil.ToFloat64(b.metrics.refused))
	}
}

func TestBulkSplitsOn413(t *testing.T) {
	f := &fakeBulk{seen: map[string]int{}, statusFor: func(string, int) int { return 201 }, tooLarge: 3}
	b := newTestIndexer(t, f, 1<<20)
	out, err := b.DeliverAll(context.Background(), testItems(10))
	if err != nil {
		t.Fatal(err)
	}
	for i, o := range out {
		if !o.Delivered {
			t.Fatalf("item %d not delivered: %+v", i, o)
		}
	}
	for id, n := range f.seen {
		if n != 1 {
			t.Errorf("%s indexed %d times", id, n)
		}
	}
}

func TestBulkChunksBySize(t *testing.T) {
	f := &fakeBulk{seen: map[string]int{}, statusFor: func(string, int) int { return 201 }}
	b := newTestIndexer(t, f, 400) // a few items per request
	if _, err := b.DeliverAll(context.Background(), testItems(20)); err != nil {
		t.Fatal(err)
	}
	if f.requests < 4 {
		t.Fatalf("%d bulk requests for 20 items under a 400-byte limit, want several", f.requests)
	}
}

func TestBulkGivesUpOnlyWhenContextEnds(t *testing.T) {
	f := &fakeBulk{seen: map[string]int{}, statusFor: func(string, int) int { return 429 }}
	b := newTestIndexer(t, f, 1<<20)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if _, err := b.DeliverAll(ctx, testItems(2)); err == nil {
		t.Fatal("index returned without error while every item kept failing")
	}
	f.mu.Lock() // a request cut short may still be in the handler
	defer f.mu.Unlock()
	if f.seen["id0"] < 3 {
		t.Fatalf("item retried %d times in 300ms, want several", f.seen["id0"])
	}
}

func TestAllSucceeded(t *testing.T) {
	tests := []struct {
		resp string
		want bool
	}{
		{`{"errors":false,"took":3,"items":[{"index":{"status":201}}]}`, true},
		{`{"took":3,"errors":false,"items":[{"index":{"status":201}}]}`, true},
		{`{"took":1,"errors":true,"items":[{"index":{"status":429}}]}`, false},
		// An item's text never counts: only what comes before the items.
		{`{"took":1,"errors":true,"items":[{"index":{"status":400,"error":{"reason":"\"errors\":false"}}}]}`, false},
		{`{"items":[],"errors":false}`, false}, // order unknown: read the items
		{``, false},
	}
	for _, tt := range tests {
		if got := allSucceeded([]byte(tt.resp)); got != tt.want {
			t.Errorf("allSucceeded(%s) = %v, want %v", tt.resp, got, tt.want)
		}
	}
}
