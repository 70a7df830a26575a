package geoip

import (
	"net/netip"

	"github.com/sluicelog/sluice/parser"
)

// Result is what the databases know about an address. Empty strings and a
// zero ASNumber mean unknown.
type Result struct {
	// Lat and Lon are valid when HasLocation is set.
	Lat, Lon    float64
	HasLocation bool

	CountryISOCode string // "GB"
	CountryName    string // "United Kingdom"
	RegionName     string // the largest subdivision: "England"
	RegionISOCode  string // country and subdivision code: "GB-ENG"
	CityName       string
	ContinentName  string
	ContinentCode  string // "EU"
	PostalCode     string
	TimeZone       string // "Europe/London"

	ASNumber       int64
	ASOrganization string

	// boxed holds the field values already converted to any, made once
	// when the result is cached so that enriching a document does not
	// allocate one interface per field. nil for a Result built by hand.
	boxed *boxedFields
}

// Indexes of the ECS fields, in the order they are written.
const (
	fieldLocation = iota
	fieldCountryISOCode
	fieldCountryName
	fieldRegionName
	fieldRegionISOCode
	fieldCityName
	fieldContinentName
	fieldContinentCode
	fieldPostalCode
	fieldTimezone
	fieldASNumber
	fieldASOrganization
	numFields
)

// fieldName returns the ECS name of field i below the prefix.
func fieldName(i int) string {
	switch i {
	case fieldLocation:
		return "geo.location"
	case fieldCountryISOCode:
		return "geo.country_iso_code"
	case fieldCountryName:
		return "geo.country_name"
	case fieldRegionName:
		return "geo.region_name"
	case fieldRegionISOCode:
		return "geo.region_iso_code"
	case fieldCityName:
		return "geo.city_name"
	case fieldContinentName:
		return "geo.continent_name"
	case fieldContinentCode:
		return "geo.continent_code"
	case fieldPostalCode:
		return "geo.postal_code"
	case fieldTimezone:
		return "geo.timezone"
	case fieldASNumber:
		return "as.number"
	case fieldASOrganization:
		return "as.organization.name"
	}
	panic("geoip: unknown field")
}

// fieldKeys are the document keys of the fields under one prefix.
type fieldKeys [numFields]parser.Key

func keysFor(prefix string) *fieldKeys {
	var k fieldKeys
	for i := range k {
		k[i] = parser.NewKey(prefix + "." + fieldName(i))
	}
	return &k
}

// boxedFields are a Result's values as interfaces, those of the fields
// with values only. The location map is shared by every document enriched
// from the cache: nothing changes a document's nested objects in place
// (pipeline steps copy them first, as does the conflict retry).
type boxedFields struct {
	fields []boxedField
	// addr is the address looked up, as source.ip holds it.
	addr any
}

// boxedField is a field with a value, and that value.
type boxedField struct {
	i int
	v any
}

// cachedResult is a Result as the cache keeps it, with its boxed values in
// the same allocation: enriching a document reads one block of memory
// instead of following pointers across the heap.
type cachedResult struct {
	r      Result
	boxed  boxedFields
	fields [numFields]boxedField // boxed.fields
}

// cached returns a copy of r, the result for addr, prepared for repeated
// use by AddTo; it must not change.
func cached(r Result, addr netip.Addr) *Result {
	c := &cachedResult{r: r}
	b := &c.boxed
	b.addr = addr.String()
	b.fields = c.fields[:0]
	for i := range numFields {
		if v := r.value(i); v != nil {
			b.fields = append(b.fields, boxedField{i, v})
		}
	}
	c.r.boxed = b
	return &c.r
}

// value returns field i as a document value, nil when empty.
func (r *Result) value(i int) any {
	var s string
	switch i {
	case fieldLocation:
		if !r.HasLocation {
			return nil
		}
		return map[string]any{"lat": r.Lat, "lon": r.Lon}
	case fieldASNumber:
		if r.ASNumber == 0 {
			return nil
		}
		return r.ASNumber
	case fieldCountryISOCode:
		s = r.CountryISOCode
	case fieldCountryName:
		s = r.CountryName
	case fieldRegionName:
		s = r.RegionName
	case fieldRegionISOCode:
		s = r.RegionISOCode
	case fieldCityName:
		s = r.CityName
	case fieldContinentName:
		s = r.ContinentName
	case fieldContinentCode:
		s = r.ContinentCode
	case fieldPostalCode:
		s = r.PostalCode
	case fieldTimezone:
		s = r.TimeZone
	case fieldASOrganization:
		s = r.ASOrganization
	}
	if s == "" {
		return nil
	}
	return s
}

// AddTo writes r into doc as flat ECS fields under prefix: with prefix
// "source", source.geo.city_name, source.as.number and so on. Only fields
// with values are written; source.geo.location is a map[string]any with
// float64 "lat" and "lon", source.as.number an int64, the rest strings.
// The documents enriched from one cached result share its location map,
// which nothing may change in place.
func (r Result) AddTo(doc *parser.Doc, prefix string) {
	r.addTo(doc, keysFor(prefix))
}

func (r *Result) addTo(doc *parser.Doc, keys *fieldKeys) {
	if r.boxed != nil {
		for _, f := range r.boxed.fields {
			doc.SetKey(keys[f.i], f.v) // the location map too, shared
		}
		return
	}
	for i := range numFields {
		if v := r.value(i); v != nil {
			doc.SetKey(keys[i], v)
		}
	}
}

// empty reports whether r holds nothing.
func (r *Result) empty() bool {
	bare := *r
	bare.boxed = nil
	return bare == Result{}
}
