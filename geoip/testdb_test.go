package geoip

import (
	"net"
	"os"
	"path/filepath"
	"testing"

	"github.com/maxmind/mmdbwriter"
	"github.com/maxmind/mmdbwriter/mmdbtype"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap/zaptest"
)

// Build times of the test databases.
const (
	built1 = 1700000000
	built2 = 1800000000
)

// names returns a GeoIP2 names map: English and two other languages, so
// that tests see the English one picked.
func names(en string) mmdbtype.Map {
	return mmdbtype.Map{
		"de": mmdbtype.String(en + " (de)"),
		"en": mmdbtype.String(en),
		"fr": mmdbtype.String(en + " (fr)"),
	}
}

// place is a GeoIP2 place record: geoname_id, iso_code and names.
func place(id uint32, iso, en string) mmdbtype.Map {
	m := mmdbtype.Map{"geoname_id": mmdbtype.Uint32(id), "names": names(en)}
	if iso != "" {
		m["iso_code"] = mmdbtype.String(iso)
	}
	return m
}

// londonRecord is a GeoIP2-City-shaped record in England, with the given
// city name.
func londonRecord(city string) mmdbtype.Map {
	return mmdbtype.Map{
		"city":               mmdbtype.Map{"geoname_id": mmdbtype.Uint32(2643743), "names": names(city)},
		"continent":          mmdbtype.Map{"code": mmdbtype.String("EU"), "geoname_id": mmdbtype.Uint32(6255148), "names": names("Europe")},
		"country":            place(2635167, "GB", "United Kingdom"),
		"registered_country": place(2635167, "GB", "United Kingdom"),
		"location": mmdbtype.Map{
			"accuracy_radius": mmdbtype.Uint16(10),
			"latitude":        mmdbtype.Float64(51.5142),
			"longitude":       mmdbtype.Float64(-0.0931),
			"time_zone":       mmdbtype.String("Europe/London"),
		},
		"postal": mmdbtype.Map{"code": mmdbtype.String("EC2V")},
		"subdivisions": mmdbtype.Slice{
			place(6269131, "ENG", "England"),
			place(2648110, "GLA", "Greater London"),
		},
		"traits": mmdbtype.Map{"is_anycast": mmdbtype.Bool(false)},
	}
}

// cityRecords returns the records of the test City database.
func cityRecords(city string) map[string]mmdbtype.Map {
	return map[string]mmdbtype.Map{
		"81.2.69.0/24": londonRecord(city),
		// Country only, IPv6.
		"2001:218::/32": {
			"continent": mmdbtype.Map{"code": mmdbtype.String("AS"), "names": names("Asia")},
			"country":   place(1861060, "JP", "Japan"),
		},
		// Location at 0,0 and a subdivision without iso_code.
		"216.160.83.0/24": {
			"country":      place(6252001, "US", "United States"),
			"location":     mmdbtype.Map{"latitude": mmdbtype.Float64(0), "longitude": mmdbtype.Float64(0)},
			"subdivisions": mmdbtype.Slice{mmdbtype.Map{"names": names("Washington")}},
		},
		// Found, but with nothing that becomes an ECS field.
		"89.160.20.0/24": {"registered_country": place(2661886, "SE", "Sweden")},
	}
}

// asnRecords returns the records of the test ASN database.
func asnRecords() map[string]mmdbtype.Map {
	return map[string]mmdbtype.Map{
		"81.2.69.0/24": {
			"autonomous_system_number":       mmdbtype.Uint32(20712),
			"autonomous_system_organization": mmdbtype.String("Andrews & Arnold Ltd"),
		},
		"1.128.0.0/11": {
			"autonomous_system_number":       mmdbtype.Uint32(1221),
			"autonomous_system_organization": mmdbtype.String("Telstra Pty Ltd"),
		},
	}
}

// writeDB writes a database of records to path, through a temporary file
// renamed into place as database updaters do.
func writeDB(t testing.TB, path, dbType string, ipVersion int, built int64, records map[string]mmdbtype.Map) {
	t.Helper()
	tree, err := mmdbwriter.New(mmdbwriter.Options{
		DatabaseType: dbType, IPVersion: ipVersion, RecordSize: 28, BuildEpoch: built,
		Languages: []string{"de", "en", "fr"}, Description: map[string]string{"en": "Sluice test database"},
	})
	if err != nil {
		t.Fatal(err)
	}
	for cidr, rec := range records {
		_, n, err := net.ParseCIDR(cidr)
		if err != nil {
			t.Fatal(err)
		}
		if err := tree.Insert(n, rec); err != nil {
			t.Fatalf("inserting %s: %v", cidr, err)
		}
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-*.mmdb")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tree.WriteTo(tmp); err != nil {
		t.Fatal(err)
	}
	if err := tmp.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		t.Fatal(err)
	}
}

func writeCityDB(t testing.TB, path, city string, built int64) {
	t.Helper()
	writeDB(t, path, "GeoIP2-City", 6, built, cityRecords(city))
}

func writeASNDB(t testing.TB, path string) {
	t.Helper()
	writeDB(t, path, "GeoLite2-ASN", 6, built1, asnRecords())
}

// testDBs writes the City and ASN test databases into a new directory and
// returns their paths.
func testDBs(t testing.TB) (city, asn string) {
	t.Helper()
	dir := t.TempDir()
	city, asn = filepath.Join(dir, "GeoIP2-City.mmdb"), filepath.Join(dir, "GeoLite2-ASN.mmdb")
	writeCityDB(t, city, "London", built1)
	writeASNDB(t, asn)
	return city, asn
}

// open opens an Enricher with a fresh registry, closed when the test ends.
func open(t testing.TB, cfg Config) (*Enricher, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	e, err := Open(cfg, reg, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e, reg
}

func writeFile(t testing.TB, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}
