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
go build -o bin/apidemo ./deploy/local/apidemo
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
echo "== requests through a real nginx in front of two services (deploy/local/apidemo)"
bin/apidemo -logs "$SLUICE_DEMO_DIR/logs" -scale 5
api=("$SLUICE_DEMO_DIR"/logs/services/prod/acme/{orders,users}/app.log)
# The aggregator's pipeline drops nginx's health checks.
n=$(( $(cat "${api[@]}" | wc -l) + $(grep -vc '"GET /healthz ' "$SLUICE_DEMO_DIR/logs/nginx/access.log") ))
total=$((total + n))
printf '   %6d nginx and service lines of those requests\n' "$n"
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
echo
echo "== API performance per service and route (an aggregation over the nginx lines; the service from the lines of the same request id)"
ES="$ES" python3 - <<'PY'
import json, os, urllib.request
es = os.environ["ES"]
def search(index, body):
    req = urllib.request.Request(f"{es}/{index}/_search", json.dumps(body).encode(), {"Content-Type": "application/json"})
    return json.load(urllib.request.urlopen(req))
routes = search("sluice-demo-nginx-*", {"size": 0, "aggs": {"routes": {"terms": {"field": "http.route", "size": 50}, "aggs": {
    "errors": {"filter": {"range": {"http.response.status_code": {"gte": 500}}}},
    "p95": {"percentiles": {"field": "nginx.request_time", "percents": [95]}},
    "one": {"top_hits": {"size": 1, "_source": ["http.request.id"]}}}}}})
print(f"   {'service':10} {'route':28} {'requests':>8} {'errors':>6} {'p95 ms':>8}")
for b in routes["aggregations"]["routes"]["buckets"]:
    rid = b["one"]["hits"]["hits"][0]["_source"].get("http.request.id")
    svc = search("sluice-demo-service-*", {"size": 1, "query": {"term": {"http.request.id": rid}}})["hits"]["hits"]
    name = svc[0]["_source"].get("service.name") if svc else "(nginx)"
    p95 = list(b["p95"]["values"].values())[0] * 1000
    print(f"   {name:10} {b['key']:28} {b['doc_count']:8} {b['errors']['doc_count']:6} {p95:8.1f}")
retried = search("sluice-demo-nginx-*", {"size": 1, "query": {"bool": {"filter": [
    {"term": {"nginx.upstream_tries": 2}}, {"exists": {"field": "trace.id"}}]}}})["hits"]["hits"]
if retried:
    a = retried[0]["_source"]
    rid = a["http.request.id"]
    print(f"\n-- one request, http.request.id {rid} (trace.id {a.get('trace.id')}), everywhere:")
    print(f"   nginx   {a['@timestamp']} {a['http.request.method']} {a['url.original']} -> {a['http.response.status_code']}"
          f" in {a['nginx.request_time']}s, tried {a['nginx.upstream_addr']} ({a['nginx.upstream_attempts']}), nginx's own {a.get('nginx.own_time')}s")
    lines = search("sluice-demo-service-*", {"size": 10, "sort": [{"@timestamp": "asc"}], "query": {"term": {"http.request.id": rid}}})
    for h in lines["hits"]["hits"]:
        d = h["_source"]
        print(f"   {d['service.name']:7} {d['@timestamp']} {d['log.level']:5} {d['message']} (span.id {d.get('span.id')})")
PY

cat <<EOT

== try it yourself
  curl -s '$ES/_cat/indices/sluice-demo-*?v'
  curl -s '$ES/sluice-demo-service-*/_search?q=log.level:error&size=3&pretty'
  curl -s '$ES/sluice-demo-nginx-*/_search?size=0&pretty' -H 'Content-Type: application/json' \\
       -d '{"aggs":{"status":{"terms":{"field":"http.response.status_code"}}}}'
  curl -s '$ES/sluice-demo-*/_search?q=http.request.id:client-0&pretty'   # one request, nginx and service lines
  curl -s localhost:9600/metrics | grep ^sluice_   # shipper metrics (while running)
EOT
