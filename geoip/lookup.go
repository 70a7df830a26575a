package geoip

import (
	"fmt"
	"math"
	"net/netip"
	"runtime"

	"github.com/oschwald/maxminddb-golang/v2/mmdbdata"
	"go.uber.org/zap"

	"github.com/sluicelog/sluice/parser"
)

// Document fields Enrich reads.
var (
	sourceIPField = parser.NewKey("source.ip")
	xffField      = parser.NewKey("nginx.x_forwarded_for")
	clientIPField = parser.NewKey("client.ip")
)

// Lookup returns what the databases know about addr, and whether they know
// anything. Private and reserved addresses are not looked up (counted as
// skipped). Safe for concurrent use, also with reloads.
func (e *Enricher) Lookup(addr netip.Addr) (Result, bool) {
	r := e.lookup(addr.Unmap().WithZone(""))
	if r == nil {
		return Result{}, false
	}
	return *r, true
}

// lookup returns the shared, immutable result for addr, nil if nothing is
// known, and counts the outcome.
func (e *Enricher) lookup(addr netip.Addr) *Result {
	if !routable(addr) {
		e.m.skipped.Inc()
		return nil
	}
	g := e.gen.Load()
	if g == nil { // closed
		return nil
	}
	r, cached := g.cache.get(addr)
	if cached {
		e.m.cacheHits.Inc()
	} else {
		var err error
		if r, err = g.find(addr); err != nil {
			e.m.errors.Inc()
			e.log.Debug("geoip lookup failed", zap.Stringer("ip", addr), zap.Error(err))
			return nil
		}
		g.cache.put(addr, r)
	}
	if r == nil {
		e.m.misses.Inc()
	} else {
		e.m.hits.Inc()
	}
	return r
}

// Enrich restores the document's client as Clients.Restore does, and adds
// its location and network to doc as source.geo.* and source.as.* fields
// (see Result.AddTo). It reports whether it added any. source.ip is the
// connecting peer (a string) and nginx.x_forwarded_for a []string as the
// nginx parser writes it, or a comma-separated string. A document without
// source.ip is left alone and not counted in the metrics. Safe for
// concurrent use with distinct documents.
func (e *Enricher) Enrich(doc *parser.Doc) bool {
	addr, moved, ok := clientOf(doc, e.trusted)
	if !ok {
		return false
	}
	r := e.lookup(addr)
	if moved {
		if r != nil && r.boxed != nil {
			move(doc, r.boxed.addr)
		} else {
			move(doc, addr.String())
		}
	}
	if r == nil {
		return false
	}
	r.addTo(doc, e.keys)
	return true
}

// forwardedFor returns an X-Forwarded-For field's entries.
func forwardedFor(v any) []string {
	switch v := v.(type) {
	case []string:
		return v
	case string:
		return []string{v}
	case []any:
		out := make([]string, 0, len(v))
		for _, s := range v {
			if s, ok := s.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}

// find looks addr up in the databases: nil when they know nothing.
func (g *generation) find(addr netip.Addr) (*Result, error) {
	var r Result
	if g.city != nil {
		if err := g.city.city(addr, &r); err != nil {
			return nil, err
		}
	}
	if g.asn != nil {
		if err := g.asn.asn(addr, &r); err != nil {
			return nil, err
		}
	}
	if r.empty() {
		return nil, nil
	}
	return cached(r, addr), nil
}

// city fills r with what the City database d knows about addr.
func (d *database) city(addr netip.Addr, r *Result) error {
	if !d.covers(addr) {
		return nil
	}
	var rec cityRecord
	rec.Location.Latitude, rec.Location.Longitude = math.NaN(), math.NaN()
	err := d.reader.Lookup(addr).Decode(&rec)
	runtime.KeepAlive(d) // its memory is freed when d is unreachable
	if err != nil {
		return fmt.Errorf("city database: %w", err)
	}
	rec.fill(r)
	return nil
}

// asn fills r with what the ASN database d knows about addr.
func (d *database) asn(addr netip.Addr, r *Result) error {
	if !d.covers(addr) {
		return nil
	}
	var rec asnRecord
	err := d.reader.Lookup(addr).Decode(&rec)
	runtime.KeepAlive(d)
	if err != nil {
		return fmt.Errorf("asn database: %w", err)
	}
	r.ASNumber, r.ASOrganization = int64(rec.Number), rec.Organization
	return nil
}

// covers reports whether the database can hold addr: an IPv4-only
// database has no IPv6 addresses (and would return an error).
func (d *database) covers(addr netip.Addr) bool {
	return addr.Is4() || d.reader.Metadata.IPVersion != 4
}

// englishNames is a names map decoded for its English entry only, which
// saves decoding the other languages.
type englishNames struct {
	EN string `maxminddb:"en"`
}

// cityRecord is the part of a GeoIP2/GeoLite2 City record that becomes ECS
// fields. Decoding these fields only is faster and allocates less than
// geoip2-golang's full City structure (see BenchmarkLookup).
type cityRecord struct {
	City struct {
		Names englishNames `maxminddb:"names"`
	} `maxminddb:"city"`
	Continent struct {
		Code  string       `maxminddb:"code"`
		Names englishNames `maxminddb:"names"`
	} `maxminddb:"continent"`
	Country struct {
		ISOCode string       `maxminddb:"iso_code"`
		Names   englishNames `maxminddb:"names"`
	} `maxminddb:"country"`
	Location struct {
		// NaN until decoded: a record may have no location.
		Latitude  float64 `maxminddb:"latitude"`
		Longitude float64 `maxminddb:"longitude"`
		TimeZone  string  `maxminddb:"time_zone"`
	} `maxminddb:"location"`
	Postal struct {
		Code string `maxminddb:"code"`
	} `maxminddb:"postal"`
	Subdivisions firstSubdivision `maxminddb:"subdivisions"`
}

func (rec *cityRecord) fill(r *Result) {
	r.CityName = rec.City.Names.EN
	r.ContinentCode = rec.Continent.Code
	r.ContinentName = rec.Continent.Names.EN
	r.CountryISOCode = rec.Country.ISOCode
	r.CountryName = rec.Country.Names.EN
	if lat, lon := rec.Location.Latitude, rec.Location.Longitude; !math.IsNaN(lat) && !math.IsNaN(lon) {
		r.Lat, r.Lon, r.HasLocation = lat, lon, true
	}
	r.TimeZone = rec.Location.TimeZone
	r.PostalCode = rec.Postal.Code
	r.RegionName = rec.Subdivisions.Name
	if rec.Subdivisions.ISOCode != "" && r.CountryISOCode != "" {
		r.RegionISOCode = r.CountryISOCode + "-" + rec.Subdivisions.ISOCode
	}
}

// asnRecord is a GeoLite2 ASN record (GeoIP2 ISP records have the same
// fields).
type asnRecord struct {
	Number       uint32 `maxminddb:"autonomous_system_number"`
	Organization string `maxminddb:"autonomous_system_organization"`
}

// firstSubdivision decodes the first, largest, subdivision of a record's
// list (England for Oxford, not Oxfordshire) and skips the others. Unlike
// a slice it needs no allocation.
type firstSubdivision struct {
	ISOCode string
	Name    string
}

// UnmarshalMaxMindDBCursor implements mmdbdata.CursorUnmarshaler.
func (s *firstSubdivision) UnmarshalMaxMindDBCursor(c mmdbdata.Cursor) (mmdbdata.Cursor, error) {
	list, err := c.Slice()
	if err != nil {
		return mmdbdata.Cursor{}, fmt.Errorf("decoding subdivisions: %w", err)
	}
	var next mmdbdata.Cursor
	for {
		i, elem, ok := list.Next(next)
		if !ok {
			break
		}
		if i == 0 {
			next, err = s.decode(elem)
		} else {
			next, err = elem.Skip()
		}
		if err != nil {
			return mmdbdata.Cursor{}, fmt.Errorf("decoding subdivision %d: %w", i, err)
		}
	}
	return list.End()
}

// decode reads one subdivision map: iso_code and names.en.
func (s *firstSubdivision) decode(c mmdbdata.Cursor) (mmdbdata.Cursor, error) {
	entries, err := c.MapReader()
	if err != nil {
		return mmdbdata.Cursor{}, err
	}
	next := entries.First()
	for range entries.Len() {
		key, value, err := next.ReadMapKey()
		if err != nil {
			return mmdbdata.Cursor{}, err
		}
		switch string(key) {
		case "iso_code":
			s.ISOCode, next, err = value.ReadString()
		case "names":
			s.Name, next, err = readEnglish(value)
		default:
			next, err = value.Skip()
		}
		if err != nil {
			return mmdbdata.Cursor{}, fmt.Errorf("field %s: %w", key, err)
		}
	}
	return entries.End(next)
}

// readEnglish reads the "en" entry of a names map.
func readEnglish(c mmdbdata.Cursor) (string, mmdbdata.Cursor, error) {
	entries, err := c.MapReader()
	if err != nil {
		return "", mmdbdata.Cursor{}, err
	}
	var en string
	next := entries.First()
	for range entries.Len() {
		key, value, err := next.ReadMapKey()
		if err != nil {
			return "", mmdbdata.Cursor{}, err
		}
		if string(key) == "en" {
			en, next, err = value.ReadString()
		} else {
			next, err = value.Skip()
		}
		if err != nil {
			return "", mmdbdata.Cursor{}, err
		}
	}
	next, err = entries.End(next)
	return en, next, err
}

var _ mmdbdata.CursorUnmarshaler = (*firstSubdivision)(nil)
