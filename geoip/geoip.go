// Package geoip enriches client addresses with their location and network,
// from MaxMind databases (GeoIP2/GeoLite2 City, optionally ASN), into
// Elastic Common Schema fields under source.geo.* and source.as.*.
//
// Databases are read into memory (not memory-mapped), so a reload can swap
// the reader atomically while lookups go on: the old one is freed by the
// garbage collector once no lookup holds it, never unmapped under one.
package geoip

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/oschwald/maxminddb-golang/v2"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/sluicelog/sluice/internal/config"
)

// Config selects the databases and how client addresses are chosen.
type Config struct {
	// City is the path of a GeoIP2 or GeoLite2 City database.
	City string `yaml:"city"`
	// ASN is the path of a GeoLite2 ASN database (optional).
	ASN string `yaml:"asn"`
	// CacheSize is how many addresses are remembered (default 10000).
	CacheSize int `yaml:"cache_size"`
	// TrustedProxies are the ranges of the load balancers and proxies in
	// front of nginx; X-Forwarded-For entries from them are skipped.
	// Default: private, loopback and link-local ranges.
	TrustedProxies []string `yaml:"trusted_proxies"`
	// CheckInterval is how often the database files are checked for
	// changes, besides filesystem notifications (default 30s).
	CheckInterval time.Duration `yaml:"check_interval"`
}

// DefaultTrustedProxies are the ranges trusted when none are configured.
var DefaultTrustedProxies = []string{"10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "127.0.0.0/8", "::1/128", "fc00::/7", "fe80::/10", "169.254.0.0/16"}

// SetDefaults fills unset values.
func (c *Config) SetDefaults() {
	if c.CacheSize == 0 {
		c.CacheSize = 10000
	}
	if c.TrustedProxies == nil {
		c.TrustedProxies = DefaultTrustedProxies
	}
	if c.CheckInterval == 0 {
		c.CheckInterval = 30 * time.Second
	}
}

// Validate checks the configuration under key (e.g. "geoip").
func (c *Config) Validate(key string) error {
	if c.City == "" && c.ASN == "" {
		return nil
	}
	for name, path := range map[string]string{"city": c.City, "asn": c.ASN} {
		if path == "" {
			continue
		}
		if _, err := os.Stat(path); err != nil {
			return config.Errorf(config.Join(key, name), "cannot read %s: %v", path, errors.Unwrap(err))
		}
	}
	if c.CacheSize < 0 {
		return config.Errorf(config.Join(key, "cache_size"), "must not be negative")
	}
	if _, err := ParsePrefixes(c.TrustedProxies, config.Join(key, "trusted_proxies")); err != nil {
		return err
	}
	if c.CheckInterval < time.Second {
		return config.Errorf(config.Join(key, "check_interval"), "must be at least 1s")
	}
	return nil
}

// Enabled reports whether any database is configured.
func (c *Config) Enabled() bool { return c.City != "" || c.ASN != "" }

// ParsePrefixes parses CIDR ranges (or single addresses); errors name
// key[i].
func ParsePrefixes(list []string, key string) ([]netip.Prefix, error) {
	out := make([]netip.Prefix, 0, len(list))
	for i, s := range list {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			a, aErr := netip.ParseAddr(s)
			if aErr != nil {
				return nil, config.Errorf(config.Index(key, i), "%q is not a CIDR range; write it like 10.0.0.0/8", s)
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

// databases is one loaded set of readers.
type databases struct {
	city, asn *maxminddb.Reader
	cache     *cache
}

// Enricher looks up addresses; safe for concurrent use.
type Enricher struct {
	cfg     Config
	trusted []netip.Prefix
	log     *zap.Logger
	m       *metrics
	dbs     atomic.Pointer[databases]
	stamps  map[string]fileStamp
}

type fileStamp struct {
	size  int64
	mtime time.Time
}

// Open loads the configured databases.
func Open(cfg Config, reg prometheus.Registerer, log *zap.Logger) (*Enricher, error) {
	cfg.SetDefaults()
	if err := cfg.Validate("geoip"); err != nil {
		return nil, err
	}
	trusted, _ := ParsePrefixes(cfg.TrustedProxies, "geoip.trusted_proxies") // validated
	e := &Enricher{cfg: cfg, trusted: trusted, log: log, m: newMetrics(reg), stamps: map[string]fileStamp{}}
	dbs, err := e.load()
	if err != nil {
		return nil, err
	}
	e.dbs.Store(dbs)
	return e, nil
}

// Trusted returns the trusted proxy ranges.
func (e *Enricher) Trusted() []netip.Prefix { return e.trusted }

func (e *Enricher) load() (*databases, error) {
	dbs := &databases{cache: newCache(e.cfg.CacheSize)}
	var err error
	if e.cfg.City != "" {
		if dbs.city, err = e.loadOne("city", e.cfg.City); err != nil {
			return nil, err
		}
	}
	if e.cfg.ASN != "" {
		if dbs.asn, err = e.loadOne("asn", e.cfg.ASN); err != nil {
			return nil, err
		}
	}
	return dbs, nil
}

func (e *Enricher) loadOne(name, path string) (*maxminddb.Reader, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("geoip.%s: %w", name, err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("geoip.%s: %w", name, err)
	}
	r, err := maxminddb.OpenBytes(data)
	if err != nil {
		return nil, fmt.Errorf("geoip.%s: %s is not a MaxMind database: %w", name, path, err)
	}
	e.stamps[path] = fileStamp{size: fi.Size(), mtime: fi.ModTime()}
	e.m.buildTime.WithLabelValues(name).Set(float64(r.Metadata.BuildEpoch))
	e.log.Info("geoip database loaded", zap.String("database", name), zap.String("path", path),
		zap.String("type", r.Metadata.DatabaseType), zap.Time("built", time.Unix(int64(r.Metadata.BuildEpoch), 0)))
	return r, nil
}

// Run reloads the databases when their files change, until ctx is done.
// A file that fails to load leaves the previous database in use.
func (e *Enricher) Run(ctx context.Context) {
	w, err := fsnotify.NewWatcher()
	var events <-chan fsnotify.Event
	if err == nil {
		defer w.Close()
		for path := range e.stamps {
			_ = w.Add(filepath.Dir(path)) // databases are usually replaced by rename
		}
		events = w.Events
	}
	t := time.NewTicker(e.cfg.CheckInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-events:
			// Let a writer finish before reading; several events coalesce.
			time.Sleep(200 * time.Millisecond)
			e.reloadIfChanged()
		case <-t.C:
			e.reloadIfChanged()
		}
	}
}

func (e *Enricher) reloadIfChanged() {
	changed := false
	for path, st := range e.stamps {
		fi, err := os.Stat(path)
		if err == nil && (fi.Size() != st.size || !fi.ModTime().Equal(st.mtime)) {
			changed = true
		}
	}
	if !changed {
		return
	}
	dbs, err := e.load()
	if err != nil {
		e.m.reloads.WithLabelValues("error").Inc()
		e.log.Error("geoip reload failed; keeping the previous database", zap.Error(err))
		return
	}
	e.dbs.Store(dbs)
	e.m.reloads.WithLabelValues("ok").Inc()
}
