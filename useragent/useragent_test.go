package useragent

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/sluicelog/sluice/parser"
)

// shared compiles the expressions once for the package's tests: each New
// takes about a second of CPU.
var shared = sync.OnceValues(func() (*Enricher, error) { return New(0, nil) })

func enricher(t testing.TB) *Enricher {
	t.Helper()
	e, err := shared()
	if err != nil {
		t.Fatal(err)
	}
	return e
}

const (
	chromeLinux = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.6778.85 Safari/537.36"
	safariPhone = "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1"
	firefoxMac  = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10.15; rv:133.0) Gecko/20100101 Firefox/133.0"
	curl        = "curl/8.5.0"
	kubeProbe   = "kube-probe/1.31"
)

func TestEnrichSetsECSFields(t *testing.T) {
	e := enricher(t)
	tests := []struct {
		ua   string
		want map[string]any
	}{
		{chromeLinux, map[string]any{"user_agent.name": "Chrome", "user_agent.version": "131.0.6778",
			"user_agent.os.name": "Linux", "user_agent.device.name": "Other"}},
		{safariPhone, map[string]any{"user_agent.name": "Mobile Safari", "user_agent.version": "18.1",
			"user_agent.os.name": "iOS", "user_agent.os.version": "18.1", "user_agent.os.full": "iOS 18.1",
			"user_agent.device.name": "iPhone"}},
		{firefoxMac, map[string]any{"user_agent.name": "Firefox", "user_agent.version": "133.0",
			"user_agent.os.name": "Mac OS X", "user_agent.os.version": "10.15", "user_agent.os.full": "Mac OS X 10.15",
			"user_agent.device.name": "Mac"}},
		{curl, map[string]any{"user_agent.name": "curl", "user_agent.version": "8.5.0",
			"user_agent.os.name": "Other", "user_agent.device.name": "Other"}},
		{"definitely not a browser", map[string]any{"user_agent.name": "Other",
			"user_agent.os.name": "Other", "user_agent.device.name": "Other"}},
	}
	for _, tt := range tests {
		t.Run(tt.ua, func(t *testing.T) {
			doc := parser.NewDoc(8)
			doc.Set("user_agent.original", tt.ua)
			e.Enrich(doc)
			got := doc.Map()
			delete(got, "user_agent.original")
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("Enrich(%q):\n got %v\nwant %v", tt.ua, got, tt.want)
			}
		})
	}
}

func TestEnrichLeavesOthersAlone(t *testing.T) {
	e := enricher(t)
	// No user agent, an empty one, a non-string, an overlong one: nothing
	// set.
	for _, v := range []any{nil, "", int64(3), string(make([]byte, MaxLength+1))} {
		doc := parser.NewDoc(4)
		if v != nil {
			doc.Set("user_agent.original", v)
		}
		e.Enrich(doc)
		if doc.Has("user_agent.name") {
			t.Errorf("%T %.20q: user_agent.name set: %v", v, v, doc)
		}
	}
	// A field the document has is kept.
	doc := parser.NewDoc(4)
	doc.Set("user_agent.original", curl)
	doc.Set("user_agent.name", "my-client")
	e.Enrich(doc)
	if v, _ := doc.Get("user_agent.name"); v != "my-client" {
		t.Errorf("user_agent.name = %v, want the document's own", v)
	}
}

func TestParseCaches(t *testing.T) {
	e, err := New(2, nil)
	if err != nil {
		t.Fatal(err)
	}
	// The key is cloned: changing the bytes it came from changes nothing.
	b := []byte(curl)
	first := e.Parse(string(b))
	copy(b, "XXXX")
	if e.Parse(curl) != first || e.Parses != 1 || e.Hits != 1 {
		t.Fatalf("second parse of one string: parses %d hits %d, want 1 1", e.Parses, e.Hits)
	}
	e.Parse(kubeProbe)
	e.Parse(curl)        // curl is the most recent
	e.Parse(chromeLinux) // drops kube-probe
	e.Parse(curl)
	if e.Parses != 3 || e.cache.len() != 2 {
		t.Fatalf("parses %d, entries %d; want 3, 2", e.Parses, e.cache.len())
	}
	e.Parse(kubeProbe)
	if e.Parses != 4 {
		t.Errorf("kube-probe, dropped, parsed from the cache")
	}
}

func TestLRU(t *testing.T) {
	c := newLRU(3)
	a := func(s string) *Agent { return &Agent{Name: s} }
	for _, k := range []string{"a", "b", "c"} {
		c.add(k, a(k))
	}
	c.get("a") // order: a c b
	c.add("d", a("d"))
	if _, ok := c.get("b"); ok {
		t.Error("b, least recently used, kept")
	}
	for _, k := range []string{"a", "c", "d"} {
		if got, ok := c.get(k); !ok || got.Name != k {
			t.Errorf("get(%s) = %v, %v", k, got, ok)
		}
	}
	// Order now a c d (d most recent): a goes next.
	c.add("e", a("e"))
	if _, ok := c.get("a"); ok || c.len() != 3 {
		t.Errorf("a kept or %d entries", c.len())
	}
	// Walk the ring both ways: every entry once.
	seen := map[int32]bool{}
	for i, n := c.head, 0; n < 3; i, n = c.entries[i].next, n+1 {
		if seen[i] || c.entries[c.entries[i].next].prev != i {
			t.Fatalf("ring broken at %d", i)
		}
		seen[i] = true
	}
}

// BenchmarkEnrich measures Enrich per document: cached, as real traffic
// mostly is, and uncached (each user agent new: a cache of one entry and
// two alternating strings).
func BenchmarkEnrich(b *testing.B) {
	agents := []string{chromeLinux, safariPhone, curl}
	run := func(b *testing.B, e *Enricher) {
		docs := make([]*parser.Doc, len(agents))
		for i, ua := range agents {
			docs[i] = parser.NewDoc(40)
			docs[i].Set("user_agent.original", ua)
		}
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			doc := docs[i%len(docs)]
			i++
			e.Enrich(doc)
			for _, k := range []parser.Key{KeyName, KeyVersion, KeyOSName, KeyOSVersion, KeyOSFull, KeyDeviceName} {
				doc.DeleteKey(k)
			}
		}
	}
	b.Run("cached", func(b *testing.B) { run(b, enricher(b)) })
	b.Run("uncached", func(b *testing.B) {
		e, err := New(1, nil)
		if err != nil {
			b.Fatal(err)
		}
		// A clock a second on at every call: the budget never runs out.
		at := time.Now()
		e.now = func() time.Time { at = at.Add(time.Second); return at }
		run(b, e)
	})
}

func BenchmarkNew(b *testing.B) {
	for b.Loop() {
		if _, err := New(0, nil); err != nil {
			b.Fatal(err)
		}
	}
}

func TestParseBudget(t *testing.T) {
	e, err := New(8, nil)
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 12, 6, 8, 0, 0, 0, time.UTC)
	e.now = func() time.Time { return at }
	e.tokens = 2 // the burst, nearly spent
	for _, ua := range []string{curl, kubeProbe} {
		if e.Parse(ua) == nil {
			t.Fatalf("%s: skipped within the budget", ua)
		}
	}
	if e.Parse(chromeLinux) != nil || e.Skipped != 1 {
		t.Fatalf("parsed past the budget (skipped %d)", e.Skipped)
	}
	// Cached strings cost nothing.
	if e.Parse(curl) == nil {
		t.Fatal("cached string skipped")
	}
	// The budget refills at MissBudget a second.
	at = at.Add(time.Second / MissBudget)
	doc := parser.NewDoc(4)
	doc.Set("user_agent.original", chromeLinux)
	e.Enrich(doc)
	if v, _ := doc.Get("user_agent.name"); v != "Chrome" {
		t.Errorf("after refill: user_agent.name %v", v)
	}
	// A skipped document keeps its original only.
	doc = parser.NewDoc(4)
	doc.Set("user_agent.original", safariPhone)
	e.Enrich(doc)
	if doc.Len() != 1 || e.Skipped != 2 {
		t.Errorf("over budget: %v, skipped %d", doc, e.Skipped)
	}
}
