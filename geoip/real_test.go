package geoip

import (
	"net/netip"
	"os"
	"testing"

	"github.com/sluicelog/sluice/parser"
)

// realCityEnv names the real GeoLite2 City database, as fetched by
// deploy/local/fetch-geoip.sh (which prints its path).
const realCityEnv = "SLUICE_GEOIP_CITY"

// realCity returns the path of the real City database, or skips the test.
func realCity(tb testing.TB) string {
	tb.Helper()
	path := os.Getenv(realCityEnv)
	if path == "" {
		tb.Skipf("%s is not set: run SLUICE_GEOIP_CITY=$(deploy/local/fetch-geoip.sh) go test ./geoip to test against the real GeoLite2 City database", realCityEnv)
	}
	return path
}

// TestRealDatabase looks up well-known addresses, stable across database
// editions, in the real GeoLite2 City database.
func TestRealDatabase(t *testing.T) {
	e, _ := open(t, Config{City: realCity(t)})
	md := e.gen.Load().city.reader.Metadata
	t.Logf("%s built %s", md.DatabaseType, md.BuildTime().UTC().Format("2006-01-02"))
	tests := []struct {
		addr, country, continent string
	}{
		{"8.8.8.8", "US", "NA"},
		{"2001:4860:4860::8888", "US", "NA"},
		{"81.2.69.142", "GB", "EU"},
	}
	for _, tt := range tests {
		r, ok := e.Lookup(netip.MustParseAddr(tt.addr))
		if !ok || r.CountryISOCode != tt.country || r.ContinentCode != tt.continent {
			t.Errorf("%s = %+v, %v; want country %q, continent %q", tt.addr, r, ok, tt.country, tt.continent)
		}
	}
	r, _ := e.Lookup(netip.MustParseAddr("8.8.8.8"))
	if r.CountryName != "United States" || !r.HasLocation || r.TimeZone == "" {
		t.Errorf("8.8.8.8 = %+v, want the United States with a location and time zone", r)
	}
	doc := parser.DocOf(map[string]any{"source.ip": "10.0.0.7", "nginx.x_forwarded_for": []string{"81.2.69.142", "10.0.0.7"}})
	if !e.Enrich(doc) || doc.Map()["source.geo.country_iso_code"] != "GB" || doc.Map()["source.geo.region_iso_code"] != "GB-ENG" {
		t.Errorf("enriched = %v", doc)
	}
}
