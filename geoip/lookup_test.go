package geoip

import (
	"maps"
	"net/netip"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/maxmind/mmdbwriter/mmdbtype"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/sluicelog/sluice/aggregator/pipeline"
	"github.com/sluicelog/sluice/internal/config"
	"github.com/sluicelog/sluice/parser"
)

// london is what the test databases hold for 81.2.69.0/24.
func london(city string) Result {
	return Result{
		Lat: 51.5142, Lon: -0.0931, HasLocation: true,
		CountryISOCode: "GB", CountryName: "United Kingdom",
		RegionName: "England", RegionISOCode: "GB-ENG",
		CityName: city, ContinentName: "Europe", ContinentCode: "EU",
		PostalCode: "EC2V", TimeZone: "Europe/London",
		ASNumber: 20712, ASOrganization: "Andrews & Arnold Ltd",
	}
}

// withoutBoxed returns r without its cached interface values, for
// comparisons.
func withoutBoxed(r Result) Result {
	r.boxed = nil
	return r
}

func TestLookup(t *testing.T) {
	city, asn := testDBs(t)
	e, _ := open(t, Config{City: city, ASN: asn})
	tests := []struct {
		name   string
		addr   string
		want   Result
		found  bool
		metric string // the lookups_total result counted
	}{
		{"city and asn", "81.2.69.142", london("London"), true, "hit"},
		{"ipv4-mapped", "::ffff:81.2.69.142", london("London"), true, "hit"},
		{"ipv6 country only", "2001:218::1", Result{CountryISOCode: "JP", CountryName: "Japan", ContinentCode: "AS", ContinentName: "Asia"}, true, "hit"},
		{"location at 0,0, subdivision without code", "216.160.83.56",
			Result{HasLocation: true, CountryISOCode: "US", CountryName: "United States", RegionName: "Washington"}, true, "hit"},
		{"asn only", "1.128.0.1", Result{ASNumber: 1221, ASOrganization: "Telstra Pty Ltd"}, true, "hit"},
		{"record without ECS fields", "89.160.20.112", Result{}, false, "miss"},
		{"not in the databases", "8.8.8.8", Result{}, false, "miss"},
		{"ipv6 not in the databases", "2a00:1450::1", Result{}, false, "miss"},
		{"private", "192.168.0.10", Result{}, false, "skipped"},
		{"carrier-grade NAT", "100.64.1.1", Result{}, false, "skipped"},
		{"documentation", "203.0.113.9", Result{}, false, "skipped"},
		{"unique local", "fd00::1", Result{}, false, "skipped"},
		{"zero", "", Result{}, false, "skipped"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var addr netip.Addr
			if tt.addr != "" {
				addr = netip.MustParseAddr(tt.addr)
			}
			before := testutil.ToFloat64(e.m.lookups.WithLabelValues(tt.metric))
			got, found := e.Lookup(addr)
			if found != tt.found || withoutBoxed(got) != tt.want {
				t.Errorf("Lookup(%s) = %+v, %v\nwant %+v, %v", tt.addr, got, found, tt.want, tt.found)
			}
			if d := testutil.ToFloat64(e.m.lookups.WithLabelValues(tt.metric)) - before; d != 1 {
				t.Errorf("lookups_total{result=%q} went up by %v, want 1", tt.metric, d)
			}
		})
	}
}

func TestLookupIPv4OnlyDatabase(t *testing.T) {
	path := filepath.Join(t.TempDir(), "v4.mmdb")
	writeDB(t, path, "GeoIP2-City", 4, built1, map[string]mmdbtype.Map{"81.2.69.0/24": londonRecord("London")})
	e, _ := open(t, Config{City: path})
	if r, ok := e.Lookup(netip.MustParseAddr("81.2.69.1")); !ok || r.CityName != "London" {
		t.Errorf("IPv4 lookup = %+v, %v", r, ok)
	}
	if r, ok := e.Lookup(netip.MustParseAddr("2001:218::1")); ok {
		t.Errorf("IPv6 lookup = %+v, want a miss", r)
	}
	if got := testutil.ToFloat64(e.m.errors); got != 0 {
		t.Errorf("errors = %v, want 0: an IPv6 address is a miss in an IPv4 database", got)
	}
}

func TestLookupDecodeError(t *testing.T) {
	path := filepath.Join(t.TempDir(), "odd.mmdb")
	writeDB(t, path, "GeoIP2-City", 6, built1, map[string]mmdbtype.Map{
		"89.160.20.0/24": {"subdivisions": mmdbtype.String("not a list")},
	})
	e, _ := open(t, Config{City: path})
	if r, ok := e.Lookup(netip.MustParseAddr("89.160.20.1")); ok {
		t.Errorf("Lookup = %+v, want nothing", r)
	}
	if got := testutil.ToFloat64(e.m.errors); got != 1 {
		t.Errorf("lookups_total{result=error} = %v, want 1", got)
	}
}

// moved is what Enrich adds for a client behind a proxy.
func moved(client, peer string) map[string]any {
	return map[string]any{"source.ip": client, "source.address": client, "client.ip": peer}
}

func TestEnrich(t *testing.T) {
	city, asn := testDBs(t)
	e, _ := open(t, Config{City: city, ASN: asn})
	londonFields := map[string]any{
		"source.geo.location":         map[string]any{"lat": 51.5142, "lon": -0.0931},
		"source.geo.country_iso_code": "GB",
		"source.geo.country_name":     "United Kingdom",
		"source.geo.region_name":      "England",
		"source.geo.region_iso_code":  "GB-ENG",
		"source.geo.city_name":        "London",
		"source.geo.continent_name":   "Europe",
		"source.geo.continent_code":   "EU",
		"source.geo.postal_code":      "EC2V",
		"source.geo.timezone":         "Europe/London",
		"source.as.number":            int64(20712),
		"source.as.organization.name": "Andrews & Arnold Ltd",
	}
	with := func(doc map[string]any, extra ...map[string]any) map[string]any {
		out := maps.Clone(doc)
		for _, m := range extra {
			maps.Copy(out, m)
		}
		return out
	}
	tests := []struct {
		name  string
		doc   map[string]any
		added map[string]any // nil: Enrich adds nothing
	}{
		{"public source", map[string]any{"source.ip": "81.2.69.142"}, londonFields},
		{"client from X-Forwarded-For", map[string]any{"source.ip": "10.0.0.7", "source.address": "10.0.0.7", "nginx.x_forwarded_for": []string{"81.2.69.1"}},
			with(londonFields, moved("81.2.69.1", "10.0.0.7"), map[string]any{"client.address": "10.0.0.7"})},
		{"trusted entries passed over", map[string]any{"source.ip": "10.0.0.7", "nginx.x_forwarded_for": []string{"81.2.69.2", "192.168.1.1"}},
			with(londonFields, moved("81.2.69.2", "10.0.0.7"))},
		{"forged left-most entry", map[string]any{"source.ip": "10.0.0.7", "nginx.x_forwarded_for": []string{"1.2.3.4", "81.2.69.2"}},
			with(londonFields, moved("81.2.69.2", "10.0.0.7"))},
		{"X-Forwarded-For as a string", map[string]any{"source.ip": "10.0.0.7", "nginx.x_forwarded_for": "1.2.3.4, 81.2.69.3"},
			with(londonFields, moved("81.2.69.3", "10.0.0.7"))},
		{"X-Forwarded-For from JSON", map[string]any{"source.ip": "10.0.0.7", "nginx.x_forwarded_for": []any{"81.2.69.4"}},
			with(londonFields, moved("81.2.69.4", "10.0.0.7"))},
		{"X-Forwarded-For same as source", map[string]any{"source.ip": "81.2.69.5", "nginx.x_forwarded_for": []string{"81.2.69.5"}}, londonFields},
		{"untrusted peer's X-Forwarded-For not believed", map[string]any{"source.ip": "81.2.69.5", "nginx.x_forwarded_for": []string{"81.2.69.6"}}, londonFields},
		{"X-Forwarded-For without source", map[string]any{"nginx.x_forwarded_for": []string{"81.2.69.6"}}, nil},
		{"only some fields", map[string]any{"source.ip": "2001:218::1"}, map[string]any{
			"source.geo.country_iso_code": "JP", "source.geo.country_name": "Japan",
			"source.geo.continent_code": "AS", "source.geo.continent_name": "Asia",
		}},
		{"location at 0,0", map[string]any{"source.ip": "216.160.83.56"}, map[string]any{
			"source.geo.location":         map[string]any{"lat": 0.0, "lon": 0.0},
			"source.geo.country_iso_code": "US", "source.geo.country_name": "United States",
			"source.geo.region_name": "Washington",
		}},
		{"private source", map[string]any{"source.ip": "192.168.0.10"}, nil},
		{"private client", map[string]any{"source.ip": "10.0.0.7", "nginx.x_forwarded_for": []string{"10.9.9.9"}}, moved("10.9.9.9", "10.0.0.7")},
		{"not in the databases", map[string]any{"source.ip": "8.8.8.8"}, nil},
		{"documentation range", map[string]any{"source.ip": "203.0.113.9"}, nil},
		{"garbage", map[string]any{"source.ip": "not-an-ip"}, nil},
		{"no source", map[string]any{"message": "hello"}, nil},
		{"source not a string", map[string]any{"source.ip": 42}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc := parser.DocOf(maps.Clone(tt.doc))
			added := e.Enrich(doc)
			found := false
			for k := range tt.added {
				found = found || strings.HasPrefix(k, "source.geo.") || strings.HasPrefix(k, "source.as.")
			}
			if added != found {
				t.Errorf("Enrich = %v", added)
			}
			want := with(tt.doc, tt.added)
			if got := doc.Map(); !reflect.DeepEqual(got, want) {
				t.Errorf("document\n got %v\nwant %v", got, want)
			}
		})
	}
}

// TestEnrichSharedLocationSurvivesPipelines checks that the location map
// documents share through the cache is left alone by the pipeline steps
// that change nested fields: each document gets its changes, the cache
// keeps the location it had.
func TestEnrichSharedLocationSurvivesPipelines(t *testing.T) {
	city, _ := testDBs(t)
	e, _ := open(t, Config{City: city})
	var cfg struct {
		Pipelines pipeline.Config `yaml:"pipelines"`
	}
	src := `
pipelines:
  t:
    - name: rename
      rename: {source.geo.location.lat: labels.lat}
    - name: delete
      remove_fields: [source.geo.location.lon]
    - name: set
      set: {field: source.geo.location.lat, value: 1}
`
	if err := config.Decode([]byte(src), &cfg, func(string) (string, bool) { return "", false }); err != nil {
		t.Fatal(err)
	}
	cfg.Pipelines.SetDefaults()
	ps, err := cfg.Pipelines.Compile("pipelines")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"lat": 51.5142, "lon": -0.0931}
	for i := range 3 { // the first lookup fills the cache, the others read it
		doc := parser.DocOf(map[string]any{"source.ip": "81.2.69.1"})
		e.Enrich(doc)
		loc, _ := doc.Get("source.geo.location")
		if !reflect.DeepEqual(loc, want) {
			t.Fatalf("lookup %d: location %v, want %v", i, loc, want)
		}
		ps["t"].Apply(doc)
		if got, _ := doc.Get("labels.lat"); got != 51.5142 {
			t.Errorf("lookup %d: labels.lat = %v", i, got)
		}
		if got, _ := doc.Get("source.geo.location"); !reflect.DeepEqual(got, map[string]any{}) {
			t.Errorf("lookup %d: source.geo.location = %v after the pipeline", i, got)
		}
		if got, _ := doc.Get("source.geo.location.lat"); got != int64(1) { // no longer in the object: set flat
			t.Errorf("lookup %d: source.geo.location.lat = %v after the pipeline", i, got)
		}
		if !reflect.DeepEqual(loc, want) {
			t.Fatalf("lookup %d: the pipeline changed the shared location: %v", i, loc)
		}
	}
	doc := parser.DocOf(map[string]any{"source.ip": "81.2.69.1"})
	e.Enrich(doc)
	if loc, _ := doc.Get("source.geo.location"); !reflect.DeepEqual(loc, want) {
		t.Errorf("cached location %v, want %v", loc, want)
	}
}

func TestAddTo(t *testing.T) {
	r := Result{CityName: "Paris", CountryISOCode: "FR", Lat: 48.86, Lon: 2.35, HasLocation: true, ASNumber: 3215}
	doc := &parser.Doc{}
	r.AddTo(doc, "destination")
	want := map[string]any{
		"destination.geo.city_name":        "Paris",
		"destination.geo.country_iso_code": "FR",
		"destination.geo.location":         map[string]any{"lat": 48.86, "lon": 2.35},
		"destination.as.number":            int64(3215),
	}
	if got := doc.Map(); !reflect.DeepEqual(got, want) {
		t.Errorf("AddTo = %v, want %v", got, want)
	}

	// A looked-up Result (with boxed values) writes the same.
	city, asn := testDBs(t)
	e, _ := open(t, Config{City: city, ASN: asn})
	looked, _ := e.Lookup(netip.MustParseAddr("81.2.69.1"))
	fromLookupDoc, byHandDoc := &parser.Doc{}, &parser.Doc{}
	looked.AddTo(fromLookupDoc, "source")
	withoutBoxed(looked).AddTo(byHandDoc, "source")
	fromLookup, byHand := fromLookupDoc.Map(), byHandDoc.Map()
	if !reflect.DeepEqual(fromLookup, byHand) || len(byHand) != numFields {
		t.Errorf("AddTo of a looked-up result = %v, by hand %v", fromLookup, byHand)
	}
	for k := range byHand {
		if !strings.HasPrefix(k, "source.geo.") && !strings.HasPrefix(k, "source.as.") {
			t.Errorf("unexpected key %s", k)
		}
	}
}

func TestClosedEnricher(t *testing.T) {
	city, _ := testDBs(t)
	e, _ := open(t, Config{City: city})
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	if err := e.Close(); err != nil {
		t.Fatalf("second Close = %v", err)
	}
	if r, ok := e.Lookup(netip.MustParseAddr("81.2.69.1")); ok {
		t.Errorf("Lookup after Close = %+v", r)
	}
	if doc := parser.DocOf(map[string]any{"source.ip": "81.2.69.1"}); e.Enrich(doc) || doc.Len() != 1 {
		t.Errorf("Enrich after Close changed %v", doc)
	}
}
