package geoip

import (
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/oschwald/maxminddb-golang/v2"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
)

// Database names, as in the configuration and the metrics' labels.
const (
	cityDB = "city"
	asnDB  = "asn"
)

// Enricher looks addresses up in the configured databases. It is safe for
// concurrent use, including while Run reloads the databases.
type Enricher struct {
	cfg     Config
	watch   bool
	trusted []netip.Prefix
	keys    *fieldKeys // source.* document keys
	log     *zap.Logger
	m       *metrics

	// gen is the databases and cache in use; nil once closed.
	gen       atomic.Pointer[generation]
	done      chan struct{}
	closeOnce sync.Once
}

// generation is one set of loaded databases with its cache. It never
// changes: a reload builds a new one.
type generation struct {
	city, asn *database // nil when not configured
	cache     *cache
}

// database is one loaded database file.
type database struct {
	name   string // cityDB or asnDB
	path   string
	reader *maxminddb.Reader
	file   os.FileInfo // the file as read
}

// Open loads the configured databases and registers the metrics on reg
// (nil: not registered). Unset configuration values take their defaults. A
// nil log logs nothing. Call Run to reload the databases when they change,
// and Close when done.
func Open(cfg Config, reg prometheus.Registerer, log *zap.Logger) (*Enricher, error) {
	cfg.SetDefaults()
	if !cfg.Enabled() {
		return nil, errors.New("geoip: no database configured; set geoip.city or geoip.asn")
	}
	if err := cfg.Validate("geoip"); err != nil {
		return nil, err
	}
	trusted, err := ParsePrefixes(cfg.TrustedProxies, "geoip.trusted_proxies")
	if err != nil {
		return nil, err
	}
	if log == nil {
		log = zap.NewNop()
	}
	g, err := loadGeneration(cfg)
	if err != nil {
		return nil, err
	}
	e := &Enricher{cfg: cfg, watch: *cfg.Watch, trusted: trusted, keys: keysFor("source"),
		log: log, m: newMetrics(), done: make(chan struct{})}
	if err := e.m.register(reg); err != nil {
		return nil, err
	}
	for _, d := range []*database{g.city, g.asn} {
		e.loaded(d)
	}
	e.gen.Store(g)
	return e, nil
}

// Close stops Run and releases the databases. Lookups after Close find
// nothing. The memory is freed once lookups still under way are done.
func (e *Enricher) Close() error {
	e.closeOnce.Do(func() {
		close(e.done)
		e.gen.Store(nil)
	})
	return nil
}

// loadGeneration loads the configured databases.
func loadGeneration(cfg Config) (*generation, error) {
	g := &generation{cache: newCache(cfg.CacheSize)}
	var err error
	if cfg.City != "" {
		if g.city, err = loadDatabase(cityDB, cfg.City); err != nil {
			return nil, err
		}
	}
	if cfg.ASN != "" {
		if g.asn, err = loadDatabase(asnDB, cfg.ASN); err != nil {
			return nil, err
		}
	}
	return g, nil
}

// loadDatabase reads the database at path into memory outside the Go heap
// (offHeap). Reading rather than memory-mapping the file makes swapping
// databases under concurrent lookups safe, and a file rewritten in place
// harmless (see the package documentation).
func loadDatabase(name, path string) (*database, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("geoip.%s: %w", name, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("geoip.%s: %w", name, err)
	}
	data, free, err := offHeap(int(fi.Size()))
	if err != nil {
		return nil, fmt.Errorf("geoip.%s: %w", name, err)
	}
	d, err := openDatabase(name, path, f, fi, data)
	if err != nil {
		free()
		return nil, err
	}
	// The memory goes back once no lookup can reach the database: a
	// replaced one is dropped by the enricher, and lookups keep it alive
	// while they decode (runtime.KeepAlive in city and asn). Decoded values
	// are copies, never views of the memory.
	runtime.AddCleanup(d, func(free func()) { free() }, free)
	return d, nil
}

// openDatabase reads f into data and opens it.
func openDatabase(name, path string, f *os.File, fi os.FileInfo, data []byte) (*database, error) {
	if _, err := io.ReadFull(f, data); err != nil {
		return nil, fmt.Errorf("geoip.%s: reading %s: %w", name, path, err)
	}
	r, err := maxminddb.OpenBytes(data)
	if err != nil {
		return nil, fmt.Errorf("geoip.%s: %s is not a MaxMind database: %w", name, path, err)
	}
	if err := checkType(name, r.Metadata.DatabaseType); err != nil {
		return nil, fmt.Errorf("geoip.%s: %s: %w", name, path, err)
	}
	d := &database{name: name, path: path, reader: r, file: fi}
	if err := d.probe(); err != nil {
		return nil, fmt.Errorf("geoip.%s: %s is damaged: %w", name, path, err)
	}
	return d, nil
}

// probe decodes a few well-known addresses, a cheap check that a new file
// is usable before it replaces a working one. (Reader.Verify checks all
// of it, but takes seconds on GeoLite2 City.)
func (d *database) probe() error {
	for _, s := range []string{"1.1.1.1", "8.8.8.8", "81.2.69.142", "2001:4860:4860::8888"} {
		var r Result
		addr := netip.MustParseAddr(s)
		var err error
		if d.name == cityDB {
			err = d.city(addr, &r)
		} else {
			err = d.asn(addr, &r)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// checkType catches a City database given as ASN database or the other way
// round. Other City-like databases (Enterprise, Country, DB-IP) pass.
func checkType(name, dbType string) error {
	isASN := strings.Contains(dbType, "ASN") || strings.Contains(dbType, "ISP")
	switch {
	case name == cityDB && isASN:
		return fmt.Errorf("is a %s database, not a City database; give it as geoip.asn", dbType)
	case name == asnDB && !isASN:
		return fmt.Errorf("is a %s database, not an ASN database", dbType)
	}
	return nil
}

// loaded records a database taken into use.
func (e *Enricher) loaded(d *database) {
	if d == nil {
		return
	}
	md := d.reader.Metadata
	e.m.buildTime.WithLabelValues(d.name).Set(float64(md.BuildEpoch))
	e.log.Info("geoip database loaded", zap.String("database", d.name), zap.String("path", d.path),
		zap.String("type", md.DatabaseType), zap.Time("built", md.BuildTime()))
}
