package geoip

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	lookups   *prometheus.CounterVec
	cacheHits prometheus.Counter
	buildTime *prometheus.GaugeVec
	reloads   *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		lookups:   prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sluice_geoip_lookups_total", Help: "GeoIP lookups by result: hit (found), miss (not in the database), skipped (private or reserved), error."}, []string{"result"}),
		cacheHits: prometheus.NewCounter(prometheus.CounterOpts{Name: "sluice_geoip_cache_hits_total", Help: "GeoIP lookups answered from the cache."}),
		buildTime: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "sluice_geoip_database_build_timestamp_seconds", Help: "Build time of the loaded database, by database (city, asn)."}, []string{"database"}),
		reloads:   prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sluice_geoip_reloads_total", Help: "Database reloads after a file change, by result."}, []string{"result"}),
	}
	reg.MustRegister(m.lookups, m.cacheHits, m.buildTime, m.reloads)
	return m
}
