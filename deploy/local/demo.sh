#!/usr/bin/env bash
# make demo: write realistic service and nginx logs, ship them through the
# local Kafka into the local Elasticsearch with bin/sluice, and show what
# arrived. Every count printed is read back from Elasticsearch.
set -euo pipefail
cd "$(dirname "$0")/../.."
ES=${ELASTICSEARCH_URL:-http://127.0.0.1:9200}
export SLUICE_DEMO_DIR=${SLUICE_DEMO_DIR:-$PWD/.local/demo}

# Start from a clean slate: demo logs, registry, indices and Kafka group.
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT
rm -rf "$SLUICE_DEMO_DIR"
curl -s -XDELETE "$ES/sluice-demo-*?ignore_unavailable=true&allow_no_indices=true" >/dev/null
mkdir -p "$SLUICE_DEMO_DIR/logs/nginx"

go build -o bin/loggen ./benchmarks/loggen
export SLUICE_GEOIP_CITY=${SLUICE_GEOIP_CITY:-$(deploy/local/fetch-geoip.sh)}
echo "== writing sample logs under $SLUICE_DEMO_DIR/logs"
total=0
write() { # kind n dir service seed
  mkdir -p "$3"
  bin/loggen -kind "$1" -n "$2" -service "$4" -seed "$5" -id-prefix "$4-" >>"$3/$( [ "$1" = nginx ] && echo access || echo app).log"
  total=$((total + $2))
  printf '   %6d %s lines  %s\n' "$2" "$1" "$3"
}
write service 2000 "$SLUICE_DEMO_DIR/logs/services/prod/acme/checkout" checkout 1
write service 1500 "$SLUICE_DEMO_DIR/logs/services/prod/acme/payments" payments 2
write service 800 "$SLUICE_DEMO_DIR/logs/services/staging/globex/search" search 3
write nginx 3000 "$SLUICE_DEMO_DIR/logs/nginx" edge 4
echo 'not json: a stack trace line a service printed raw' >>"$SLUICE_DEMO_DIR/logs/services/prod/acme/checkout/app.log"
total=$((total + 1))

# Each run has its own topics and consumer group, so earlier runs' records
# are not indexed again.
export SLUICE_DEMO_RUN=$(date +%s)

echo "== starting sluice ship and sluice aggregate (logs in $SLUICE_DEMO_DIR/*.log)"
bin/sluice ship -c deploy/local/shipper.yaml >"$SLUICE_DEMO_DIR/shipper.log" 2>&1 & pids+=($!)
bin/sluice aggregate -c deploy/local/aggregator.yaml >"$SLUICE_DEMO_DIR/aggregator.log" 2>&1 & pids+=($!)

count() {
  curl -s -XPOST "$ES/sluice-demo-*/_refresh?ignore_unavailable=true&allow_no_indices=true" >/dev/null
  curl -s "$ES/sluice-demo-*/_count?ignore_unavailable=true&allow_no_indices=true" | python3 -c 'import json,sys; print(json.load(sys.stdin).get("count",0))'
}
echo "== waiting for $total documents in Elasticsearch"
deadline=$((SECONDS + 180))
while n=$(count); [ "$n" -lt "$total" ]; do
  for p in "${pids[@]}"; do
    kill -0 "$p" 2>/dev/null || { echo "demo: a sluice process exited early" >&2; tail -n 20 "$SLUICE_DEMO_DIR"/*.log >&2; exit 1; }
  done
  if [ $SECONDS -gt $deadline ]; then
    echo "demo: only $n of $total documents arrived in 180s" >&2
    tail -n 20 "$SLUICE_DEMO_DIR/shipper.log" "$SLUICE_DEMO_DIR/aggregator.log" >&2
    exit 1
  fi
  printf '   %d/%d\r' "$n" "$total"; sleep 1
done
echo "   $n/$total documents indexed"
sleep 2
n=$(count)
[ "$n" -eq "$total" ] || { echo "demo: $n documents for $total lines" >&2; exit 1; }

echo
echo "== per index (counts from Elasticsearch)"
curl -s "$ES/_cat/indices/sluice-demo-*?h=index,docs.count&s=index&v"
for idx in $(curl -s "$ES/_cat/indices/sluice-demo-*?h=index&s=index"); do
  echo
  echo "-- one document from $idx"
  curl -s "$ES/$idx/_search?size=1&sort=log.offset:asc" | python3 -c 'import json,sys; h=json.load(sys.stdin)["hits"]["hits"][0]; print(json.dumps(h["_source"], indent=2, sort_keys=True))'
done
cat <<EOT

== try it yourself
  curl -s '$ES/_cat/indices/sluice-demo-*?v'
  curl -s '$ES/sluice-demo-service-*/_search?q=log.level:error&size=3&pretty'
  curl -s '$ES/sluice-demo-nginx-*/_search?size=0&pretty' -H 'Content-Type: application/json' \\
       -d '{"aggs":{"status":{"terms":{"field":"http.response.status_code"}}}}'
  curl -s localhost:9600/metrics | grep ^sluice_   # shipper metrics (while running)
EOT
