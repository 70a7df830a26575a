package process

import (
	"reflect"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/sluicelog/sluice/internal/event"
)

// TestFillECSEventFields checks the ECS categorisation fields: nginx's
// dataset is Filebeat's nginx.access, its outcome follows the status code,
// and a service line's own event fields are kept.
func TestFillECSEventFields(t *testing.T) {
	p, err := newParsers(ParsersConfig{})
	if err != nil {
		t.Fatal(err)
	}
	nginx := func(status string) string {
		return `81.2.69.142 - - [25/Nov/2026:10:00:00 +0000] "GET / HTTP/1.1" ` + status + ` 512 "-" "curl/8.5.0" 0.012 0.010 "10.0.0.7"`
	}
	cases := []struct {
		name, typ, line string
		want            map[string]any
	}{
		{"nginx 200", "nginx", nginx("200"), map[string]any{
			"event.dataset": "nginx.access", "event.kind": "event", "event.category": []string{"web"},
			"event.type": []string{"access"}, "event.outcome": "success", "ecs.version": ECSVersion}},
		{"nginx 304", "nginx", nginx("304"), map[string]any{"event.outcome": "success"}},
		{"nginx 404", "nginx", nginx("404"), map[string]any{"event.outcome": "failure"}},
		{"nginx 503", "nginx", nginx("503"), map[string]any{"event.outcome": "failure"}},
		{"nginx unparsed", "nginx", "garbage", map[string]any{
			"event.dataset": "nginx.access", "event.kind": "event", "event.outcome": nil, "event.category": nil}},
		{"service", "service", `{"msg":"hi","level":"info"}`, map[string]any{
			"event.dataset": "service", "event.kind": "event", "ecs.version": ECSVersion, "event.category": nil, "event.outcome": nil}},
		{"service's own", "service", `{"msg":"hi","event":{"kind":"alert","outcome":"failure"}}`, map[string]any{
			"event.kind": "alert", "event.outcome": "failure"}},
	}
	for _, c := range cases {
		doc := newDoc()
		p.fill(&event.Event{Type: c.typ, Node: "n", Path: "/p", ReadTime: time.Now(), Line: []byte(c.line)}, doc)
		for k, want := range c.want {
			got, _ := doc.Get(k)
			if m, ok := doc.Get("event"); ok && got == nil { // nested as the app wrote it
				got = m.(map[string]any)[k[len("event."):]]
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("%s: %s = %#v, want %#v (doc %v)", c.name, k, got, want, doc)
			}
		}
	}
}

// TestBuildRestoresClientBehindProxy checks that a document from nginx
// behind a load balancer has the real client in source.ip, also without
// GeoIP databases, and the load balancer in client.ip; a forged
// X-Forwarded-For entry left of the real client is not believed, nor the
// header of an untrusted peer.
func TestBuildRestoresClientBehindProxy(t *testing.T) {
	var cfg Config
	cfg.SetDefaults()
	b, err := newBuilder(cfg, prometheus.NewRegistry(), zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	line := func(peer, xff string) string {
		return peer + ` - - [25/Nov/2026:10:00:00 +0000] "GET / HTTP/1.1" 200 512 "-" "curl/8.5.0" 0.012 0.010 "` + xff + `"`
	}
	cases := []struct {
		name, line     string
		source, client any
	}{
		{"behind a load balancer", line("10.0.0.7", "6.6.6.6, 81.2.69.142"), "81.2.69.142", "10.0.0.7"},
		{"two trusted proxies", line("10.0.0.7", "6.6.6.6, 81.2.69.142, 192.168.1.1"), "81.2.69.142", "10.0.0.7"},
		{"untrusted peer", line("81.2.69.142", "6.6.6.6"), "81.2.69.142", nil},
		{"no header", line("81.2.69.142", "-"), "81.2.69.142", nil},
	}
	for _, c := range cases {
		doc := newDoc()
		ev := event.Event{Type: "nginx", Node: "n", Path: "/p", ReadTime: time.Now(), Line: []byte(c.line)}
		if parsed, _, _, _ := b.build(&ev, doc); !parsed {
			t.Fatalf("%s: not parsed: %v", c.name, doc)
		}
		src, _ := doc.Get("source.ip")
		addr, _ := doc.Get("source.address")
		client, _ := doc.Get("client.ip")
		if src != c.source || addr != c.source || client != c.client {
			t.Errorf("%s: source.ip %v, source.address %v, client.ip %v; want %v, %v, %v", c.name, src, addr, client, c.source, c.source, c.client)
		}
	}
}
