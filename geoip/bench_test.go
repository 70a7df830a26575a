package geoip

import (
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	geoip2 "github.com/oschwald/geoip2-golang/v2"

	"github.com/sluicelog/sluice/parser"
)

// benchCity returns the City database to benchmark: the real one when
// SLUICE_GEOIP_CITY names it, else the small test database.
func benchCity(b *testing.B) (path string, real bool) {
	if path := os.Getenv(realCityEnv); path != "" {
		return path, true
	}
	path = filepath.Join(b.TempDir(), "city.mmdb")
	writeCityDB(b, path, "London", built1)
	return path, false
}

// benchAddrs returns the addresses to look up: 4096 random routable IPv4
// addresses for the real database (far apart in its data, as real traffic
// is), else addresses the test database has.
func benchAddrs(real bool) []netip.Addr {
	rnd := rand.New(rand.NewPCG(1, 2))
	var out []netip.Addr
	for len(out) < 4096 {
		var a netip.Addr
		if real {
			a = netip.AddrFrom4([4]byte{byte(rnd.IntN(224)), byte(rnd.IntN(256)), byte(rnd.IntN(256)), byte(rnd.IntN(256))})
		} else {
			nets := [][3]byte{{81, 2, 69}, {216, 160, 83}}
			n := nets[rnd.IntN(len(nets))]
			a = netip.AddrFrom4([4]byte{n[0], n[1], n[2], byte(rnd.IntN(256))})
		}
		if routable(a) {
			out = append(out, a)
		}
	}
	return out
}

// BenchmarkLookup compares decoding a City record with maxminddb-golang and
// the minimal cityRecord (what Lookup uses) against geoip2-golang's full
// City structure, both from the same bytes in memory and both filling a
// Result; then Lookup itself, without and with its cache.
func BenchmarkLookup(b *testing.B) {
	path, real := benchCity(b)
	addrs := benchAddrs(real)
	e, _ := open(b, Config{City: path})
	d := e.gen.Load().city

	b.Run("maxminddb-minimal", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			var r Result
			if err := d.city(addrs[i%len(addrs)], &r); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})

	b.Run("geoip2-golang", func(b *testing.B) {
		data, err := os.ReadFile(path)
		if err != nil {
			b.Fatal(err)
		}
		db, err := geoip2.OpenBytes(data)
		if err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			c, err := db.City(addrs[i%len(addrs)])
			if err != nil {
				b.Fatal(err)
			}
			var r Result
			fillFromGeoIP2(c, &r)
			i++
		}
	})

	b.Run("uncached", func(b *testing.B) {
		g := *e.gen.Load()
		g.cache = newCache(0)
		e.gen.Store(&g)
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			e.Lookup(addrs[i%len(addrs)])
			i++
		}
	})

	b.Run("cached", func(b *testing.B) {
		g := *e.gen.Load()
		g.cache = newCache(DefaultCacheSize)
		e.gen.Store(&g)
		for _, a := range addrs {
			e.Lookup(a)
		}
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			e.Lookup(addrs[i%len(addrs)])
			i++
		}
	})
}

// fillFromGeoIP2 makes the same Result from geoip2-golang's City as
// cityRecord.fill does, for a like-for-like comparison.
func fillFromGeoIP2(c *geoip2.City, r *Result) {
	r.CityName = c.City.Names.English
	r.ContinentCode, r.ContinentName = c.Continent.Code, c.Continent.Names.English
	r.CountryISOCode, r.CountryName = c.Country.ISOCode, c.Country.Names.English
	if c.Location.Latitude != nil && c.Location.Longitude != nil {
		r.Lat, r.Lon, r.HasLocation = *c.Location.Latitude, *c.Location.Longitude, true
	}
	r.TimeZone, r.PostalCode = c.Location.TimeZone, c.Postal.Code
	if len(c.Subdivisions) > 0 {
		r.RegionName = c.Subdivisions[0].Names.English
		if iso := c.Subdivisions[0].ISOCode; iso != "" && r.CountryISOCode != "" {
			r.RegionISOCode = r.CountryISOCode + "-" + iso
		}
	}
}

// BenchmarkEnrich measures enriching a document whose client is cached,
// the common case: the client as source.ip, and as the X-Forwarded-For
// entry a trusted proxy added (which moves the proxy to client.ip).
func BenchmarkEnrich(b *testing.B) {
	path, real := benchCity(b)
	addrs := benchAddrs(real)
	e, _ := open(b, Config{City: path})
	docs := make([]*parser.Doc, 64)
	for i := range docs {
		docs[i] = parser.NewDoc(40)
	}
	ips := make([]string, len(addrs))
	for i, a := range addrs {
		ips[i] = a.String()
		e.Lookup(a)
	}
	b.Run("source", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			doc := docs[i%len(docs)]
			doc.Reset()
			doc.Set("source.ip", ips[i%len(ips)])
			e.Enrich(doc)
			i++
		}
	})
	xff := make([][]string, len(ips))
	for i, ip := range ips {
		xff[i] = []string{ip, "10.0.0.7"}
	}
	b.Run("forwarded", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			doc := docs[i%len(docs)]
			doc.Reset()
			doc.Set("source.ip", "10.0.0.7")
			doc.Set("nginx.x_forwarded_for", xff[i%len(xff)])
			e.Enrich(doc)
			i++
		}
	})
}
