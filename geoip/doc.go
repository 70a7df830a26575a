// Package geoip enriches documents with the location and network of their
// client address, from MaxMind databases (GeoIP2/GeoLite2 City, and
// optionally GeoLite2 ASN), into flat Elastic Common Schema fields:
// source.geo.location ({"lat", "lon"}), source.geo.country_iso_code,
// source.geo.country_name, source.geo.region_name,
// source.geo.region_iso_code, source.geo.city_name,
// source.geo.continent_name, source.geo.continent_code,
// source.geo.postal_code, source.geo.timezone, source.as.number and
// source.as.organization.name. Only fields with values are written, with
// English names.
//
// # Which address
//
// [ClientIP] picks the address by nginx's real_ip_recursive rule: from the
// connecting peer (source.ip as the parser wrote it), X-Forwarded-For is
// walked from the right past trusted proxies, and the first untrusted
// address is the client. [Restore] writes it to source.ip and
// source.address, and moves the peer to client.ip and client.address, the
// way Filebeat's nginx module does. Private, loopback,
// link-local, multicast, unspecified, shared (100.64.0.0/10), documentation,
// benchmarking and other reserved addresses are never looked up.
//
// # Databases and reloads
//
// Databases are read into memory rather than memory-mapped. A lookup can
// then never touch unmapped memory: a reload swaps the databases with an
// atomic pointer while lookups go on, and the previous copy is freed once
// the garbage collector finds that no lookup holds it. A database
// rewritten in place (instead of replaced by rename) cannot crash the
// process with SIGBUS either; it is simply reloaded once its size or
// modification time settles. The cost is memory: the databases' size
// (GeoLite2 City is about 60 MB), twice that for the moment of a reload.
// That memory is anonymous memory outside the Go heap (on Linux and
// macOS), so that it does not also raise the collector's heap goal: in the
// heap, with GOGC=100, 60 MB of database lets another 60 MB of garbage
// accumulate before a collection.
//
// [Enricher.Run] reloads a database when its file changes: it watches the
// directories with fsnotify (updaters replace files by rename, and
// Kubernetes swaps a symlink) and also checks the files periodically. A
// file that fails to load leaves the previous database in use. Each reload
// starts an empty cache.
//
// # Metrics
//
// Registered on the registerer given to [Open]:
//
//	sluice_geoip_lookups_total{result="hit|miss|skipped|error"}
//	sluice_geoip_cache_hits_total
//	sluice_geoip_database_build_timestamp_seconds{database="city|asn"}
//	sluice_geoip_reloads_total{result="ok|error"}
//
// hit means the address was found, miss that it is not in the databases,
// skipped that it is private or reserved; cached answers count too.
package geoip
