#!/usr/bin/env bash
# Whole-process benchmark of the aggregator: pre-loads Kafka with realistic
# nginx and service lines (2 million by default, half each) with
# `sluice ship`, then measures `sluice aggregate` (parse, GeoIP with the real
# GeoLite2 City, index routing, bulk into the real Elasticsearch) until
# Elasticsearch holds every document. Then, in the same run, the ceiling:
# the very same documents (dumped from Elasticsearch, so identical) as
# pre-built NDJSON bulk bodies of the aggregator's size, posted to _bulk with
# curl, as many requests in flight as the aggregator has workers.
# BENCH_ROUNDS (default 3) runs the two that many times, one after the
# other, and prints each round's ratio and their median.
#
# BENCH_COMPARE="old=/tmp/sluice-old new=bin/sluice" compares builds
# instead: each round runs each binary in turn (alternating, on the same
# pre-loaded topics, each from a fresh consumer group into empty indices),
# (every other round in reverse order) without the plain bulk load, and
# prints each one's wall time as a ratio to the first one's, per round,
# and their medians. BENCH_PORT (default
# 9697) and the port below it are the aggregator's and the pre-load's
# metrics addresses, for runs beside another one.
#
#   benchmarks/aggregate.sh [LINES]       (make bench runs it)
set -euo pipefail
cd "$(dirname "$0")/.."
lines=${1:-${BENCH_AGG_LINES:-2000000}}
half=$((lines / 2))
lines=$((half * 2))
out=.local/bench
es=http://127.0.0.1:9200
# The plain bulk load's requests: as many in flight as the aggregator's
# default workers, of its largest default bulk_bytes (the aggregator's own
# derive from memory_limit, its default).
workers=4
port=${BENCH_PORT:-9697}
bulk_bytes=$((5 * 1024 * 1024))
mkdir -p "$out"
[ -x /usr/bin/time ] || apt-get install -y -qq time >/dev/null
deploy/local/stack.sh up
city=$(deploy/local/fetch-geoip.sh)
make -s build
go build -o bin/loggen ./benchmarks/loggen
run=$(date +%s)
dir=$out/agg-$run
mkdir -p "$dir/logs"
trap 'rm -rf "$dir/logs" "$dir/bulk"' EXIT

bin/loggen -kind service -n "$half" -seed 11 -service checkout >"$dir/logs/service.log"
bin/loggen -kind nginx -n "$half" -seed 12 >"$dir/logs/nginx.log"
bytes=$(cat "$dir"/logs/*.log | wc -c)

# 1. Pre-load Kafka (not measured).
cat >"$dir/ship.yaml" <<YAML
node: bench
registry: $PWD/$dir/registry
inputs:
  - type: service
    paths: ["$PWD/$dir/logs/service.log"]
    fields: {environment: bench}
  - type: nginx
    paths: ["$PWD/$dir/logs/nginx.log"]
    fields: {service: edge, environment: bench}
kafka:
  brokers: ["127.0.0.1:9092"]
  topic: bench-agg-$run-{type}
  partitions: 6
http:
  listen: 127.0.0.1:$((port + 1))
log:
  level: warn
YAML
echo "bench: pre-loading Kafka with $lines lines ($((bytes / 1048576)) MiB)"
bin/sluice ship -c "$dir/ship.yaml" &
ship=$!
until curl -s 127.0.0.1:$((port + 1))/metrics 2>/dev/null |
  awk -v n="$lines" '/^sluice_shipper_lines_acked_total/ {s += $2} END {exit !(s >= n)}'; do
  sleep 0.5
done
kill -TERM "$ship"
wait "$ship"
# The pre-load's writes reach the disk now, not during the first round.
sync

# measure NAME CMD...: runs CMD under GNU time, prints and appends
# "name wall cpu rss docs/s".
measure() {
  local name=$1
  shift
  /usr/bin/time -f '%e %U %S %M' -o "$dir/$name.time" "$@"
  read -r wall user sys rss <"$dir/$name.time"
  printf '%-10s %8.2f s wall  %8.2f s cpu  %6d MiB peak RSS  %9.0f docs/s\n' \
    "$name" "$wall" "$(echo "$user + $sys" | bc)" $((rss / 1024)) "$(echo "$lines / $wall" | bc -l)" |
    tee -a "$out/aggregate-$run.txt"
}

# count: documents in the run's indices.
count() {
  curl -s "$es/bench-$run-*/_count" | sed -n 's/.*"count":\([0-9]*\).*/\1/p'
}
wait_all() {
  until [ "$(count)" = "$lines" ]; do sleep 0.25; done
}
export -f count wait_all
export es run lines workers

# 2. The aggregator, from a fresh consumer group, until Elasticsearch holds
# every document (polled with _count; the 1 s refresh interval is on both
# sides).
agg_config() {
  cat >"$dir/aggregate.yaml" <<YAML
kafka:
  brokers: ["127.0.0.1:9092"]
  group: bench-$run-$round
  topics: [bench-agg-$run-service, bench-agg-$run-nginx]
  dead_letter_topic: bench-agg-$run-dead
  max_poll_records: ${BENCH_MAX_POLL:-5000}
elasticsearch:
  addresses: ["$es"]
  index: bench-$run-{type}-{service}-{environment}
  template_name: bench-$run
geoip:
  city: $city
http:
  listen: 127.0.0.1:$port
log:
  level: warn
YAML
}
agg_run() {
  "${agg_bin:-bin/sluice}" aggregate -c "$dir/aggregate.yaml" &
  local pid=$!
  wait_all
  kill -TERM "$pid"
  wait "$pid"
}
export -f agg_run
export dir
bulk_run() {
  ls "$dir"/bulk/*.ndjson | xargs -P "$workers" -I{} curl -s -o /dev/null -H 'Content-Type: application/x-ndjson' \
    --data-binary @{} "$es/_bulk"
  wait_all
}
export -f bulk_run

# dump_bulk: the run's documents, dumped from Elasticsearch (so identical to
# what the aggregator indexed), as NDJSON bulk bodies of bulk_bytes.
dump_bulk() {
  echo "bench: dumping the documents for the plain bulk load (not measured)"
  mkdir -p "$dir/bulk"
  python3 - "$es" "bench-$run-*" "$dir/bulk" "$bulk_bytes" <<'PY'
import json, sys, urllib.request
es, pattern, dest, limit = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
def call(method, path, body=None):
    req = urllib.request.Request(es + path, method=method, data=json.dumps(body).encode() if body else None,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req) as r:
        return json.load(r)
page = call("POST", f"/{pattern}/_search?scroll=2m", {"size": 10000, "sort": ["_doc"]})
n, part, size, f = 0, 0, 0, None
while page["hits"]["hits"]:
    for h in page["hits"]["hits"]:
        line = (json.dumps({"index": {"_index": h["_index"], "_id": h["_id"]}}) + "\n" +
                json.dumps(h["_source"], separators=(",", ":")) + "\n").encode()
        if f is None or size + len(line) > limit:
            if f:
                f.close()
            part += 1
            f, size = open(f"{dest}/{part:06d}.ndjson", "wb"), 0
        f.write(line)
        size += len(line)
        n += 1
    page = call("POST", "/_search/scroll", {"scroll": "2m", "scroll_id": page["_scroll_id"]})
f.close()
print(f"bench: {n} documents in {part} bulk bodies", file=sys.stderr)
PY
}

# 3a. BENCH_COMPARE: builds against each other, alternating within each
# round.
if [ -n "${BENCH_COMPARE:-}" ]; then
  read -ra variants <<<"$BENCH_COMPARE"
  declare -A walls
  for r in $(seq "${BENCH_ROUNDS:-3}"); do
    echo "round $r ($(uptime | sed 's/.*load/load/'))" | tee -a "$out/aggregate-$run.txt"
    # Every other round in reverse order, so that neither build always
    # runs first (the first of a round finds colder caches).
    order=("${variants[@]}")
    if [ $((r % 2)) = 0 ]; then
      order=()
      for ((i = ${#variants[@]} - 1; i >= 0; i--)); do order+=("${variants[i]}"); done
    fi
    declare -A wall_of
    for v in "${order[@]}"; do
      name=${v%%=*}
      export agg_bin=${v#*=}
      round=$r-$name
      agg_config
      measure "$name" bash -c agg_run
      curl -s -X DELETE "$es/bench-$run-*" >/dev/null
      read -r wall_of[$name] _ <"$dir/$name.time"
    done
    first=${wall_of[${variants[0]%%=*}]}
    for v in "${variants[@]}"; do
      name=${v%%=*}
      walls[$name]+="$(echo "scale=3; ${wall_of[$name]} / $first" | bc) "
    done
  done
  for v in "${variants[@]}"; do
    name=${v%%=*}
    median=$(printf '%s\n' ${walls[$name]} | sort -n | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}')
    echo "$name / ${variants[0]%%=*} wall per round: ${walls[$name]}; median ${median}x" | tee -a "$out/aggregate-$run.txt"
  done
  curl -s -X DELETE "$es/_index_template/bench-$run" >/dev/null
  echo "bench: $lines lines ($((bytes / 1048576)) MiB); results in $out/aggregate-$run.txt" | tee -a "$out/aggregate-$run.txt"
  exit 0
fi

# 3. Rounds: the aggregator from a fresh consumer group, then the same
# documents as pre-built bulk bodies posted with curl, each into empty
# indices; the ratio is taken within each round (the machine's speed drifts
# within minutes), then the median. The bulk bodies are dumped from
# Elasticsearch after the first aggregator run (not measured).
rounds=${BENCH_ROUNDS:-3}
ratios=()
for round in $(seq "$rounds"); do
  echo "round $round" | tee -a "$out/aggregate-$run.txt"
  agg_config
  measure aggregator bash -c agg_run
  read -r agg_wall _ <"$dir/aggregator.time"
  if [ "$round" = 1 ]; then
    dump_bulk
  fi
  curl -s -X DELETE "$es/bench-$run-*" >/dev/null
  measure curl-bulk bash -c bulk_run
  read -r curl_wall _ <"$dir/curl-bulk.time"
  curl -s -X DELETE "$es/bench-$run-*" >/dev/null
  ratio=$(echo "scale=3; $agg_wall / $curl_wall" | bc)
  ratios+=("$ratio")
  echo "aggregator / curl bulk = ${ratio}x" | tee -a "$out/aggregate-$run.txt"
done
median=$(printf '%s\n' "${ratios[@]}" | sort -n | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}')
curl -s -X DELETE "$es/_index_template/bench-$run" >/dev/null
echo "bench: $lines lines ($((bytes / 1048576)) MiB); aggregator / curl bulk per round: ${ratios[*]}; median ${median}x; results in $out/aggregate-$run.txt" |
  tee -a "$out/aggregate-$run.txt"
