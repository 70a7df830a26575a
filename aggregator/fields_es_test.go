package aggregator

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap/zaptest"

	"github.com/sluicelog/sluice/aggregator/internal/records"
	"github.com/sluicelog/sluice/internal/event"
	"github.com/sluicelog/sluice/internal/testenv"
	"github.com/sluicelog/sluice/parser"
)

// sharedIndex is the stages, without Kafka, indexing into the real Elasticsearch, with
// Sluice's template, into one index per document type shared by every
// service and tenant (index "<prefix>-{type}").
type sharedIndex struct {
	stack  *testenv.Stack
	p      *Aggregator
	index  string
	dead   *records.DeadLetters
	offset int64
}

func newSharedIndex(t *testing.T) *sharedIndex {
	t.Helper()
	stack := testenv.Start(t)
	prefix := testenv.Name(t, "fields")
	var cfg Config
	cfg.SetDefaults()
	cfg.Elasticsearch.Addresses = []string{stack.Elasticsearch}
	cfg.Elasticsearch.Index = prefix + "-{type}"
	cfg.Elasticsearch.TemplateName = prefix
	stack.DeleteIndices(t, prefix+"-*")
	t.Cleanup(func() { stack.ES(t, http.MethodDelete, "/_index_template/"+prefix, nil, nil) })
	dead := &records.DeadLetters{}
	p, err := newStages(cfg, prometheus.NewRegistry(), zaptest.NewLogger(t), dead)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.installTemplate(context.Background()); err != nil {
		t.Fatal(err)
	}
	return &sharedIndex{stack: stack, p: p, index: prefix + "-service", dead: dead}
}

// send indexes lines of one service and customer and waits until
// Elasticsearch has acknowledged them; it returns their document ids.
func (s *sharedIndex) send(t *testing.T, service, customer string, lines ...string) []string {
	t.Helper()
	fields := map[string]string{"service": service, "customer": customer, "environment": "prod"}
	var recs []*kgo.Record
	var ids []string
	for _, line := range lines {
		ev := event.Event{Type: "service", Node: "n1", Path: "/var/log/" + service + ".log", FileID: "f-" + service,
			Offset: s.offset, Fields: fields, Line: []byte(line)}
		s.offset += int64(len(line) + 1)
		recs = append(recs, ev.Record("logs-service", event.EncodeFields(fields)))
		ids = append(ids, ev.DocID())
	}
	if err := s.p.loop.Process(context.Background(), recs); err != nil {
		t.Fatal(err)
	}
	if dead := s.dead.Letters(); len(dead) > 0 {
		t.Fatalf("dead letters: %+v", dead)
	}
	s.stack.ES(t, http.MethodPost, "/"+s.index+"/_refresh", nil, nil)
	return ids
}

// find returns the ids of the documents matching a match query.
func (s *sharedIndex) find(t *testing.T, field string, value any) []string {
	t.Helper()
	var res struct {
		Hits struct {
			Hits []struct {
				ID string `json:"_id"`
			} `json:"hits"`
		} `json:"hits"`
	}
	q := fmt.Sprintf(`{"query":{"match":{%q:{"query":%q,"operator":"and"}}}}`, field, fmt.Sprint(value))
	if code := s.stack.ES(t, http.MethodPost, "/"+s.index+"/_search", strings.NewReader(q), &res); code != http.StatusOK {
		t.Fatalf("search %s: status %d", q, code)
	}
	var ids []string
	for _, h := range res.Hits.Hits {
		ids = append(ids, h.ID)
	}
	return ids
}

func (s *sharedIndex) source(t *testing.T, id string) map[string]any {
	t.Helper()
	var res struct {
		Source map[string]any `json:"_source"`
	}
	s.stack.ES(t, http.MethodGet, "/"+s.index+"/_doc/"+id, nil, &res)
	return res.Source
}

func onlyID(ids []string, id string) bool { return len(ids) == 1 && ids[0] == id }

// Two services log the same keys with values of different types into one
// index, and the commonest logger keys as strings: every document is
// indexed whole, none is moved aside, and each finds its own value. Before,
// "error": "..." was rejected (error is an object) and moved aside, and
// "status": "ok" after "status": 200 was in no searchable field.
func TestSharedIndexFieldTypes(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test needs Elasticsearch")
	}
	s := newSharedIndex(t)
	a := s.send(t, "api", "acme", `{"msg":"a","status":200,"ok":true,"error":"connection refused","host":"pod-abc","user":"alice"}`)[0]
	b := s.send(t, "worker", "acme", `{"msg":"b","status":"ok","ok":"maybe","error":"timeout","url":"https://x.example/y","event":"retry"}`)[0]

	for _, id := range []string{a, b} {
		src := s.source(t, id)
		if src["tags"] != nil {
			t.Errorf("document %s tagged %v: %v", id, src["tags"], src)
		}
	}
	for _, c := range []struct {
		field string
		value any
		id    string
	}{
		{"status", 200, a},
		{"status.keyword", "ok", b},
		{"ok", true, a},
		{"ok.keyword", "maybe", b},
		{"error.message", "connection refused", a},
		{"error.message", "timeout", b},
		{"labels.claimed_host_name", "pod-abc", a},
		{"user.name", "alice", a},
		{"url.original", "https://x.example/y", b},
		{"event.action", "retry", b},
	} {
		if got := s.find(t, c.field, c.value); !onlyID(got, c.id) {
			t.Errorf("%s: %v finds %v, want only %s", c.field, c.value, got, c.id)
		}
	}
}

// One tenant's line with 1,950 keys does not take the shared index's
// mapping: its keys beyond the bound are in labels.overflow (still
// searchable), and the next tenant's new fields are mapped and searchable.
// Before, the wide line filled the mapping and the next tenant's document
// was rejected ("Limit of total fields [2000] has been exceeded") and
// dead-lettered.
func TestTenantCannotFillSharedMapping(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test needs Elasticsearch")
	}
	s := newSharedIndex(t)
	var wide strings.Builder
	wide.WriteString(`{"msg":"wide"`)
	for i := range 1950 {
		fmt.Fprintf(&wide, `,"a_%d":"v%d"`, i, i)
	}
	wide.WriteString("}")
	a := s.send(t, "checkout", "tenant-a", wide.String())[0]
	narrow := `{"msg":"narrow","b_order":"B-1","b_amount":12.5,"b_items":[1,2]`
	for i := range 60 {
		narrow += fmt.Sprintf(`,"b_%d":%d`, i, i)
	}
	b := s.send(t, "checkout", "tenant-b", narrow+"}")[0]

	src := s.source(t, a)
	over, _ := src["labels.overflow"].(map[string]any)
	if len(over) != 1950-parser.DefaultMaxFields || len(src) > parser.DefaultMaxFields+20 {
		t.Fatalf("the wide document has %d fields and %d keys in labels.overflow, want %d there", len(src), len(over), 1950-parser.DefaultMaxFields)
	}
	var overKey string
	for k := range over {
		overKey = k
		break
	}
	for _, c := range []struct {
		field string
		value any
		id    string
	}{
		{"b_order", "B-1", b},
		{"b_59", 59, b},
		{"b_amount", 12.5, b},
		{"b_items", 2, b},
		{"a_0", "v0", a},
		{"labels.overflow." + overKey, over[overKey], a},
	} {
		if got := s.find(t, c.field, c.value); !onlyID(got, c.id) {
			t.Errorf("%s: %v finds %v, want only %s", c.field, c.value, got, c.id)
		}
	}

	// Tenants together can still fill the mapping, line by line: past the
	// limit a document's new fields are not mapped, but it is indexed.
	for i := 0; i < 10; i++ {
		var line strings.Builder
		fmt.Fprintf(&line, `{"msg":"fill %d"`, i)
		for j := range 250 {
			fmt.Fprintf(&line, `,"f%d_%d":1`, i, j)
		}
		line.WriteString("}")
		s.send(t, "checkout", "tenant-a", line.String())
	}
	c := s.send(t, "checkout", "tenant-c", `{"msg":"late","c_field":"x"}`)[0]
	if got := s.find(t, "message", "late"); !onlyID(got, c) {
		t.Errorf("the late document: found %v, want %s", got, c)
	}
}
