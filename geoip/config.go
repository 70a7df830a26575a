package geoip

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"time"

	"github.com/oschwald/maxminddb-golang/v2"

	"github.com/sluicelog/sluice/internal/config"
)

// Defaults for unset Config values.
const (
	DefaultCacheSize     = 10000
	DefaultCheckInterval = 30 * time.Second
)

// Config selects the databases and how the client address is chosen.
type Config struct {
	// City is the path of a GeoIP2 or GeoLite2 City database.
	City string `yaml:"city"`
	// ASN is the path of a GeoLite2 ASN database (optional).
	ASN string `yaml:"asn"`
	// CacheSize is how many addresses are remembered, found or not
	// (default 10000).
	CacheSize int `yaml:"cache_size"`
	// TrustedProxies are the ranges (CIDR, or single addresses) of the load
	// balancers and proxies in front of nginx; X-Forwarded-For entries in
	// them are passed over. Unset means DefaultTrustedProxies; an empty
	// list trusts none.
	TrustedProxies []string `yaml:"trusted_proxies"`
	// Watch reloads a database when its file changes (default true).
	Watch *bool `yaml:"watch"`
	// CheckInterval is how often the files are checked for changes, as a
	// safety net besides filesystem notifications (default 30s).
	CheckInterval time.Duration `yaml:"check_interval"`
}

// DefaultTrustedProxies returns the ranges trusted when none are
// configured: private, loopback and link-local ranges.
func DefaultTrustedProxies() []string {
	return []string{
		"10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7",
		"127.0.0.0/8", "::1/128",
		"169.254.0.0/16", "fe80::/10",
	}
}

// Enabled reports whether any database is configured.
func (c *Config) Enabled() bool { return c.City != "" || c.ASN != "" }

// SetDefaults fills unset values.
func (c *Config) SetDefaults() {
	if c.CacheSize == 0 {
		c.CacheSize = DefaultCacheSize
	}
	if c.TrustedProxies == nil {
		c.TrustedProxies = DefaultTrustedProxies()
	}
	if c.Watch == nil {
		watch := true
		c.Watch = &watch
	}
	if c.CheckInterval == 0 {
		c.CheckInterval = DefaultCheckInterval
	}
}

// Validate checks the configuration found under key (normally "geoip");
// errors name the offending key, e.g. geoip.trusted_proxies[2]. Call
// SetDefaults first. A configuration without databases is valid: GeoIP is
// off.
func (c *Config) Validate(key string) error {
	// The trusted proxies restore the client also without databases.
	if _, err := ParsePrefixes(c.TrustedProxies, config.Join(key, "trusted_proxies")); err != nil {
		return err
	}
	if !c.Enabled() {
		return nil
	}
	for _, db := range []struct{ name, path string }{{cityDB, c.City}, {asnDB, c.ASN}} {
		if err := checkFile(config.Join(key, db.name), db.path); err != nil {
			return err
		}
		if err := checkDatabase(config.Join(key, db.name), db.name, db.path); err != nil {
			return err
		}
	}
	if c.CacheSize < 0 {
		return config.Errorf(config.Join(key, "cache_size"), "must not be negative, got %d", c.CacheSize)
	}
	if c.CheckInterval < time.Second {
		return config.Errorf(config.Join(key, "check_interval"), "must be at least 1s, got %s", c.CheckInterval)
	}
	return nil
}

// checkFile reports a database path that cannot be read, under key.
func checkFile(key, path string) error {
	if path == "" {
		return nil
	}
	fi, err := os.Stat(path)
	var pe *os.PathError
	switch {
	case errors.As(err, &pe):
		return config.Errorf(key, "cannot read %s: %v", path, pe.Err)
	case err != nil:
		return config.Errorf(key, "cannot read %s: %v", path, err)
	case fi.IsDir():
		return config.Errorf(key, "%s is a directory; give the path of the .mmdb file", path)
	}
	return nil
}

// checkDatabase opens a database file to check that it is a MaxMind
// database of the kind its key asks for, as the aggregator does at start.
func checkDatabase(key, name, path string) error {
	if path == "" {
		return nil
	}
	r, err := maxminddb.Open(path)
	if err != nil {
		return config.Errorf(key, "%s is not a MaxMind database: %v", path, err)
	}
	defer r.Close()
	if err := checkType(name, r.Metadata.DatabaseType); err != nil {
		return config.Errorf(key, "%s: %v", path, err)
	}
	return nil
}

// ParsePrefixes parses CIDR ranges, or single addresses taken as one-address
// ranges. An error names the entry as key[i].
func ParsePrefixes(list []string, key string) ([]netip.Prefix, error) {
	out := make([]netip.Prefix, 0, len(list))
	for i, s := range list {
		p, err := parsePrefix(s)
		if err != nil {
			return nil, config.Errorf(config.Index(key, i), "%q is not a CIDR; use a form like 10.0.0.0/8", s)
		}
		out = append(out, p)
	}
	return out, nil
}

func parsePrefix(s string) (netip.Prefix, error) {
	if p, err := netip.ParsePrefix(s); err == nil {
		if p.Addr().Is4In6() && p.Bits() >= 96 {
			// ::ffff:10.0.0.0/104 would never match: addresses are unmapped.
			return netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96).Masked(), nil
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("parsing %q: %w", s, err)
	}
	a = a.Unmap().WithZone("")
	return netip.PrefixFrom(a, a.BitLen()), nil
}
