#!/usr/bin/env bash
# The local stack for tests and the demo: a real Apache Kafka (single-node
# KRaft) and a real Elasticsearch, fetched from Maven Central with mvn and
# run with the machine's Java. No Docker.
#
#   stack.sh up          install if needed, start both, wait for health (idempotent)
#   stack.sh down        stop both (data kept)
#   stack.sh clean       stop both and delete their data (downloads kept)
#   stack.sh status      exit 0 only if both are healthy
#   stack.sh kafka-stop | kafka-start | es-stop | es-start
#   stack.sh logs kafka|es
#   stack.sh topic NAME [PARTITIONS]
#
# Downloads are cached in the Maven repository (~/.m2) and unpacked under
# $SLUICE_LOCAL (default <repo>/.local, git-ignored), so a second `up` starts
# in seconds. Environment: KAFKA_PORT (9092), KAFKA_PROXY_PORT (9095, see
# below), ES_PORT (9200), STACK_TIMEOUT (180 s), KAFKA_VERSION, ES_VERSION,
# ES_HEAP (1g).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
LOCAL=${SLUICE_LOCAL:-$repo/.local}
KAFKA_VERSION=${KAFKA_VERSION:-4.3.0}
# 8.19 is the newest Elasticsearch line that runs on Java 17; 9.x needs 21.
ES_VERSION=${ES_VERSION:-8.19.9}
KAFKA_PORT=${KAFKA_PORT:-9092}
# A second listener whose advertised address is a port where tests may put a
# TCP proxy (internal/testenv), so that every connection of a client that
# bootstraps there goes through the proxy: this is how tests cut Kafka off
# without stopping it for everyone else.
KAFKA_PROXY_PORT=${KAFKA_PROXY_PORT:-9095}
KAFKA_PROXIED_PORT=$((KAFKA_PROXY_PORT - 1))
ES_PORT=${ES_PORT:-9200}
ES_HEAP=${ES_HEAP:-1g}
TIMEOUT=${STACK_TIMEOUT:-180}
ES_USER=sluice-es

KDIR=$LOCAL/kafka-$KAFKA_VERSION
KDATA=$LOCAL/data/kafka
EDIR=$LOCAL/elasticsearch-$ES_VERSION
EDATA=$LOCAL/data/elasticsearch
LOGS=$LOCAL/logs
RUN=$LOCAL/run

log() { echo "stack: $*" >&2; }
die() { log "$*"; exit 1; }

java_bin() {
  if [ -n "${JAVA_HOME:-}" ]; then echo "$JAVA_HOME/bin/java"; else command -v java || die "java not found; install Java 17+"; fi
}

alive() { [ -f "$RUN/$1.pid" ] && kill -0 "$(cat "$RUN/$1.pid")" 2>/dev/null; }
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# --- Kafka -------------------------------------------------------------------

kafka_install() {
  [ -f "$KDIR/.installed" ] && return
  command -v mvn >/dev/null || die "mvn not found; install Maven"
  log "fetching Kafka $KAFKA_VERSION from Maven Central"
  rm -rf "$KDIR" && mkdir -p "$KDIR/lib"
  mvn -q -B -Dstyle.color=never -f "$here/kafka/pom.xml" -Dkafka.version="$KAFKA_VERSION" \
    dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$KDIR/lib" >&2 ||
    die "mvn could not fetch Kafka $KAFKA_VERSION"
  touch "$KDIR/.installed"
}

kafka_config() {
  mkdir -p "$KDATA" "$LOGS" "$RUN"
  cat >"$KDATA/server.properties" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.bootstrap.servers=127.0.0.1:$((KAFKA_PORT + 1))
listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT,CONTROLLER://127.0.0.1:$((KAFKA_PORT + 1)),PROXIED://127.0.0.1:$KAFKA_PROXIED_PORT
advertised.listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT,PROXIED://127.0.0.1:$KAFKA_PROXY_PORT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT,PROXIED:PLAINTEXT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
log.dirs=$KDATA/logs
num.partitions=1
auto.create.topics.enable=false
offsets.topic.replication.factor=1
offsets.topic.num.partitions=10
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
min.insync.replicas=1
group.initial.rebalance.delay.ms=0
delete.topic.enable=true
message.max.bytes=8388608
log.retention.hours=24
PROPS
}

kafka_java() {
  "$(java_bin)" -Xms256m -Xmx512m -XX:+UseG1GC -Djava.awt.headless=true \
    -Dlog4j2.configurationFile="$here/kafka/log4j2.yaml" -cp "$KDIR/lib/*" "$@"
}

kafka_start() {
  if alive kafka && port_open "$KAFKA_PORT"; then return; fi
  if port_open "$KAFKA_PORT"; then log "port $KAFKA_PORT is taken by a server this script did not start; using it"; return; fi
  kafka_install
  kafka_config
  if [ ! -f "$KDATA/logs/meta.properties" ]; then
    log "formatting Kafka storage"
    kafka_java kafka.tools.StorageTool format --standalone -t "sluice-local-kafka-01" \
      -c "$KDATA/server.properties" >>"$LOGS/kafka.log" 2>&1 || { tail -n 30 "$LOGS/kafka.log" >&2; die "formatting Kafka storage failed"; }
  fi
  log "starting Kafka $KAFKA_VERSION on 127.0.0.1:$KAFKA_PORT"
  setsid nohup bash -c "$(declare -f kafka_java java_bin die log); $(declare -p here KDIR); kafka_java kafka.Kafka '$KDATA/server.properties'" \
    >>"$LOGS/kafka.log" 2>&1 </dev/null &
  echo $! >"$RUN/kafka.pid"
}

# Kafka is healthy when a client gets metadata back: list topics.
kafka_healthy() {
  port_open "$KAFKA_PORT" || return 1
  kafka_java org.apache.kafka.tools.TopicCommand --bootstrap-server "127.0.0.1:$KAFKA_PORT" --list >/dev/null 2>&1
}

# --- Elasticsearch -----------------------------------------------------------

es_install() {
  [ -f "$EDIR/.installed" ] && return
  command -v mvn >/dev/null || die "mvn not found; install Maven"
  log "fetching Elasticsearch $ES_VERSION from Maven Central"
  local art=org.elasticsearch.distribution.integ-test-zip:elasticsearch:$ES_VERSION:zip
  mvn -q -B -Dstyle.color=never dependency:copy -Dartifact="$art" -DoutputDirectory="$LOCAL/download" >&2 ||
    die "mvn could not fetch $art"
  rm -rf "$EDIR" "$LOCAL/es-unpack" && mkdir -p "$LOCAL/es-unpack"
  if command -v unzip >/dev/null; then
    unzip -q "$LOCAL/download/elasticsearch-$ES_VERSION.zip" -d "$LOCAL/es-unpack"
  else
    python3 -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])' \
      "$LOCAL/download/elasticsearch-$ES_VERSION.zip" "$LOCAL/es-unpack"
    chmod +x "$LOCAL"/es-unpack/*/bin/*
  fi
  mv "$LOCAL"/es-unpack/elasticsearch-* "$EDIR" && rmdir "$LOCAL/es-unpack"
  rm -f "$LOCAL/download/elasticsearch-$ES_VERSION.zip"
  touch "$EDIR/.installed"
}

# Elasticsearch refuses to run as root: as root, run it as a dedicated
# system user that owns its config, data and logs.
es_owner() {
  if [ "$(id -u)" != 0 ]; then id -un; return; fi
  id "$ES_USER" >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin "$ES_USER" ||
    die "cannot create user $ES_USER to run Elasticsearch (it refuses to run as root)"
  echo "$ES_USER"
}

es_start() {
  if alive es && port_open "$ES_PORT"; then return; fi
  if port_open "$ES_PORT"; then log "port $ES_PORT is taken by a server this script did not start; using it"; return; fi
  es_install
  mkdir -p "$EDATA" "$LOGS" "$RUN"
  local user; user=$(es_owner)
  touch "$LOGS/elasticsearch.log"
  chown -R "$user" "$EDIR/config" "$EDATA" "$LOGS/elasticsearch.log"
  # The owner must be able to reach the install directory.
  chmod o+rx "$LOCAL" "$EDIR" 2>/dev/null || true
  local d=$LOCAL; while [ "$d" != / ]; do chmod o+x "$d" 2>/dev/null || true; d=$(dirname "$d"); done
  log "starting Elasticsearch $ES_VERSION on 127.0.0.1:$ES_PORT"
  local java_home=${ES_JAVA_HOME:-${JAVA_HOME:-$(dirname "$(dirname "$(readlink -f "$(java_bin)")")")}}
  local cmd=(env ES_JAVA_HOME="$java_home" ES_JAVA_OPTS="-Xms$ES_HEAP -Xmx$ES_HEAP"
    "$EDIR/bin/elasticsearch"
    -E discovery.type=single-node -E network.host=127.0.0.1 -E http.port="$ES_PORT"
    -E transport.port=$((ES_PORT + 100)) -E path.data="$EDATA" -E path.logs="$EDATA/logs"
    -E cluster.name=sluice-local -E cluster.routing.allocation.disk.threshold_enabled=false
    -E action.destructive_requires_name=false -E http.max_content_length=200mb
    -E xpack.security.enabled=false)
  if [ "$(id -u)" = 0 ]; then
    setsid nohup runuser -u "$user" -- "${cmd[@]}" >>"$LOGS/elasticsearch.log" 2>&1 </dev/null &
  else
    setsid nohup "${cmd[@]}" >>"$LOGS/elasticsearch.log" 2>&1 </dev/null &
  fi
  echo $! >"$RUN/es.pid"
}

es_healthy() {
  curl -sf "http://127.0.0.1:$ES_PORT/_cluster/health?wait_for_status=yellow&timeout=1s" 2>/dev/null |
    grep -Eq '"status":"(green|yellow)"'
}

# --- lifecycle -----------------------------------------------------------------

wait_healthy() { # name check-fn log-file
  local deadline=$((SECONDS + TIMEOUT))
  until "$2"; do
    if [ -f "$RUN/$1.pid" ] && ! alive "$1"; then
      tail -n 60 "$3" >&2; die "$1 exited during start-up (log: $3)"
    fi
    if [ $SECONDS -ge $deadline ]; then
      tail -n 60 "$3" >&2; die "$1 not healthy after ${TIMEOUT}s (log: $3)"
    fi
    sleep 1
  done
}

stop() { # name
  alive "$1" || { rm -f "$RUN/$1.pid"; return 0; }
  local pid; pid=$(cat "$RUN/$1.pid")
  log "stopping $1"
  kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
  kill -KILL -- "-$pid" 2>/dev/null || true
  rm -f "$RUN/$1.pid"
}

up_kafka() { kafka_start; wait_healthy kafka kafka_healthy "$LOGS/kafka.log"; }
up_es() { es_start; wait_healthy es es_healthy "$LOGS/elasticsearch.log"; }

case "${1:-}" in
  up)
    mkdir -p "$LOCAL"
    # Install and start both before waiting, so they boot in parallel.
    kafka_start; es_start
    wait_healthy kafka kafka_healthy "$LOGS/kafka.log"
    wait_healthy es es_healthy "$LOGS/elasticsearch.log"
    log "up: Kafka 127.0.0.1:$KAFKA_PORT, Elasticsearch http://127.0.0.1:$ES_PORT"
    ;;
  down) stop kafka; stop es ;;
  clean) stop kafka; stop es; rm -rf "$LOCAL/data" "$LOGS" ;;
  status)
    ok=0
    if alive kafka && port_open "$KAFKA_PORT"; then echo "kafka: up (127.0.0.1:$KAFKA_PORT)"; else echo "kafka: down"; ok=1; fi
    if es_healthy; then echo "elasticsearch: up (http://127.0.0.1:$ES_PORT)"; else echo "elasticsearch: down"; ok=1; fi
    exit $ok
    ;;
  kafka-stop) stop kafka ;;
  kafka-start) up_kafka ;;
  es-stop) stop es ;;
  es-start) up_es ;;
  topic) # topic NAME [PARTITIONS]: create a topic (for benchmarks with other clients)
    kafka_java org.apache.kafka.tools.TopicCommand --bootstrap-server "127.0.0.1:$KAFKA_PORT" --create \
      --if-not-exists --topic "${2:?topic name}" --partitions "${3:-6}" --replication-factor 1 \
      --config max.message.bytes=8388608 >/dev/null
    ;;
  logs)
    case "${2:-}" in
      kafka) tail -n 100 "$LOGS/kafka.log" ;;
      es) tail -n 100 "$LOGS/elasticsearch.log" ;;
      *) die "usage: stack.sh logs kafka|es" ;;
    esac
    ;;
  *) sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
