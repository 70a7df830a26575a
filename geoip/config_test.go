package geoip

import (
	"errors"
	"net/netip"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/maxmind/mmdbwriter/mmdbtype"

	"github.com/sluicelog/sluice/internal/config"
)

func TestSetDefaults(t *testing.T) {
	var c Config
	c.SetDefaults()
	if c.CacheSize != DefaultCacheSize || c.CheckInterval != DefaultCheckInterval || c.Watch == nil || !*c.Watch {
		t.Errorf("defaults = %+v", c)
	}
	if !slices.Equal(c.TrustedProxies, DefaultTrustedProxies()) {
		t.Errorf("trusted proxies = %v", c.TrustedProxies)
	}

	off := false
	c = Config{CacheSize: 5, TrustedProxies: []string{}, Watch: &off, CheckInterval: time.Minute}
	c.SetDefaults()
	if c.CacheSize != 5 || len(c.TrustedProxies) != 0 || *c.Watch || c.CheckInterval != time.Minute {
		t.Errorf("set values changed: %+v", c)
	}
}

func TestDefaultTrustedProxies(t *testing.T) {
	trusted, err := ParsePrefixes(DefaultTrustedProxies(), "x")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"10.1.2.3", "172.31.0.1", "192.168.0.1", "127.0.0.1", "::1", "fd00::1", "169.254.1.1", "fe80::1"} {
		if !contains(trusted, netip.MustParseAddr(s)) {
			t.Errorf("%s is not trusted by default", s)
		}
	}
	for _, s := range []string{"8.8.8.8", "100.64.0.1", "172.32.0.1", "2001:4860::8888"} {
		if contains(trusted, netip.MustParseAddr(s)) {
			t.Errorf("%s is trusted by default", s)
		}
	}
}

func TestValidate(t *testing.T) {
	city, asn := testDBs(t)
	dir := filepath.Dir(city)
	tests := []struct {
		name string
		cfg  Config
		key  string // "" for no error
		msg  string
	}{
		{"off", Config{}, "", ""},
		{"city and asn", Config{City: city, ASN: asn}, "", ""},
		{"asn only", Config{ASN: asn}, "", ""},
		{"missing city", Config{City: filepath.Join(dir, "missing.mmdb")},
			"geoip.city", "cannot read " + filepath.Join(dir, "missing.mmdb") + ": no such file or directory"},
		{"directory", Config{ASN: dir}, "geoip.asn", dir + " is a directory; give the path of the .mmdb file"},
		{"negative cache", Config{City: city, CacheSize: -1}, "geoip.cache_size", "must not be negative, got -1"},
		{"bad prefix length", Config{City: city, TrustedProxies: []string{"10.0.0.0/8", "192.168.0.0/16", "10.0.0.0/33"}},
			"geoip.trusted_proxies[2]", `"10.0.0.0/33" is not a CIDR; use a form like 10.0.0.0/8`},
		{"not an address", Config{City: city, TrustedProxies: []string{"proxy.internal"}},
			"geoip.trusted_proxies[0]", `"proxy.internal" is not a CIDR; use a form like 10.0.0.0/8`},
		{"single addresses", Config{City: city, TrustedProxies: []string{"10.0.0.1", "2001:db8::1"}}, "", ""},
		{"short interval", Config{City: city, CheckInterval: time.Millisecond}, "geoip.check_interval", "must be at least 1s, got 1ms"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.cfg.SetDefaults()
			err := tt.cfg.Validate("geoip")
			if tt.key == "" {
				if err != nil {
					t.Fatalf("Validate = %v", err)
				}
				return
			}
			var ce *config.Error
			if !errors.As(err, &ce) {
				t.Fatalf("Validate = %v, want a *config.Error", err)
			}
			if ce.Key != tt.key || ce.Msg != tt.msg {
				t.Errorf("Validate = %q\nwant      %q", err, tt.key+": "+tt.msg)
			}
		})
	}
}

func TestParsePrefixes(t *testing.T) {
	got, err := ParsePrefixes([]string{"10.1.2.3/8", "203.0.113.9", "::ffff:192.168.0.0/112", "fe80::1%eth0"}, "k")
	if err != nil {
		t.Fatal(err)
	}
	want := []netip.Prefix{
		netip.MustParsePrefix("10.0.0.0/8"),
		netip.MustParsePrefix("203.0.113.9/32"),
		netip.MustParsePrefix("192.168.0.0/16"),
		netip.MustParsePrefix("fe80::1/128"),
	}
	if !slices.Equal(got, want) {
		t.Errorf("ParsePrefixes = %v, want %v", got, want)
	}
}

func TestOpenErrors(t *testing.T) {
	city, asn := testDBs(t)
	notDB := filepath.Join(t.TempDir(), "not.mmdb")
	writeFile(t, notDB, "not a database")
	damaged := filepath.Join(t.TempDir(), "damaged.mmdb")
	writeDB(t, damaged, "GeoIP2-City", 6, built1, map[string]mmdbtype.Map{
		"81.2.69.0/24": {"subdivisions": mmdbtype.String("not a list")},
	})
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"nothing configured", Config{}, "geoip: no database configured; set geoip.city or geoip.asn"},
		{"not a database", Config{City: notDB}, "geoip.city: " + notDB + " is not a MaxMind database: "},
		{"damaged", Config{City: damaged}, "geoip.city: " + damaged + " is damaged: city database: "},
		{"asn as city", Config{City: asn}, "geoip.city: " + asn + ": is a GeoLite2-ASN database, not a City database; give it as geoip.asn"},
		{"city as asn", Config{ASN: city}, "geoip.asn: " + city + ": is a GeoIP2-City database, not an ASN database"},
		{"invalid config", Config{City: city, CacheSize: -3}, "geoip.cache_size: must not be negative, got -3"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, err := Open(tt.cfg, nil, nil)
			if err == nil {
				e.Close()
				t.Fatal("Open succeeded")
			}
			if got := err.Error(); len(got) < len(tt.want) || got[:len(tt.want)] != tt.want {
				t.Errorf("Open = %q\nwant prefix %q", got, tt.want)
			}
		})
	}
}

func TestOpenRegistersOnGivenRegistry(t *testing.T) {
	city, _ := testDBs(t)
	_, reg := open(t, Config{City: city})
	// A second Enricher on the same registry is refused, not a panic.
	if e2, err := Open(Config{City: city}, reg, nil); err == nil {
		e2.Close()
		t.Error("second Open on the same registry succeeded")
	}
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range families {
		got = append(got, f.GetName())
	}
	want := []string{
		"sluice_geoip_cache_hits_total",
		"sluice_geoip_database_build_timestamp_seconds",
		"sluice_geoip_lookups_total",
		"sluice_geoip_reloads_total",
	}
	if !slices.Equal(got, want) {
		t.Errorf("registered %v, want %v", got, want)
	}
}

func TestConfigYAML(t *testing.T) {
	src := `
city: /data/GeoLite2-City.mmdb
asn: /data/GeoLite2-ASN.mmdb
cache_size: 500
trusted_proxies: [10.0.0.0/8, "2001:db8::/32"]
watch: false
check_interval: 1m
`
	var c Config
	if err := config.Decode([]byte(src), &c, func(string) (string, bool) { return "", false }); err != nil {
		t.Fatal(err)
	}
	if c.City != "/data/GeoLite2-City.mmdb" || c.ASN != "/data/GeoLite2-ASN.mmdb" || c.CacheSize != 500 ||
		!slices.Equal(c.TrustedProxies, []string{"10.0.0.0/8", "2001:db8::/32"}) ||
		c.Watch == nil || *c.Watch || c.CheckInterval != time.Minute {
		t.Errorf("decoded %+v", c)
	}

	var empty Config
	if err := config.Decode([]byte("trusted_proxies: []\n"), &empty, func(string) (string, bool) { return "", false }); err != nil {
		t.Fatal(err)
	}
	empty.SetDefaults()
	if len(empty.TrustedProxies) != 0 || !*empty.Watch {
		t.Errorf("trusted_proxies: [] gave %v, watch %v; want no trusted proxies, watching", empty.TrustedProxies, *empty.Watch)
	}
}
