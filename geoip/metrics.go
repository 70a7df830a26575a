package geoip

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the Enricher's Prometheus metrics, with the label values the
// hot path uses resolved once.
type metrics struct {
	lookups   *prometheus.CounterVec
	cacheHits prometheus.Counter
	buildTime *prometheus.GaugeVec
	reloads   *prometheus.CounterVec

	hits, misses, skipped, errors prometheus.Counter
	reloadOK, reloadErrors        prometheus.Counter
}

func newMetrics() *metrics {
	m := &metrics{
		lookups: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_geoip_lookups_total",
			Help: "GeoIP lookups by result: hit (found), miss (not in the databases), skipped (private or reserved address), error.",
		}, []string{"result"}),
		cacheHits: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sluice_geoip_cache_hits_total",
			Help: "GeoIP lookups answered from the cache.",
		}),
		buildTime: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "sluice_geoip_database_build_timestamp_seconds",
			Help: "Build time of the GeoIP database in use, from its metadata, by database (city, asn).",
		}, []string{"database"}),
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_geoip_reloads_total",
			Help: "GeoIP database reloads after a file change, by result (ok, error).",
		}, []string{"result"}),
	}
	m.hits = m.lookups.WithLabelValues("hit")
	m.misses = m.lookups.WithLabelValues("miss")
	m.skipped = m.lookups.WithLabelValues("skipped")
	m.errors = m.lookups.WithLabelValues("error")
	m.reloadOK = m.reloads.WithLabelValues("ok")
	m.reloadErrors = m.reloads.WithLabelValues("error")
	return m
}

// register registers the metrics on reg; nil reg registers nothing.
func (m *metrics) register(reg prometheus.Registerer) error {
	if reg == nil {
		return nil
	}
	for _, c := range []prometheus.Collector{m.lookups, m.cacheHits, m.buildTime, m.reloads} {
		if err := reg.Register(c); err != nil {
			return fmt.Errorf("geoip: registering metrics: %w", err)
		}
	}
	return nil
}
