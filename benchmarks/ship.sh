#!/usr/bin/env bash
# Whole-process benchmark of the shipper: ships a file of realistic ~300-byte
# service JSON lines (1 GiB by default) into the local Kafka with
# `sluice ship`, and the same file with `kcat -P` (librdkafka) in the same
# run, and prints wall time, CPU seconds and peak RSS side by side.
#
#   benchmarks/ship.sh [SIZE_MIB]       (make bench runs it)
#
# BENCH_ROUNDS (default 3) runs kcat and sluice that many times, one after
# the other, and reports each round's ratios (wall time and CPU seconds) and
# their medians: the machine's speed drifts, so a ratio is taken within a
# round. SLUICE_CPUPROFILE=file profiles sluice (the last round's).
set -euo pipefail
cd "$(dirname "$0")/.."
size_mib=${1:-${BENCH_SHIP_MIB:-1024}}
out=.local/bench
mkdir -p "$out"
command -v kcat >/dev/null || apt-get install -y -qq kcat >/dev/null
[ -x /usr/bin/time ] || apt-get install -y -qq time >/dev/null

file=$out/service-${size_mib}m.log
if [ ! -s "$file" ]; then
  lines=$((size_mib * 1024 * 1024 / 300))
  echo "bench: writing $lines lines to $file"
  go build -o bin/loggen ./benchmarks/loggen
  bin/loggen -kind service -n "$lines" -seed 7 >"$file"
fi
lines=$(wc -l <"$file")
bytes=$(stat -c %s "$file")
run=$(date +%s)
rounds=${BENCH_ROUNDS:-3}

# measure NAME CMD...: runs CMD under GNU time, appends "name wall cpu rss".
measure() {
  local name=$1; shift
  /usr/bin/time -f '%e %U %S %M' -o "$out/$name.time" "$@"
  read -r wall user sys rss <"$out/$name.time"
  printf '%-8s %8.2f s wall  %8.2f s cpu  %6d MiB peak RSS  %9.0f lines/s  %7.1f MiB/s\n' \
    "$name" "$wall" "$(echo "$user + $sys" | bc)" $((rss / 1024)) "$(echo "$lines / $wall" | bc -l)" \
    "$(echo "$bytes / 1048576 / $wall" | bc -l)" | tee -a "$out/ship-$run.txt"
}

# kcat: one record per line, zstd, acks=all, idempotent, like sluice.
kcat_run() {
  local round=$1
  deploy/local/stack.sh topic "bench-kcat-$run-$round" 6
  measure kcat kcat -P -b 127.0.0.1:9092 -t "bench-kcat-$run-$round" -z zstd -X enable.idempotence=true \
    -X acks=all -X linger.ms=5 -X batch.size=1048576 -l "$file"
}

# kcat into one partition: the ordering sluice keeps (all of a file's lines
# in one partition, keyed by the file).
deploy/local/stack.sh topic "bench-kcat1-$run" 6
measure kcat-1p kcat -P -b 127.0.0.1:9092 -t "bench-kcat1-$run" -p 0 -z zstd -X enable.idempotence=true \
  -X acks=all -X linger.ms=5 -X batch.size=1048576 -l "$file"
deploy/local/stack.sh topic-delete "bench-kcat1-$run"

# sluice: runs until every line is acknowledged, then SIGTERM; a fresh
# registry and topic each round.
sluice_config() {
  local round=$1
  cat >"$out/ship.yaml" <<YAML
node: bench
registry: $PWD/$out/registry-$run-$round
inputs:
  - type: service
    paths: ["$PWD/$file"]
kafka:
  brokers: ["127.0.0.1:9092"]
  topic: bench-sluice-$run-$round
  partitions: 6
${BENCH_BATCH_BYTES:+  batch_bytes: $BENCH_BATCH_BYTES}
${BENCH_PRODUCERS:+  producers: $BENCH_PRODUCERS}
${BENCH_LINGER:+  linger: $BENCH_LINGER}
${BENCH_PARTITIONING:+  partitioning: $BENCH_PARTITIONING}
http:
  listen: 127.0.0.1:9699
log:
  level: warn
max_in_flight_bytes: ${BENCH_IN_FLIGHT:-4194304}
YAML
}
sluice_run() {
  bin/sluice ship -c "$out/ship.yaml" &
  local pid=$!
  until curl -s 127.0.0.1:9699/metrics 2>/dev/null | awk -v n="$lines" '/^sluice_shipper_lines_acked_total/ && $2 >= n {ok=1} END {exit !ok}'; do
    if ! kill -0 "$pid" 2>/dev/null; then
      wait "$pid"
      echo "bench: sluice ship exited before shipping every line" >&2
      return 1
    fi
    sleep 0.2
  done
  kill -TERM "$pid"
  wait "$pid"
}
export -f sluice_run
export out lines

ratios=()
cpus=()
for round in $(seq "$rounds"); do
  echo "round $round" | tee -a "$out/ship-$run.txt"
  kcat_run "$round"
  read -r kcat_wall kcat_user kcat_sys _ <"$out/kcat.time"
  sluice_config "$round"
  measure sluice bash -c sluice_run
  read -r sluice_wall sluice_user sluice_sys _ <"$out/sluice.time"
  ratio=$(echo "scale=3; $sluice_wall / $kcat_wall" | bc)
  cpu=$(echo "scale=3; ($sluice_user + $sluice_sys) / ($kcat_user + $kcat_sys)" | bc)
  ratios+=("$ratio")
  cpus+=("$cpu")
  echo "sluice / kcat = ${ratio}x wall, ${cpu}x CPU; load average $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$out/ship-$run.txt"
  # Free the broker's disk for the next round.
  deploy/local/stack.sh topic-delete "bench-kcat-$run-$round"
  deploy/local/stack.sh topic-delete "bench-sluice-$run-$round"
  rm -rf "$out/registry-$run-$round"
done
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {if (NR % 2) print a[(NR+1)/2]; else printf "%.3f\n", (a[NR/2]+a[NR/2+1])/2}'; }
echo "bench: $lines lines, $((bytes / 1048576)) MiB; sluice / kcat per round: wall ${ratios[*]} (median $(median "${ratios[@]}")x), CPU ${cpus[*]} (median $(median "${cpus[@]}")x); results in $out/ship-$run.txt" | tee -a "$out/ship-$run.txt"
