#!/usr/bin/env bash
# What a document costs on disk: N nginx and N service lines from
# benchmarks/loggen (200,000 each by default) made into Sluice's documents
# by `sluice run` (NDJSON output, no GeoIP), then bulk-loaded into
# Elasticsearch in several layouts, force-merged to one segment, and
# measured with _stats (primary store bytes / documents):
#
#   dynamic      Elasticsearch's default dynamic mapping (no template):
#                every string is text plus a keyword sub-field
#   sluice       Sluice's index template (elasticsearch.* defaults)
#   bc           the same with elasticsearch.codec: best_compression
#   logsdb       the same with elasticsearch.index_mode: logsdb; the local
#                stack's minimal distribution has no licence check, so
#                _source is synthetic, as on an Enterprise licence
#   stored       logsdb with stored _source, what logsdb falls back to
#                on a basic licence
#
#   benchmarks/disk.sh [N]
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-${BENCH_DISK_LINES:-200000}}
es=${ELASTICSEARCH_URL:-http://127.0.0.1:9200}
out=.local/bench
run=$(date +%s)
dir=$out/disk-$run
mkdir -p "$dir/logs"
cleanup() {
  rm -rf "$dir/logs" "$dir/registry"
  if [ -z "${BENCH_KEEP:-}" ]; then
    curl -s -XDELETE "$es/diskbench-$run-*" >/dev/null || true
    curl -s -XDELETE "$es/_index_template/diskbench-$run-*" >/dev/null || true
  fi
}
trap cleanup EXIT
deploy/local/stack.sh up
make -s build
go build -o bin/loggen ./benchmarks/loggen
bin/loggen -kind service -n "$n" -seed 21 -service checkout >"$dir/logs/service.log"
bin/loggen -kind nginx -n "$n" -seed 22 >"$dir/logs/nginx.log"

# 1. Documents, exactly as the aggregator builds them.
cat >"$dir/run.yaml" <<YAML
node: bench
registry: $PWD/$dir/registry
inputs:
  - type: service
    paths: ["$PWD/$dir/logs/service.log"]
    fields: {environment: bench, service: checkout}
  - type: nginx
    paths: ["$PWD/$dir/logs/nginx.log"]
    fields: {environment: bench, service: edge}
elasticsearch:
  index: diskbench-{type}
output:
  file: {path: $PWD/$dir/documents.ndjson}
http: {listen: 127.0.0.1:9697}
log: {level: warn}
YAML
bin/sluice run -c "$dir/run.yaml" &
pid=$!
until [ -f "$dir/documents.ndjson" ] && [ "$(wc -l <"$dir/documents.ndjson")" -ge $((2 * n)) ]; do sleep 1; done
kill -TERM "$pid"
wait "$pid" || true

# 2. One layout per index prefix: Sluice's templates installed by sluice
# setup, none for dynamic.
variant() { # name extra-yaml
  cat >"$dir/$1.yaml" <<YAML
elasticsearch:
  addresses: ["$es"]
  index: diskbench-$run-$1-{type}
  template_name: diskbench-$run-$1
  replicas: 0
$2
YAML
  bin/sluice setup -c "$dir/$1.yaml" >/dev/null
}
variant sluice ""
variant bc "  codec: best_compression"
variant logsdb "  index_mode: logsdb"
variant stored "  index_mode: logsdb"
# Sluice's template with stored _source added: a basic licence's logsdb.
curl -sf "$es/_index_template/diskbench-$run-stored" | python3 -c '
import json, sys
t = json.load(sys.stdin)["index_templates"][0]["index_template"]
t["template"]["settings"]["index"]["mapping"] = {"source": {"mode": "stored"}}
print(json.dumps(t))' | curl -sf -XPUT "$es/_index_template/diskbench-$run-stored" -H 'Content-Type: application/json' -d @- >/dev/null
for type in nginx service; do
  curl -sf -XPUT "$es/diskbench-$run-dynamic-$type" -H 'Content-Type: application/json' \
    -d '{"settings":{"number_of_shards":1,"number_of_replicas":0}}' >/dev/null
done

# 3. Load, merge, measure.
python3 - "$es" "$run" "$dir/documents.ndjson" <<'PY' | tee "$out/disk-$run.txt"
import json, sys, urllib.request
es, run, path = sys.argv[1], sys.argv[2], sys.argv[3]
variants = ["dynamic", "sluice", "bc", "logsdb", "stored"]
def call(method, url, body=None):
    req = urllib.request.Request(es + url, data=body, method=method, headers={"Content-Type": "application/x-ndjson"})
    with urllib.request.urlopen(req, timeout=600) as r:
        return json.load(r)
docs = [json.loads(l) for l in open(path)]
for v in variants:
    buf, size = [], 0
    def flush():
        global buf, size
        if buf:
            res = call("POST", "/_bulk", "".join(buf).encode())
            if res.get("errors"):
                bad = [i for i in res["items"] if "error" in list(i.values())[0]]
                sys.exit(f"{v}: {len(bad)} bulk errors, e.g. {bad[0]}")
        buf, size = [], 0
    for d in docs:
        typ = d["_index"].rsplit("-", 1)[1]
        buf.append(json.dumps({"create": {"_index": f"diskbench-{run}-{v}-{typ}", "_id": d["_id"]}}) + "\n")
        src = json.dumps(d["_source"]) + "\n"
        buf.append(src)
        size += len(src)
        if size > 5 << 20:
            flush()
    flush()
    call("POST", f"/diskbench-{run}-{v}-*/_refresh")
    call("POST", f"/diskbench-{run}-{v}-*/_forcemerge?max_num_segments=1")
print(f"{len(docs)} documents ({len(docs)//2} per type), force-merged to one segment, primary store bytes per document")
print(f"| layout | nginx B/doc | service B/doc | vs dynamic (nginx, service) |")
print(f"|---|---|---|---|")
base = {}
for v in variants:
    row = {}
    for typ in ["nginx", "service"]:
        s = call("GET", f"/diskbench-{run}-{v}-{typ}/_stats/store,docs")["_all"]["primaries"]
        row[typ] = s["store"]["size_in_bytes"] / s["docs"]["count"]
    if v == "dynamic":
        base = row
    print(f"| {v} | {row['nginx']:.0f} | {row['service']:.0f} | {row['nginx']/base['nginx']:.2f}x, {row['service']/base['service']:.2f}x |")
PY
