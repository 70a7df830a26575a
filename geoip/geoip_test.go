package geoip

import (
	"context"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/maxmind/mmdbwriter"
	"github.com/maxmind/mmdbwriter/mmdbtype"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap/zaptest"

	"github.com/sluicelog/sluice/parser"
)

// writeCityDB writes a GeoIP2-City-shaped database mapping 81.2.69.0/24 to
// city (in the United Kingdom) and 2001:218::/32 to Japan.
func writeCityDB(t testing.TB, path, city string, built int64) {
	t.Helper()
	tree, err := mmdbwriter.New(mmdbwriter.Options{DatabaseType: "GeoIP2-City", RecordSize: 28, BuildEpoch: built, IPVersion: 6})
	if err != nil {
		t.Fatal(err)
	}
	names := func(en string) mmdbtype.Map { return mmdbtype.Map{"en": mmdbtype.String(en)} }
	insert := func(cidr string, rec mmdbtype.Map) {
		_, n, err := net.ParseCIDR(cidr)
		if err != nil {
			t.Fatal(err)
		}
		if err := tree.Insert(n, rec); err != nil {
			t.Fatal(err)
		}
	}
	insert("81.2.69.0/24", mmdbtype.Map{
		"city":         mmdbtype.Map{"names": names(city)},
		"continent":    mmdbtype.Map{"code": mmdbtype.String("EU"), "names": names("Europe")},
		"country":      mmdbtype.Map{"iso_code": mmdbtype.String("GB"), "names": names("United Kingdom")},
		"location":     mmdbtype.Map{"latitude": mmdbtype.Float64(51.5142), "longitude": mmdbtype.Float64(-0.0931), "time_zone": mmdbtype.String("Europe/London")},
		"postal":       mmdbtype.Map{"code": mmdbtype.String("EC2V")},
		"subdivisions": mmdbtype.Slice{mmdbtype.Map{"iso_code": mmdbtype.String("ENG"), "names": names("England")}},
	})
	insert("2001:218::/32", mmdbtype.Map{
		"country": mmdbtype.Map{"iso_code": mmdbtype.String("JP"), "names": names("Japan")},
	})
	writeTree(t, tree, path)
}

func writeASNDB(t testing.TB, path string) {
	t.Helper()
	tree, err := mmdbwriter.New(mmdbwriter.Options{DatabaseType: "GeoLite2-ASN", RecordSize: 24, BuildEpoch: 1700000000, IPVersion: 6})
	if err != nil {
		t.Fatal(err)
	}
	_, n, _ := net.ParseCIDR("81.2.69.0/24")
	if err := tree.Insert(n, mmdbtype.Map{"autonomous_system_number": mmdbtype.Uint32(20712), "autonomous_system_organization": mmdbtype.String("Andrews & Arnold Ltd")}); err != nil {
		t.Fatal(err)
	}
	writeTree(t, tree, path)
}

// writeTree writes atomically, as database updaters do.
func writeTree(t testing.TB, tree *mmdbwriter.Tree, path string) {
	t.Helper()
	tmp := path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tree.WriteTo(f); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func open(t testing.TB, cfg Config) (*Enricher, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	e, err := Open(cfg, reg, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	return e, reg
}

func TestEnrich(t *testing.T) {
	dir := t.TempDir()
	writeCityDB(t, filepath.Join(dir, "city.mmdb"), "London", 1700000000)
	writeASNDB(t, filepath.Join(dir, "asn.mmdb"))
	e, _ := open(t, Config{City: filepath.Join(dir, "city.mmdb"), ASN: filepath.Join(dir, "asn.mmdb")})
	tests := []struct {
		name string
		doc  parser.Doc
		want map[string]any // nil: nothing added
	}{
		{"public source", parser.Doc{"source.ip": "81.2.69.142"}, map[string]any{
			"source.geo.city_name": "London", "source.geo.country_iso_code": "GB", "source.geo.country_name": "United Kingdom",
			"source.geo.continent_name": "Europe", "source.geo.region_name": "England", "source.geo.region_iso_code": "GB-ENG",
			"source.geo.timezone": "Europe/London", "source.as.number": int64(20712), "source.as.organization.name": "Andrews & Arnold Ltd",
		}},
		{"client from X-Forwarded-For", parser.Doc{"source.ip": "10.0.0.7", "nginx.x_forwarded_for": []string{"81.2.69.1", "10.0.0.7"}},
			map[string]any{"client.ip": "81.2.69.1", "source.geo.country_iso_code": "GB"}},
		{"trusted entries skipped", parser.Doc{"source.ip": "10.0.0.7", "nginx.x_forwarded_for": []string{"192.168.1.1", "81.2.69.2"}},
			map[string]any{"client.ip": "81.2.69.2", "source.geo.city_name": "London"}},
		{"ipv6", parser.Doc{"source.ip": "2001:218::1"}, map[string]any{"source.geo.country_iso_code": "JP"}},
		{"private", parser.Doc{"source.ip": "192.168.0.10"}, nil},
		{"not in database", parser.Doc{"source.ip": "8.8.8.8"}, nil},
		{"documentation range", parser.Doc{"source.ip": "203.0.113.9"}, nil},
		{"garbage", parser.Doc{"source.ip": "not-an-ip"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			added := e.Enrich(tt.doc)
			if added != (tt.want != nil) {
				t.Fatalf("Enrich = %v, doc %v", added, tt.doc)
			}
			for k, v := range tt.want {
				if tt.doc[k] != v {
					t.Errorf("%s = %#v, want %#v", k, tt.doc[k], v)
				}
			}
			if tt.want == nil {
				for k := range tt.doc {
					if strings.HasPrefix(k, "source.geo") {
						t.Errorf("unexpected %s", k)
					}
				}
			}
		})
	}
	loc := parser.Doc{"source.ip": "81.2.69.142"}
	e.Enrich(loc)
	if l, ok := loc["source.geo.location"].(map[string]any); !ok || l["lat"] != 51.5142 || l["lon"] != -0.0931 {
		t.Errorf("location = %#v", loc["source.geo.location"])
	}
}

func TestClientIP(t *testing.T) {
	trusted, _ := ParsePrefixes(DefaultTrustedProxies, "x")
	tests := []struct {
		src  string
		xff  []string
		want string
	}{
		{"10.0.0.7", nil, "10.0.0.7"},
		{"10.0.0.7", []string{" 81.2.69.1 ", "10.0.0.7"}, "81.2.69.1"},
		{"10.0.0.7", []string{"garbage", "81.2.69.1"}, "81.2.69.1"},
		{"10.0.0.7", []string{"10.1.1.1", "172.16.0.1"}, "10.0.0.7"},
		{"10.0.0.7", []string{"::ffff:81.2.69.1"}, "81.2.69.1"},
		{"", []string{}, ""},
	}
	for _, tt := range tests {
		got, ok := ClientIP(tt.src, tt.xff, trusted)
		if (tt.want == "") == ok || (ok && got.String() != tt.want) {
			t.Errorf("ClientIP(%q, %q) = %v, %v; want %q", tt.src, tt.xff, got, ok, tt.want)
		}
	}
}

func TestValidate(t *testing.T) {
	dir := t.TempDir()
	writeCityDB(t, filepath.Join(dir, "city.mmdb"), "London", 1)
	tests := []struct {
		cfg  Config
		want string
	}{
		{Config{City: filepath.Join(dir, "missing.mmdb")}, "geoip.city"},
		{Config{City: filepath.Join(dir, "city.mmdb"), TrustedProxies: []string{"10.0.0.0/8", "10.0.0.0/33"}}, "geoip.trusted_proxies[1]"},
		{Config{City: filepath.Join(dir, "city.mmdb"), CacheSize: -1}, "geoip.cache_size"},
	}
	for _, tt := range tests {
		tt.cfg.SetDefaults()
		err := tt.cfg.Validate("geoip")
		if err == nil || !strings.HasPrefix(err.Error(), tt.want) {
			t.Errorf("Validate(%+v) = %v, want an error about %s", tt.cfg, err, tt.want)
		}
	}
}

func TestCacheAndMetrics(t *testing.T) {
	dir := t.TempDir()
	writeCityDB(t, filepath.Join(dir, "city.mmdb"), "London", 1700000000)
	e, _ := open(t, Config{City: filepath.Join(dir, "city.mmdb"), CacheSize: 4})
	a := netip.MustParseAddr("81.2.69.3")
	for range 3 {
		if r, ok := e.Lookup(a); !ok || r.CityName != "London" {
			t.Fatalf("Lookup = %+v, %v", r, ok)
		}
	}
	if got := testutil.ToFloat64(e.m.cacheHits); got != 2 {
		t.Errorf("cache hits = %v, want 2", got)
	}
	e.Lookup(netip.MustParseAddr("10.0.0.1"))
	if got := testutil.ToFloat64(e.m.lookups.WithLabelValues("skipped")); got != 1 {
		t.Errorf("skipped = %v, want 1", got)
	}
	if got := testutil.ToFloat64(e.m.buildTime.WithLabelValues("city")); got != 1700000000 {
		t.Errorf("build time = %v", got)
	}
	for i := range 20 { // more addresses than the cache holds
		e.Lookup(netip.AddrFrom4([4]byte{81, 2, 69, byte(i)}))
	}
	if n := len(e.dbs.Load().cache.cur) + len(e.dbs.Load().cache.prev); n > 4 {
		t.Errorf("cache holds %d entries, more than its size 4", n)
	}
}

func TestHotReload(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "city.mmdb")
	writeCityDB(t, path, "London", 1700000000)
	e, _ := open(t, Config{City: path, CheckInterval: time.Second})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go e.Run(ctx)
	a := netip.MustParseAddr("81.2.69.3")
	if r, _ := e.Lookup(a); r.CityName != "London" {
		t.Fatalf("before reload: %q", r.CityName)
	}
	time.Sleep(50 * time.Millisecond)
	writeCityDB(t, path, "Manchester", 1800000000)
	deadline := time.Now().Add(5 * time.Second)
	for {
		if r, _ := e.Lookup(a); r.CityName == "Manchester" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("database not reloaded within 5s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if got := testutil.ToFloat64(e.m.buildTime.WithLabelValues("city")); got != 1800000000 {
		t.Errorf("build time after reload = %v", got)
	}
}

// TestRealDatabase looks up a well-known address in the real GeoLite2 City
// database that deploy/local/fetch-geoip.sh fetches, when it is there.
func TestRealDatabase(t *testing.T) {
	path := os.Getenv("SLUICE_GEOIP_CITY")
	if path == "" {
		t.Skip("SLUICE_GEOIP_CITY is not set; make bench and make demo fetch the real database")
	}
	e, _ := open(t, Config{City: path})
	r, ok := e.Lookup(netip.MustParseAddr("8.8.8.8"))
	if !ok || r.CountryISO != "US" {
		t.Fatalf("8.8.8.8 = %+v", r)
	}
}

func BenchmarkLookup(b *testing.B) {
	dir := b.TempDir()
	writeCityDB(b, filepath.Join(dir, "city.mmdb"), "London", 1)
	path := os.Getenv("SLUICE_GEOIP_CITY")
	if path == "" {
		path = filepath.Join(dir, "city.mmdb")
	}
	e, _ := open(b, Config{City: path, CacheSize: 1})
	addrs := []netip.Addr{netip.MustParseAddr("81.2.69.142"), netip.MustParseAddr("8.8.8.8"), netip.MustParseAddr("2001:218::1")}
	b.Run("uncached", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			e.dbs.Load().cache = newCache(1)
			e.Lookup(addrs[i%len(addrs)])
			i++
		}
	})
	e2, _ := open(b, Config{City: path})
	b.Run("cached", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			e2.Lookup(addrs[i%len(addrs)])
			i++
		}
	})
}
