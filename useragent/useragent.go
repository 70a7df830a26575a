// Package useragent parses the User-Agent header of a document
// (user_agent.original) into the ECS fields Elasticsearch's own user_agent
// processor sets, with the ua-parser project's regular expressions
// (github.com/ua-parser/uap-go, which embeds them):
//
//	user_agent.name         browser or client family ("Chrome", "curl";
//	                        "Other" when no expression matches)
//	user_agent.version      its version, "131.0" (absent if unknown)
//	user_agent.os.name      operating system ("Mac OS X", "Linux";
//	                        "Other" when unknown)
//	user_agent.os.version   its version, "10.15.7" (absent if unknown)
//	user_agent.os.full      name and version, "Mac OS X 10.15.7"
//	user_agent.device.name  device ("iPhone", "Mac", "Other")
//
// Matching one string against the expressions takes tens of microseconds
// to milliseconds (uap-go tries the expressions in turn), so results are
// kept in a bounded LRU cache keyed by the string: real traffic has few
// distinct user agents, and a hit costs a map lookup. Misses are bounded
// too: past MissBudget parses a second (a scanner sending a new string with
// every request), documents keep user_agent.original only and are counted
// as skipped, rather than slowing the whole pipeline to the parser's pace.
package useragent

import (
	"fmt"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/ua-parser/uap-go/uaparser"

	"github.com/sluicelog/sluice/parser"
)

// DefaultCacheSize is the number of distinct user agents an Enricher
// remembers: a day of a busy site has some thousands.
const DefaultCacheSize = 4096

// MaxLength is the longest user agent parsed: matching costs time in
// proportion to the length, and longer strings are junk or attacks, not
// browsers. Longer ones keep user_agent.original only.
const MaxLength = 1024

// MissBudget is the number of strings parsed per second, on average, with
// bursts of up to MissBurst: at about 1.5ms a string, a tenth of a core
// at most, and a cold cache fills within a second or two.
const (
	MissBudget = 64
	MissBurst  = 1024
)

// Agent is what a user agent string says, as document values (strings,
// nil for absent), boxed once so that setting them allocates nothing.
type Agent struct {
	Name, Version, OSName, OSVersion, OSFull, DeviceName any
}

// Enricher sets the parsed user_agent fields of documents. It is not safe
// for concurrent use (its cache is unlocked): one per document builder.
type Enricher struct {
	p     *uaparser.Parser
	cache *lru
	// Parses counts the strings parsed (cache misses), Hits the cache
	// hits, Skipped the strings left unparsed for want of budget.
	Parses, Hits, Skipped int64
	// tokens is what is left of the miss budget at last; now is the clock.
	tokens float64
	last   time.Time
	now    func() time.Time

	parsed, cached, skipped prometheus.Counter
}

// New compiles the expressions (about 60ms of CPU) and returns an Enricher
// that caches up to cacheSize user agents (0: DefaultCacheSize). Its
// metrics go to reg (nil: none).
func New(cacheSize int, reg prometheus.Registerer) (*Enricher, error) {
	if cacheSize <= 0 {
		cacheSize = DefaultCacheSize
	}
	// uap-go's own cache would only repeat ours (and locks): the smallest
	// it allows.
	p, err := uaparser.New(uaparser.WithCacheSize(1))
	if err != nil {
		return nil, fmt.Errorf("user agent parser: %w", err)
	}
	parses := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "sluice_user_agent_parses_total",
		Help: "User agents of documents by result: cached (from the cache), parsed (matched against the expressions), skipped (left unparsed: over the parse budget).",
	}, []string{"result"})
	if reg != nil {
		if err := reg.Register(parses); err != nil {
			return nil, fmt.Errorf("user agent parser: registering metrics: %w", err)
		}
	}
	return &Enricher{p: p, cache: newLRU(cacheSize), tokens: MissBurst, now: time.Now,
		parsed: parses.WithLabelValues("parsed"), cached: parses.WithLabelValues("cached"),
		skipped: parses.WithLabelValues("skipped")}, nil
}

// Keys of the fields Enrich reads and sets.
var (
	KeyOriginal   = parser.NewKey("user_agent.original")
	KeyName       = parser.NewKey("user_agent.name")
	KeyVersion    = parser.NewKey("user_agent.version")
	KeyOSName     = parser.NewKey("user_agent.os.name")
	KeyOSVersion  = parser.NewKey("user_agent.os.version")
	KeyOSFull     = parser.NewKey("user_agent.os.full")
	KeyDeviceName = parser.NewKey("user_agent.device.name")
)

// Fields are the names of the fields Enrich sets, for the index template
// and Kibana.
var Fields = []string{
	KeyName.String(), KeyVersion.String(), KeyOSName.String(), KeyOSVersion.String(),
	KeyOSFull.String(), KeyDeviceName.String(),
}

// Enrich sets the parsed fields of a document that has a user_agent.original
// string. Fields the document has already are kept.
func (e *Enricher) Enrich(doc *parser.Doc) {
	v, ok := doc.GetKey(KeyOriginal)
	if !ok {
		return
	}
	s, ok := v.(string)
	if !ok || s == "" || len(s) > MaxLength {
		return
	}
	a := e.Parse(s)
	if a == nil {
		return
	}
	set(doc, KeyName, a.Name)
	set(doc, KeyVersion, a.Version)
	set(doc, KeyOSName, a.OSName)
	set(doc, KeyOSVersion, a.OSVersion)
	set(doc, KeyOSFull, a.OSFull)
	set(doc, KeyDeviceName, a.DeviceName)
}

func set(doc *parser.Doc, k parser.Key, v any) {
	if v != nil && !doc.HasKey(k) {
		doc.SetKey(k, v)
	}
}

// Parse returns what s says, from the cache if it has been seen recently;
// nil if it was not and the miss budget is spent.
func (e *Enricher) Parse(s string) *Agent {
	if a, ok := e.cache.get(s); ok {
		e.Hits++
		e.cached.Inc()
		return a
	}
	if !e.spend() {
		e.Skipped++
		e.skipped.Inc()
		return nil
	}
	e.Parses++
	e.parsed.Inc()
	a := e.parse(s)
	// The key is cloned: s is often part of a Kafka record's buffer.
	e.cache.add(strings.Clone(s), a)
	return a
}

// spend takes one parse from the budget, if there is one left.
func (e *Enricher) spend() bool {
	now := e.now()
	if !e.last.IsZero() {
		e.tokens = min(MissBurst, e.tokens+now.Sub(e.last).Seconds()*MissBudget)
	}
	e.last = now
	if e.tokens < 1 {
		return false
	}
	e.tokens--
	return true
}

// parse matches s against the expressions, as Elasticsearch's user_agent
// processor reads the result.
func (e *Enricher) parse(s string) *Agent {
	ua := e.p.ParseUserAgent(s)
	os := e.p.ParseOs(s)
	dev := e.p.ParseDevice(s)
	a := &Agent{Name: orOther(ua.Family), DeviceName: orOther(dev.Family), OSName: orOther(os.Family)}
	if v := version(ua.Major, ua.Minor, ua.Patch); v != "" {
		a.Version = v
	}
	if v := version(os.Major, os.Minor, os.Patch, os.PatchMinor); v != "" {
		a.OSVersion = v
		if os.Family != "" && os.Family != "Other" {
			a.OSFull = os.Family + " " + v
		}
	}
	return a
}

// orOther is s as a document value, "Other" (ua-parser's name for
// unknown) if empty.
func orOther(s string) any {
	if s == "" {
		return "Other"
	}
	return s
}

// version joins the parts present, in order, with dots: parts after the
// first missing one are ignored.
func version(parts ...string) string {
	var b strings.Builder
	for _, p := range parts {
		if p == "" {
			break
		}
		if b.Len() > 0 {
			b.WriteByte('.')
		}
		b.WriteString(p)
	}
	return b.String()
}
