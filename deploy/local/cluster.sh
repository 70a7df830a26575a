#!/usr/bin/env bash
# The fault campaign's cluster (make chaos): three Kafka brokers in KRaft
# (each broker and controller in one process, the three are the controller
# quorum's voters), replication 3 and min.insync.replicas 2, and two
# Elasticsearch nodes in one cluster (es-1 master and data, es-2 data only:
# with two master-eligible nodes, losing either would lose the quorum, so
# es-2 is the one the campaign kills). Its own ports and its own directory,
# apart from stack.sh's servers, which other tests use: killing these hurts
# no one. Built from stack.sh's functions (it is sourced) and its downloads
# (~/.m2, copied into the cluster's directory on first use).
#
#   cluster.sh up                start every node, wait until the cluster is whole (idempotent)
#   cluster.sh down              stop every node (data kept)
#   cluster.sh clean             stop every node and delete data and logs
#   cluster.sh status            one line per node; exit 0 only if all are up
#   cluster.sh start NODE        start one node and wait until it is back in the cluster
#   cluster.sh stop NODE         SIGTERM (SIGKILL after 30 s)
#   cluster.sh kill NODE         SIGKILL
#   cluster.sh pause NODE        SIGSTOP;  cluster.sh resume NODE: SIGCONT
#   cluster.sh pid NODE          the node's process group id
#   cluster.sh logs NODE
#
# NODE: kafka-1, kafka-2, kafka-3, es-1, es-2. Signals go to the node's
# process group (an Elasticsearch node is a launcher and its server).
#
# Environment: CHAOS_LOCAL (<repo>/.chaos; data, logs, pid files and the
# installs), CHAOS_KAFKA_PORT (19092: brokers on 19092-19094, controllers on
# 19192-19194), CHAOS_ES_PORT (19200: HTTP on 19200-19201, transport on
# 19300-19301), CHAOS_KAFKA_HEAP (-Xms256m -Xmx512m), CHAOS_ES_HEAP
# (-Xms512m -Xmx512m), STACK_TIMEOUT (180 s), and stack.sh's KAFKA_VERSION,
# ES_VERSION, JAVA_HOME, ES_JAVA_HOME.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
export SLUICE_LOCAL=${CHAOS_LOCAL:-$repo/.chaos}
# shellcheck source=stack.sh
source "$here/stack.sh"

KBASE=${CHAOS_KAFKA_PORT:-19092}
EBASE=${CHAOS_ES_PORT:-19200}
CKAFKA_HEAP=${CHAOS_KAFKA_HEAP:--Xms256m -Xmx512m}
CES_HEAP=${CHAOS_ES_HEAP:--Xms512m -Xmx512m}
CLUSTER_ID=sluice-chaos-kraft-01
KAFKA_NODES=(kafka-1 kafka-2 kafka-3)
ES_NODES=(es-1 es-2)

log() { echo "cluster: $*" >&2; }

# kafka_port N / controller_port N / es_port N: node N's ports (N from 1).
kafka_port() { echo $((KBASE + $1 - 1)); }
controller_port() { echo $((KBASE + 100 + $1 - 1)); }
es_port() { echo $((EBASE + $1 - 1)); }
bootstrap() { echo "127.0.0.1:$(kafka_port 1),127.0.0.1:$(kafka_port 2),127.0.0.1:$(kafka_port 3)"; }
voters() { echo "1@127.0.0.1:$(controller_port 1),2@127.0.0.1:$(controller_port 2),3@127.0.0.1:$(controller_port 3)"; }

node_num() { echo "${1##*-}"; }
check_node() {
  case "$1" in kafka-[123] | es-[12]) ;; *) die "unknown node '$1' (kafka-1..3, es-1..2)" ;; esac
}

# --- Kafka -------------------------------------------------------------------

ckafka_config() {
  local n=$1 dir=$LOCAL/data/$1
  mkdir -p "$dir"
  n=$(node_num "$n")
  cat >"$dir/server.properties" <<PROPS
# Written by deploy/local/cluster.sh on every start: edit the script instead.
process.roles=broker,controller
node.id=$n
controller.quorum.voters=$(voters)
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listeners=PLAINTEXT://127.0.0.1:$(kafka_port "$n"),CONTROLLER://127.0.0.1:$(controller_port "$n")
advertised.listeners=PLAINTEXT://127.0.0.1:$(kafka_port "$n")
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs=$dir/logs
# What the campaign is about: every record on three brokers, acknowledged
# (acks=all) once two have it.
default.replication.factor=3
min.insync.replicas=2
offsets.topic.replication.factor=3
offsets.topic.num.partitions=10
transaction.state.log.replication.factor=3
transaction.state.log.min.isr=2
share.coordinator.state.topic.replication.factor=3
share.coordinator.state.topic.min.isr=2
unclean.leader.election.enable=false
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=false
num.partitions=1
message.max.bytes=8388608
log.retention.hours=24
PROPS
}

ckafka_start() {
  local name=$1 n dir
  n=$(node_num "$name") dir=$LOCAL/data/$name
  if alive "$name"; then return; fi
  if port_open "$(kafka_port "$n")"; then die "port $(kafka_port "$n") is taken by a process not in $RUN/$name.pid"; fi
  need_java
  kafka_install
  mkdir -p "$LOGS" "$RUN"
  ckafka_config "$name"
  if [ ! -f "$dir/logs/meta.properties" ]; then
    log "formatting $name's storage (cluster id $CLUSTER_ID)"
    deadline=$((SECONDS + TIMEOUT))
    kafka_tool kafka.tools.StorageTool format -t "$CLUSTER_ID" -c "$dir/server.properties" >>"$LOGS/$name.log" 2>&1 ||
      { tail -n 60 "$LOGS/$name.log" >&2; die "formatting $name's storage failed"; }
  fi
  log "starting $name on 127.0.0.1:$(kafka_port "$n") (controller :$(controller_port "$n"))"
  # shellcheck disable=SC2086 # CKAFKA_HEAP is a list of JVM options
  launch "$name" "$LOGS/$name.log" "$JAVA" $CKAFKA_HEAP -XX:+UseG1GC -Djava.awt.headless=true \
    -Dlog4j2.configurationFile="$here/kafka/log4j2.yaml" -cp "$KDIR/lib/*" kafka.Kafka "$dir/server.properties"
}

# A broker is healthy when it answers and the cluster's metadata lists it
# (it registered with the controller quorum, which needs two voters).
ckafka_healthy() {
  local n=$1
  port_open "$(kafka_port "$n")" &&
    kafka_tool org.apache.kafka.tools.BrokerApiVersionsCommand --bootstrap-server "127.0.0.1:$(kafka_port "$n")" 2>/dev/null |
    grep -q "^127.0.0.1:$(kafka_port "$n") (id: $n "
}

# --- Elasticsearch -----------------------------------------------------------

ces_start() {
  local name=$1 n dir user java_home
  n=$(node_num "$name") dir=$LOCAL/data/$name
  if alive "$name"; then return; fi
  if port_open "$(es_port "$n")"; then die "port $(es_port "$n") is taken by a process not in $RUN/$name.pid"; fi
  es_install
  # es_user chowns $LOGS/elasticsearch (stack.sh's), so it must exist.
  mkdir -p "$dir/data" "$LOGS/$name" "$LOGS/elasticsearch" "$RUN"
  # A config directory per node: the server writes its keystore there.
  [ -d "$dir/config" ] || cp -r "$EDIR/config" "$dir/config"
  EDATA=$dir/data user=$(es_user)
  if [ "$(id -u)" = 0 ]; then chown -R "$user:" "$dir" "$LOGS/$name"; fi
  if [ -z "${ES_JAVA_HOME:-}" ]; then need_java; fi
  java_home=${ES_JAVA_HOME:-$(dirname "$(dirname "$(readlink -f "$JAVA")")")}
  local roles=master,data,ingest
  [ "$n" = 1 ] || roles=data,ingest
  local cmd=(env ES_JAVA_HOME="$java_home" ES_JAVA_OPTS="$CES_HEAP" ES_PATH_CONF="$dir/config" "$EDIR/bin/elasticsearch"
    -E cluster.name=sluice-chaos -E node.name="$name" -E node.roles="$roles"
    -E network.host=127.0.0.1 -E http.port="$(es_port "$n")" -E transport.port=$(($(es_port "$n") + 100))
    -E discovery.seed_hosts="127.0.0.1:$((EBASE + 100))"
    -E path.data="$dir/data" -E path.logs="$LOGS/$name"
    -E cluster.routing.allocation.disk.threshold_enabled=false
    -E action.destructive_requires_name=false -E http.max_content_length=200mb)
  if [ -d "$EDIR/modules/x-pack-security" ]; then cmd+=(-E xpack.security.enabled=false); fi
  # Only to form the cluster the first time: later it would risk forming another.
  if [ -z "$(ls -A "$dir/data")" ]; then cmd+=(-E cluster.initial_master_nodes=es-1); fi
  log "starting $name ($roles) on 127.0.0.1:$(es_port "$n")"
  if [ "$(id -u)" = 0 ]; then
    launch "$name" "$LOGS/$name.log" setpriv --reuid="$user" --regid="$user" --init-groups --reset-env "${cmd[@]}"
  else
    launch "$name" "$LOGS/$name.log" "${cmd[@]}"
  fi
}

# Healthy when the node answers and is in a cluster with a master.
ces_healthy() {
  curl -sf --max-time 5 "http://127.0.0.1:$(es_port "$1")/_cat/nodes?h=name" 2>/dev/null | grep -qx "es-$1"
}

ces_cluster_whole() {
  curl -sf --max-time 10 "http://127.0.0.1:$EBASE/_cluster/health?wait_for_nodes=2&timeout=5s" 2>/dev/null |
    grep -q '"number_of_nodes":2'
}

# --- one node ------------------------------------------------------------------

node_start() {
  case "$1" in kafka-*) ckafka_start "$1" ;; es-*) ces_start "$1" ;; esac
  # Until the launched child has exec'd, its command line is this script's,
  # which alive (and so wait_healthy) would take for a server that died.
  local i
  for ((i = 0; i < 100; i++)); do alive "$1" && return; sleep 0.1; done
}

# node_wait NODE: until NODE is healthy (wait_healthy takes a command name).
node_wait() {
  WAIT_NODE=$(node_num "$1")
  case "$1" in
    kafka-*) wait_healthy "$1" kafka_node_healthy "$LOGS/$1.log" ;;
    es-*) wait_healthy "$1" es_node_healthy "$LOGS/$1.log" ;;
  esac
}
kafka_node_healthy() { ckafka_healthy "$WAIT_NODE"; }
es_node_healthy() { ces_healthy "$WAIT_NODE"; }

node_signal() {
  local pid
  alive "$1" || die "$1 is not running"
  pid=$(cat "$RUN/$1.pid")
  log "SIG$2 $1 (process group $pid)"
  kill -"$2" -- "-$pid"
}

# stop_all: every node, the brokers together: the last broker stopped alone
# would wait 30 s for a controller quorum that is gone.
stop_all() {
  local n
  for n in "${ES_NODES[@]}" "${KAFKA_NODES[@]}"; do
    # A paused node would never see its SIGTERM.
    if alive "$n"; then kill -CONT -- "-$(cat "$RUN/$n.pid")" 2>/dev/null || true; fi
  done
  for n in "${ES_NODES[@]}"; do stop "$n"; done
  for n in "${KAFKA_NODES[@]}"; do stop "$n" & done
  wait
}

case "${1:-}" in
  up)
    lock
    for n in "${KAFKA_NODES[@]}" "${ES_NODES[@]}"; do node_start "$n"; done
    deadline=$((SECONDS + TIMEOUT))
    for n in "${KAFKA_NODES[@]}" "${ES_NODES[@]}"; do node_wait "$n"; done
    wait_healthy es-1 ces_cluster_whole "$LOGS/es-1.log"
    log "up: Kafka $(bootstrap), Elasticsearch http://127.0.0.1:$(es_port 1),http://127.0.0.1:$(es_port 2)"
    ;;
  down) lock; stop_all ;;
  clean) lock; stop_all; rm -rf "$LOCAL/data" "$LOGS" ;;
  status)
    ok=0
    for n in 1 2 3; do
      if alive "kafka-$n" && ckafka_healthy "$n"; then echo "kafka-$n: up (127.0.0.1:$(kafka_port "$n"))"; else echo "kafka-$n: down"; ok=1; fi
    done
    for n in 1 2; do
      if alive "es-$n" && ces_healthy "$n"; then echo "es-$n: up (http://127.0.0.1:$(es_port "$n"))"; else echo "es-$n: down"; ok=1; fi
    done
    exit $ok
    ;;
  start)
    check_node "${2:-}"
    lock
    node_start "$2"
    deadline=$((SECONDS + TIMEOUT))
    node_wait "$2"
    ;;
  stop) check_node "${2:-}"; lock; stop "$2" ;;
  kill) check_node "${2:-}"; node_signal "$2" KILL ;;
  pause) check_node "${2:-}"; node_signal "$2" STOP ;;
  resume) check_node "${2:-}"; node_signal "$2" CONT ;;
  pid) check_node "${2:-}"; alive "$2" || die "$2 is not running"; cat "$RUN/$2.pid" ;;
  logs) check_node "${2:-}"; tail -n 100 "$LOGS/$2.log" ;;
  *) sed -n '11,22p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
esac
