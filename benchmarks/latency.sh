#!/usr/bin/env bash
# Steady-state benchmark of ship + aggregate through the real Kafka and
# Elasticsearch: a writer appends service JSON lines at a steady rate,
# round-robin over FILES files, each stamped with its write time
# (@timestamp, ms); `sluice ship` and `sluice aggregate` run as in
# production.
#
#   benchmarks/latency.sh [RATE [FILES [SECONDS]]]     (default 10000 50 60)
#
# LATENCY_MODE=latency (default): prints, from the documents, p50/p99/p99.9
# and a histogram of write to read by the shipper (event.created -
# @timestamp); from the aggregator, the same of read to acknowledgement by
# Elasticsearch (sluice_aggregator_end_to_end_latency_seconds, bucketed: a
# quantile is given as its bucket's upper bound); and a bound on write to
# acknowledgement: p99 of a sum is at most the sum of the two p99.5 (and
# p99.9 of the two p99.95).
# LATENCY_MODE=cpu: no pipeline; prints Elasticsearch's CPU seconds per
# 1,000 documents (GET _nodes/stats/process, total_in_millis) over the feed
# after a 10 s warm-up, then the same for a plain _bulk load of the very
# same documents (dumped from Elasticsearch) at the same rate in requests
# of 5,000, and the ratio. The Elasticsearch is shared: other load on it
# counts on both sides.
set -euo pipefail
cd "$(dirname "$0")/.."
rate=${1:-10000}
files=${2:-50}
secs=${3:-60}
mode=${LATENCY_MODE:-latency}
es=http://127.0.0.1:9200
out=.local/bench
run=$(date +%s)
dir=$out/lat-$run
index=lat-$run-service
mkdir -p "$dir/logs"
deploy/local/stack.sh up >/dev/null
make -s build
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$dir/logs"
  curl -s -X DELETE "$es/lat-$run-*" >/dev/null || true
  curl -s -X DELETE "$es/_index_template/lat-$run" >/dev/null || true
}
trap cleanup EXIT

cat >"$dir/ship.yaml" <<YAML
node: bench
registry: $PWD/$dir/registry
inputs:
  - type: service
    paths: ["$PWD/$dir/logs/*.log"]
    fields: {environment: bench}
kafka:
  brokers: ["127.0.0.1:9092"]
  topic: lat-$run-{type}
  partitions: 6
http:
  listen: 127.0.0.1:9698
log:
  level: warn
YAML
cat >"$dir/aggregate.yaml" <<YAML
kafka:
  brokers: ["127.0.0.1:9092"]
  group: lat-$run
  topics: [lat-$run-service]
  dead_letter_topic: lat-$run-dead
elasticsearch:
  addresses: ["$es"]
  index: lat-$run-{type}
  template_name: lat-$run
  flush_interval: ${FLUSH_INTERVAL:-250ms}
http:
  listen: 127.0.0.1:9697
log:
  level: warn
YAML

count() { curl -s "$es/$1/_count" | sed -n 's/.*"count":\([0-9]*\).*/\1/p'; }
escpu() { curl -s "$es/_nodes/stats/process" | python3 -c 'import json,sys; print(sum(n["process"]["cpu"]["total_in_millis"] for n in json.load(sys.stdin)["nodes"].values()))'; }

# The aggregator first: it installs the template the index is made from.
bin/sluice aggregate -c "$dir/aggregate.yaml" &
pids+=($!)
until curl -sf "$es/_index_template/lat-$run" >/dev/null 2>&1; do sleep 0.2; done
bin/sluice ship -c "$dir/ship.yaml" &
pids+=($!)
sleep 2

# writer RATE FILES SECONDS DIR: service lines stamped with their write time.
writer() {
  python3 - "$@" <<'PY'
import sys, time, datetime, random
rate, nfiles, secs, d = float(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
fs = [open(f"{d}/app-{i:03d}.log", "a", buffering=1 << 16) for i in range(nfiles)]
tick, n, start = 0.01, 0, time.time()
msgs = ["order placed", "payment authorised", "cart updated", "user signed in", "cache miss"]
while time.time() - start < secs:
    due = int((time.time() - start) * rate)
    while n < due:
        now = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        f = fs[n % nfiles]
        f.write('{"@timestamp":"%s","level":"info","service":"checkout","msg":"%s","id":"%d","order_id":"A-%07d","duration_ms":%.1f}\n'
                % (now, random.choice(msgs), n, random.randrange(10**7), random.random() * 300))
        n += 1
        if n % 100 == 0:
            for g in fs:
                g.flush()
    for g in fs:
        g.flush()
    time.sleep(tick)
print(n)
PY
}

if [ "$mode" = cpu ]; then
  writer "$rate" "$files" "$secs" "$dir/logs" >"$dir/written" &
  wpid=$!
  sleep 10
  c0=$(escpu) d0=$(count "$index")
  wait "$wpid"
  c1=$(escpu) d1=$(count "$index")
  written=$(cat "$dir/written")
  until [ "$(count "$index")" = "$written" ]; do sleep 0.5; done
  requests=$(curl -s 127.0.0.1:9697/metrics | awk '/^sluice_aggregator_bulk_requests_total/ {s += $2} END {print s}')
  sluice=$(echo "scale=4; ($c1 - $c0) / ($d1 - $d0)" | bc)
  echo "sluice: $((d1 - d0)) documents in the window, Elasticsearch CPU $((c1 - c0)) ms: ${sluice} s per 1,000 documents; bulk requests in all: $requests for $written documents" | tee -a "$out/latency-$run.txt"
  # The same documents, in bodies of 5,000, one a second per 5,000 of rate.
  mkdir -p "$dir/bulk"
  python3 - "$es" "$index" "lat-$run-plain" "$dir/bulk" <<'PY'
import json, sys, urllib.request
es, src, dst, dest = sys.argv[1:5]
def call(path, body):
    req = urllib.request.Request(es + path, method="POST", data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req) as r:
        return json.load(r)
page = call(f"/{src}/_search?scroll=2m", {"size": 5000, "sort": ["_doc"]})
part = 0
while page["hits"]["hits"]:
    part += 1
    with open(f"{dest}/{part:06d}.ndjson", "w") as f:
        for h in page["hits"]["hits"]:
            f.write(json.dumps({"index": {"_index": dst, "_id": h["_id"]}}) + "\n" + json.dumps(h["_source"], separators=(",", ":")) + "\n")
    page = call("/_search/scroll", {"scroll": "2m", "scroll_id": page["_scroll_id"]})
PY
  curl -s -X PUT "$es/lat-$run-plain" >/dev/null
  every=$(echo "scale=4; 5000 / $rate" | bc)
  n=0 c0=
  for body in "$dir"/bulk/*.ndjson; do
    # The same window: from the 10 s warm-up on.
    if [ -z "$c0" ] && [ "$n" -ge "$d0" ]; then c0=$(escpu) p0=$(count "lat-$run-plain"); fi
    curl -s -o /dev/null -H 'Content-Type: application/x-ndjson' --data-binary @"$body" "$es/_bulk" &
    sleep "$every"
    n=$((n + 5000))
  done
  wait "$!" || true
  sleep 1
  c1=$(escpu) p1=$(count "lat-$run-plain")
  plain=$(echo "scale=4; ($c1 - $c0) / ($p1 - $p0)" | bc)
  echo "plain _bulk of 5,000: $((p1 - p0)) documents in the window, Elasticsearch CPU $((c1 - c0)) ms: ${plain} s per 1,000 documents" | tee -a "$out/latency-$run.txt"
  echo "sluice / plain = $(echo "scale=3; $sluice / $plain" | bc)x" | tee -a "$out/latency-$run.txt"
  exit 0
fi

# The first 10 s (the aggregator joining its group, the index's first
# shards) are fed but not measured: SECONDS is what follows.
writer "$rate" "$files" "$((secs + 10))" "$dir/logs" >"$dir/written" &
wpid=$!
sleep 10
curl -s 127.0.0.1:9697/metrics >"$dir/metrics0.txt"
t0=$(date +%s%3N)
wait "$wpid"
written=$(cat "$dir/written")
until [ "$(count "$index")" -ge "$written" ]; do sleep 0.5; done
curl -s "$es/$index/_refresh" >/dev/null
echo "$written lines at $rate lines/s over $files files for $secs s (flush_interval ${FLUSH_INTERVAL:-250ms})" | tee -a "$out/latency-$run.txt"
curl -s 127.0.0.1:9697/metrics >"$dir/metrics1.txt"
python3 - "$es" "$index" "$dir/metrics0.txt" "$dir/metrics1.txt" "$t0" <<'PY' | tee -a "$out/latency-$run.txt"
import collections, datetime, json, re, sys, urllib.request
es, index = sys.argv[1], sys.argv[2]
def call(path, body):
    req = urllib.request.Request(es + path, method="POST", data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req) as r:
        return json.load(r)
def ms(t):
    return datetime.datetime.fromisoformat(t.replace("Z", "+00:00")).timestamp() * 1000
lat = []
page = call(f"/{index}/_search?scroll=2m", {"size": 10000, "sort": ["_doc"], "_source": ["@timestamp", "event.created"],
            "query": {"range": {"@timestamp": {"gte": int(sys.argv[5]), "format": "epoch_millis"}}}})
while page["hits"]["hits"]:
    for h in page["hits"]["hits"]:
        s = h["_source"]
        created = s["event.created"] if "event.created" in s else s["event"]["created"]
        lat.append(ms(created) - ms(s["@timestamp"]))
    page = call("/_search/scroll", {"scroll": "2m", "scroll_id": page["_scroll_id"]})
lat.sort()
read = {p: lat[min(len(lat) - 1, int(p / 100 * len(lat)))] for p in (50, 99, 99.5, 99.9, 99.95)}
print("write to read by the shipper (ms, %d documents): " % len(lat) + ", ".join("p%g %.0f" % (k, v) for k, v in read.items()))
hist = collections.Counter(int(x // 50) * 50 for x in lat)
for k in sorted(hist):
    print("  %5d-%5d ms %8d" % (k, k + 50, hist[k]))
def histogram(path):
    out = []
    for line in open(path):
        m = re.match(r'sluice_aggregator_end_to_end_latency_seconds_bucket\{le="([^"]+)"\} (\S+)', line)
        if m:
            out.append((float(m.group(1)), float(m.group(2))))
    return out
before = dict(histogram(sys.argv[3]))
buckets = [(le, c - before.get(le, 0)) for le, c in histogram(sys.argv[4])]
total = buckets[-1][1]
def q(p):
    for le, c in buckets:
        if c >= p / 100 * total:
            return le * 1000
ack = {p: q(p) for p in (50, 99, 99.5, 99.9, 99.95)}
print("read to acknowledgement (ms, bucket upper bounds): " + ", ".join("p%g <=%.0f" % (k, v) for k, v in ack.items()))
prev = 0
for le, c in buckets:
    if c > prev:
        print("  <= %7.0f ms %8d" % (le * 1000, c - prev))
    prev = c
print("write to acknowledgement (ms): p50 <=%.0f, p99 <=%.0f, p99.9 <=%.0f" % (
    read[50] + ack[50], read[99.5] + ack[99.5], read[99.95] + ack[99.95]))
PY
