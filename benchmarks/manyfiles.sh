#!/usr/bin/env bash
# Many files on one node (issue 17): `sluice ship` with its defaults into
# the local Kafka, tailing
#   busy:  FILES files each growing at RATE lines/s (default 1,000 x 100 =
#          100,000 lines/s), or
#   quiet: FILES files each getting one line a minute,
# for SECONDS after a warm-up (every file opened and caught up). Prints the
# shipper's CPU seconds per second (utime+stime from /proc over the
# window), peak and last RSS, goroutines, open file descriptors, the
# registry's write time (sluice_shipper_registry_write_seconds over the
# window: mean and the bucket holding the slowest) and whether it kept up
# (lines acknowledged in the window against lines written).
#
#   benchmarks/manyfiles.sh [busy|quiet] [SECONDS] [FILES]   (defaults busy 120 1000)
#
# IN_FLIGHT sets max_in_flight_bytes (default 4 MiB).
# RATE (100) lines/s per busy file, TICK (10ms) how often a busy file is
# written to (its lines due since the last tick in one write), WARMUP (20 s;
# 70 s for quiet, so that every quiet file got its line once), ARGS extra
# `sluice ship` flags. The writer is a separate process: its CPU is not
# counted, but on a shared machine it competes for the same cores.
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-busy}
secs=${2:-120}
files=${3:-1000}
rate=${RATE:-100}
tick=${TICK:-10ms}
out=.local/bench
run=$(date +%s)
dir=$out/manyfiles-$run
mkdir -p "$dir/logs"
deploy/local/stack.sh up >/dev/null
make -s build
go build -o bin/manyfiles ./benchmarks/manyfiles
case $mode in
  busy) warmup=${WARMUP:-20}; wargs=(-busy "$files" -quiet 0 -rate "$rate" -tick "$tick") ;;
  quiet) warmup=${WARMUP:-70}; wargs=(-busy 0 -quiet "$files" -tick 100ms) ;;
  *) echo "manyfiles: mode is busy or quiet" >&2; exit 2 ;;
esac
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$dir/logs"
  deploy/local/stack.sh topic-delete "manyfiles-$run" >/dev/null 2>&1 || true
}
trap cleanup EXIT

cat >"$dir/ship.yaml" <<YAML
node: bench
registry: $PWD/$dir/registry
inputs:
  - type: service
    paths: ["$PWD/$dir/logs/*.log"]
kafka:
  brokers: ["127.0.0.1:9092"]
  topic: manyfiles-$run
  partitions: 6
http:
  listen: 127.0.0.1:9696
log:
  level: warn
${IN_FLIGHT:+max_in_flight_bytes: $IN_FLIGHT}
YAML

bin/manyfiles -dir "$dir/logs" -duration "$((warmup + secs + 5))s" "${wargs[@]}" >"$dir/written" &
pids+=($!)
sleep 1
bin/sluice ship -c "$dir/ship.yaml" ${ARGS:-} &
pid=$!
pids+=($pid)

metric() { curl -s 127.0.0.1:9696/metrics | awk -v m="$1" '$1 == m {s += $2} END {printf "%.6f\n", s}'; }
acked() { curl -s 127.0.0.1:9696/metrics | awk '/^sluice_shipper_lines_acked_total/ {s += $2} END {printf "%d\n", s}'; }
cpu() { awk '{print $14 + $15}' "/proc/$pid/stat"; }
hz=$(getconf CLK_TCK)

sleep "$warmup"
c0=$(cpu) a0=$(acked) t0=$(date +%s.%N)
rs0=$(metric sluice_shipper_registry_write_seconds_sum) rc0=$(metric sluice_shipper_registry_write_seconds_count)
ps0=$(metric sluice_shipper_produce_latency_seconds_sum) pc0=$(metric sluice_shipper_produce_latency_seconds_count)
curl -s 127.0.0.1:9696/metrics | grep '^sluice_shipper_registry_write_seconds_bucket' >"$dir/buckets0"
maxrss=0 maxg=0 maxfd=0
end=$(( $(date +%s) + secs ))
while [ "$(date +%s)" -lt "$end" ]; do
  rss=$(awk '/^VmRSS/ {print $2}' "/proc/$pid/status")
  g=$(metric go_goroutines)
  fd=$(ls "/proc/$pid/fd" | wc -l)
  maxrss=$(( rss > maxrss ? rss : maxrss ))
  maxg=$(echo "$g $maxg" | awk '{print ($1 > $2) ? int($1) : int($2)}')
  maxfd=$(( fd > maxfd ? fd : maxfd ))
  sleep 2
done
c1=$(cpu) a1=$(acked) t1=$(date +%s.%N)
rs1=$(metric sluice_shipper_registry_write_seconds_sum) rc1=$(metric sluice_shipper_registry_write_seconds_count)
ps1=$(metric sluice_shipper_produce_latency_seconds_sum) pc1=$(metric sluice_shipper_produce_latency_seconds_count)
curl -s 127.0.0.1:9696/metrics | grep '^sluice_shipper_registry_write_seconds_bucket' >"$dir/buckets1"
hwm=$(awk '/^VmHWM/ {print $2}' "/proc/$pid/status")
lag=$(metric sluice_shipper_lag_bytes)
window=$(echo "$t1 - $t0" | bc)
# The slowest registry write in the window: the lowest bucket holding all.
slowest=$(paste "$dir/buckets0" "$dir/buckets1" | awk -v n="$((${rc1%.*} - ${rc0%.*}))" '
  { match($1, /le="[^"]*"/); le = substr($1, RSTART + 4, RLENGTH - 5); if (($4 - $2) >= n && !done) { print le; done = 1 } }')
{
  echo "manyfiles $mode: $files files$( [ "$mode" = busy ] && echo " at $rate lines/s each (writes every $tick)"), ${secs} s window after ${warmup} s warm-up, load average $(cut -d' ' -f1-3 /proc/loadavg)"
  printf '  CPU %.3f cores (%.1f s in %.1f s)\n' "$(echo "($c1 - $c0) / $hz / $window" | bc -l)" "$(echo "($c1 - $c0) / $hz" | bc -l)" "$window"
  printf '  RSS peak %d MiB (VmHWM, start-up included), in the window up to %d MiB\n' $((hwm / 1024)) $((maxrss / 1024))
  printf '  goroutines up to %d, file descriptors up to %d\n' "$maxg" "$maxfd"
  printf '  registry writes: %d, mean %.2f ms, slowest under %s s\n' "$(echo "$rc1 - $rc0" | bc | cut -d. -f1)" \
    "$(echo "if ($rc1 - $rc0 > 0) ($rs1 - $rs0) * 1000 / ($rc1 - $rc0) else 0" | bc -l)" "$slowest"
  printf '  lines acknowledged %.0f/s in the window; lag at the end %.0f bytes; produce latency (read to ack) mean %.0f ms\n' "$(echo "($a1 - $a0) / $window" | bc -l)" "$lag" \
    "$(echo "if ($pc1 - $pc0 > 0) ($ps1 - $ps0) * 1000 / ($pc1 - $pc0) else 0" | bc -l)"
} | tee -a "$out/manyfiles-$run.txt"
