package geoip

import (
	"net/netip"
	"strings"

	"github.com/sluicelog/sluice/parser"
)

// Result is what is known about an address.
type Result struct {
	Found          bool
	Lat, Lon       float64
	HasLocation    bool
	CountryISO     string
	CountryName    string
	RegionName     string
	RegionISO      string
	CityName       string
	ContinentName  string
	ContinentCode  string
	PostalCode     string
	TimeZone       string
	ASNumber       int64
	ASOrganization string
}

// names holds the English name only; decoding one field instead of a map of
// every language saves most of a lookup's allocations.
type names struct {
	EN string `maxminddb:"en"`
}

// cityRecord is the part of a City record Sluice uses; decoding only these
// fields is much cheaper than the full GeoIP2 structure.
type cityRecord struct {
	City struct {
		Names names `maxminddb:"names"`
	} `maxminddb:"city"`
	Continent struct {
		Code  string `maxminddb:"code"`
		Names names  `maxminddb:"names"`
	} `maxminddb:"continent"`
	Country struct {
		ISOCode string `maxminddb:"iso_code"`
		Names   names  `maxminddb:"names"`
	} `maxminddb:"country"`
	Location struct {
		Latitude  *float64 `maxminddb:"latitude"`
		Longitude *float64 `maxminddb:"longitude"`
		TimeZone  string   `maxminddb:"time_zone"`
	} `maxminddb:"location"`
	Postal struct {
		Code string `maxminddb:"code"`
	} `maxminddb:"postal"`
	Subdivisions []struct {
		ISOCode string `maxminddb:"iso_code"`
		Names   names  `maxminddb:"names"`
	} `maxminddb:"subdivisions"`
}

type asnRecord struct {
	Number       int64  `maxminddb:"autonomous_system_number"`
	Organization string `maxminddb:"autonomous_system_organization"`
}

// Lookup returns what the databases know about addr. ok is false for
// addresses that are never looked up (private, loopback, reserved).
func (e *Enricher) Lookup(addr netip.Addr) (Result, bool) {
	addr = addr.Unmap()
	if !Public(addr) {
		e.m.lookups.WithLabelValues("skipped").Inc()
		return Result{}, false
	}
	dbs := e.dbs.Load()
	if r, ok := dbs.cache.get(addr); ok {
		e.m.cacheHits.Inc()
		e.count(r)
		return r, true
	}
	var r Result
	if dbs.city != nil {
		var rec cityRecord
		res := dbs.city.Lookup(addr)
		if err := res.Decode(&rec); err != nil {
			e.m.lookups.WithLabelValues("error").Inc()
			return Result{}, false
		}
		if res.Found() {
			r.Found = true
			r.fillCity(&rec)
		}
	}
	if dbs.asn != nil {
		var rec asnRecord
		res := dbs.asn.Lookup(addr)
		if err := res.Decode(&rec); err == nil && res.Found() {
			r.Found = true
			r.ASNumber, r.ASOrganization = rec.Number, rec.Organization
		}
	}
	dbs.cache.put(addr, r)
	e.count(r)
	return r, true
}

func (e *Enricher) count(r Result) {
	if r.Found {
		e.m.lookups.WithLabelValues("hit").Inc()
	} else {
		e.m.lookups.WithLabelValues("miss").Inc()
	}
}

func (r *Result) fillCity(rec *cityRecord) {
	r.CityName = rec.City.Names.EN
	r.ContinentCode = rec.Continent.Code
	r.ContinentName = rec.Continent.Names.EN
	r.CountryISO = rec.Country.ISOCode
	r.CountryName = rec.Country.Names.EN
	if rec.Location.Latitude != nil && rec.Location.Longitude != nil {
		r.Lat, r.Lon, r.HasLocation = *rec.Location.Latitude, *rec.Location.Longitude, true
	}
	r.TimeZone = rec.Location.TimeZone
	r.PostalCode = rec.Postal.Code
	if len(rec.Subdivisions) > 0 {
		r.RegionName = rec.Subdivisions[0].Names.EN
		r.RegionISO = rec.Subdivisions[0].ISOCode
	}
}

// Set writes r into doc under source.geo.* and source.as.*, only the fields
// that have values.
func (r Result) Set(doc parser.Doc) {
	set := func(k, v string) {
		if v != "" {
			doc[k] = v
		}
	}
	if r.HasLocation {
		doc["source.geo.location"] = map[string]any{"lat": r.Lat, "lon": r.Lon}
	}
	set("source.geo.country_iso_code", r.CountryISO)
	set("source.geo.country_name", r.CountryName)
	set("source.geo.region_name", r.RegionName)
	if r.RegionISO != "" && r.CountryISO != "" {
		doc["source.geo.region_iso_code"] = r.CountryISO + "-" + r.RegionISO
	}
	set("source.geo.city_name", r.CityName)
	set("source.geo.continent_name", r.ContinentName)
	set("source.geo.continent_code", r.ContinentCode)
	set("source.geo.postal_code", r.PostalCode)
	set("source.geo.timezone", r.TimeZone)
	if r.ASNumber != 0 {
		doc["source.as.number"] = r.ASNumber
	}
	set("source.as.organization.name", r.ASOrganization)
}

// Enrich looks up the document's client address and adds what is found:
// for nginx documents the client is taken from X-Forwarded-For (see
// ClientIP), else source.ip. It returns whether anything was added.
func (e *Enricher) Enrich(doc parser.Doc) bool {
	src, _ := doc["source.ip"].(string)
	xff, _ := doc["nginx.x_forwarded_for"].([]string)
	addr, ok := ClientIP(src, xff, e.trusted)
	if !ok {
		return false
	}
	if addr.String() != src {
		doc["client.ip"] = addr.String()
	}
	r, ok := e.Lookup(addr)
	if !ok || !r.Found {
		return false
	}
	r.Set(doc)
	return true
}

// ClientIP picks the address to locate: the left-most X-Forwarded-For
// entry that is a valid address outside the trusted proxy ranges, else the
// connecting address.
//
// The left-most entry is what the client claims; a client can forge it by
// sending its own X-Forwarded-For. The location is for dashboards, not for
// access decisions, and the connecting address stays in source.ip.
func ClientIP(sourceIP string, xff []string, trusted []netip.Prefix) (netip.Addr, bool) {
	for _, s := range xff {
		a, err := netip.ParseAddr(strings.TrimSpace(s))
		if err != nil {
			continue
		}
		a = a.Unmap()
		if !inAny(a, trusted) {
			return a, true
		}
	}
	a, err := netip.ParseAddr(strings.TrimSpace(sourceIP))
	if err != nil {
		return netip.Addr{}, false
	}
	return a.Unmap(), true
}

func inAny(a netip.Addr, list []netip.Prefix) bool {
	for _, p := range list {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// reserved are ranges that are never located: shared address space,
// documentation, benchmarking, and other special-purpose ranges not covered
// by netip's own predicates.
var reserved = func() []netip.Prefix {
	var out []netip.Prefix
	for _, s := range []string{"0.0.0.0/8", "100.64.0.0/10", "192.0.0.0/24", "192.0.2.0/24", "198.18.0.0/15",
		"198.51.100.0/24", "203.0.113.0/24", "240.0.0.0/4", "255.255.255.255/32", "2001:db8::/32", "64:ff9b:1::/48", "100::/64"} {
		out = append(out, netip.MustParsePrefix(s))
	}
	return out
}()

// Public reports whether addr is a globally routable address worth locating.
func Public(a netip.Addr) bool {
	if !a.IsValid() || a.IsPrivate() || a.IsLoopback() || a.IsLinkLocalUnicast() || a.IsLinkLocalMulticast() ||
		a.IsMulticast() || a.IsUnspecified() || a.IsInterfaceLocalMulticast() {
		return false
	}
	return !inAny(a, reserved)
}
