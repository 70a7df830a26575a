package aggregator

import (
	"reflect"
	"testing"
	"time"

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
