#!/usr/bin/env bash
# The local stack for tests and the demo: a real Apache Kafka (single-node
# KRaft, broker and controller in one process) and a real Elasticsearch
# (single node), fetched from Maven Central with mvn and run with the
# machine's Java 17+. No Docker.
#
#   stack.sh up          install if needed, start both, wait for health (idempotent)
#   stack.sh down        stop both (data kept)
#   stack.sh clean       stop both and delete their data and logs (downloads kept)
#   stack.sh status      print whether each is up; exit 0 only if both are healthy
#   stack.sh kafka-stop | kafka-start | es-stop | es-start
#   stack.sh logs kafka|es
#   stack.sh topic NAME [PARTITIONS]   create a topic (default 6 partitions)
#   stack.sh topic-delete NAME         delete a topic (if it exists)
#
# Environment: SLUICE_LOCAL (<repo>/.local), STACK_TIMEOUT (180 s to become
# healthy), KAFKA_VERSION, KAFKA_PORT (9092), KAFKA_CONTROLLER_PORT
# (KAFKA_PORT+1), KAFKA_PROXY_PORT (9095, see kafka_config), KAFKA_SSL_PORT
# (KAFKA_PORT+4), KAFKA_SASL_SSL_PORT (+5), KAFKA_SASL_PORT (+6) (secured
# listeners, see kafka_tls), KAFKA_HEAP_OPTS, ES_VERSION, ES_PORT (9200),
# ES_JAVA_OPTS (heap), ES_JAVA_HOME, JAVA_HOME.
#
# Files: downloads go through the Maven local repository (~/.m2/repository,
# or whatever ~/.m2/settings.xml says), so a clean `.local` is refilled
# without the network. Under $SLUICE_LOCAL (git-ignored): kafka-VERSION/lib
# (the jars), elasticsearch-VERSION (the unpacked server), data/ (both
# servers' data), logs/ (kafka.log, elasticsearch.log, elasticsearch/), run/
# (pid files, lock), tls/ (the test CA and the broker's certificate, the
# SASL PLAIN user's password; see kafka_tls). Kafka's CLI tools run as:
#   java -cp '.local/kafka-VERSION/lib/*' org.apache.kafka.tools.TopicCommand ...
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
# Absolute, as it also identifies the servers' processes (see alive).
LOCAL=$(mkdir -p "${SLUICE_LOCAL:-$repo/.local}" && cd "${SLUICE_LOCAL:-$repo/.local}" && pwd)
KAFKA_VERSION=${KAFKA_VERSION:-4.4.0}
# 8.19 is the newest Elasticsearch line that runs on Java 17; 9.x needs 21
# (set ES_VERSION and ES_JAVA_HOME together for it).
ES_VERSION=${ES_VERSION:-8.19.21}
KAFKA_PORT=${KAFKA_PORT:-9092}
# The controller's address is written into the storage when it is formatted:
# changing it later needs `stack.sh clean`.
KAFKA_CONTROLLER_PORT=${KAFKA_CONTROLLER_PORT:-$((KAFKA_PORT + 1))}
KAFKA_PROXY_PORT=${KAFKA_PROXY_PORT:-9095}
KAFKA_SSL_PORT=${KAFKA_SSL_PORT:-$((KAFKA_PORT + 4))}
KAFKA_SASL_SSL_PORT=${KAFKA_SASL_SSL_PORT:-$((KAFKA_PORT + 5))}
KAFKA_SASL_PORT=${KAFKA_SASL_PORT:-$((KAFKA_PORT + 6))}
KAFKA_HEAP_OPTS=${KAFKA_HEAP_OPTS:--Xms256m -Xmx512m}
ES_PORT=${ES_PORT:-9200}
ES_JAVA_OPTS=${ES_JAVA_OPTS:--Xms1g -Xmx1g}
TIMEOUT=${STACK_TIMEOUT:-180}
# Elasticsearch refuses to run as root; as root the script runs it as this
# system user (created when missing).
ES_USER=sluice-es
KAFKA_CLUSTER_ID=sluice-local-kafka-01

KDIR=$LOCAL/kafka-$KAFKA_VERSION
KDATA=$LOCAL/data/kafka
EDIR=$LOCAL/elasticsearch-$ES_VERSION
EDATA=$LOCAL/data/elasticsearch
LOGS=$LOCAL/logs
KLOG=$LOGS/kafka.log
ELOG=$LOGS/elasticsearch.log
RUN=$LOCAL/run
TLS=$LOCAL/tls

log() { echo "stack: $*" >&2; }
die() { log "$*"; exit 1; }

# The java that runs Kafka (and, unless ES_JAVA_HOME says otherwise, Elasticsearch).
JAVA=${JAVA_HOME:+$JAVA_HOME/bin/java}
JAVA=${JAVA:-$(command -v java || true)}
need_java() { [ -x "$JAVA" ] || die "java not found: install Java 17+ or set JAVA_HOME"; }

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# alive NAME: the process in run/NAME.pid runs, and is one this script
# started from this $SLUICE_LOCAL (its command line names it), not an
# unrelated process that got the pid after a reboot.
alive() {
  local pid
  pid=$(cat "$RUN/$1.pid" 2>/dev/null) || return 1
  kill -0 "$pid" 2>/dev/null && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF "$LOCAL"
}

# launch NAME LOG CMD...: run CMD detached in a session of its own (so its
# pid is also its process group, which stop() signals whole), append its
# output to LOG (moved to LOG.1 once past 50 MB), and record its pid. fd 9
# (the lock) is not passed on.
launch() {
  local name=$1 out=$2; shift 2
  if [ "$(stat -c %s "$out" 2>/dev/null || echo 0)" -gt 50000000 ]; then mv "$out" "$out.1"; fi
  setsid nohup "$@" >>"$out" 2>&1 </dev/null 9>&- &
  echo $! >"$RUN/$name.pid"
}

# stop NAME: SIGTERM the server's process group, wait up to 30 s, then SIGKILL.
stop() {
  if ! alive "$1"; then rm -f "$RUN/$1.pid"; return 0; fi
  local pid i; pid=$(cat "$RUN/$1.pid")
  log "stopping $1 (pid $pid)"
  kill -TERM -- "-$pid" 2>/dev/null || true
  for ((i = 0; i < 60; i++)); do kill -0 -- "-$pid" 2>/dev/null || break; sleep 0.5; done
  if kill -0 -- "-$pid" 2>/dev/null; then
    log "$1 still running after 30 s: SIGKILL"
    kill -KILL -- "-$pid" 2>/dev/null || true
    for ((i = 0; i < 20; i++)); do kill -0 -- "-$pid" 2>/dev/null || break; sleep 0.5; done
  fi
  rm -f "$RUN/$1.pid"
}

# wait_healthy NAME CHECK LOG: until CHECK succeeds, or the server exits, or
# $deadline passes; on failure print the tail of LOG and exit non-zero.
wait_healthy() {
  local name=$1 check=$2 out=$3
  until "$check"; do
    if [ -f "$RUN/$name.pid" ] && ! alive "$name"; then
      tail -n 60 "$out" >&2; die "$name exited during start-up (log: $out)"
    fi
    if ((SECONDS >= deadline)); then
      tail -n 60 "$out" >&2; die "$name not healthy after ${TIMEOUT}s (log: $out)"
    fi
    sleep 1
  done
}

# --- Kafka -------------------------------------------------------------------

kafka_install() {
  [ -f "$KDIR/.installed" ] && return
  command -v mvn >/dev/null || die "mvn not found: install Maven"
  log "fetching Kafka $KAFKA_VERSION and its dependencies with mvn"
  rm -rf "$KDIR" && mkdir -p "$KDIR" "$LOGS"
  mvn -B -Dstyle.color=never -f "$here/kafka/pom.xml" -Dkafka.version="$KAFKA_VERSION" \
    dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$KDIR/lib" >"$LOGS/mvn.log" 2>&1 ||
    { tail -n 60 "$LOGS/mvn.log" >&2; die "mvn could not fetch Kafka $KAFKA_VERSION (log: $LOGS/mvn.log)"; }
  touch "$KDIR/.installed"
}

# kafka_tls: the secured listeners' material under $TLS, made once (openssl,
# well under a second) and kept: ca.crt/ca.key (a test CA; tests sign
# client certificates with it), broker.p12 (the broker's key and a
# certificate for 127.0.0.1 and localhost signed by the CA, in a PKCS12
# keystore with password $TLS/keystore.password) and plain.password (the
# password of the SASL PLAIN user "sluice"). SCRAM users are made at run
# time by whoever needs them (tests use the Kafka admin API on PLAINTEXT).
kafka_tls() {
  mkdir -p "$TLS"
  chmod 700 "$TLS"
  command -v openssl >/dev/null || die "openssl not found: install it (apt-get install -y openssl)"
  if [ ! -s "$TLS/ca.crt" ] || [ ! -s "$TLS/ca.key" ]; then
    log "making the local test CA in $TLS"
    openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=Sluice local test CA" \
      -keyout "$TLS/ca.key" -out "$TLS/ca.crt" >/dev/null 2>&1 || die "openssl could not make the test CA"
  fi
  [ -s "$TLS/keystore.password" ] || openssl rand -hex 16 >"$TLS/keystore.password"
  [ -s "$TLS/plain.password" ] || openssl rand -hex 16 >"$TLS/plain.password"
  if [ ! -s "$TLS/broker.p12" ] || [ "$TLS/ca.crt" -nt "$TLS/broker.p12" ]; then
    log "making the broker's certificate in $TLS"
    openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" -keyout "$TLS/broker.key" -out "$TLS/broker.csr" >/dev/null 2>&1 &&
      openssl x509 -req -in "$TLS/broker.csr" -CA "$TLS/ca.crt" -CAkey "$TLS/ca.key" -CAcreateserial -days 3650 \
        -extfile <(printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\n') \
        -out "$TLS/broker.crt" >/dev/null 2>&1 &&
      openssl pkcs12 -export -name broker -inkey "$TLS/broker.key" -in "$TLS/broker.crt" -certfile "$TLS/ca.crt" \
        -passout "file:$TLS/keystore.password" -out "$TLS/broker.p12" ||
      die "openssl could not make the broker's certificate"
    rm -f "$TLS/broker.csr"
  fi
  chmod 600 "$TLS"/*
}

# The broker's configuration, rewritten on every start from the environment.
kafka_config() {
  local ks_pw plain_pw jaas_plain jaas_scram
  ks_pw=$(cat "$TLS/keystore.password")
  plain_pw=$(cat "$TLS/plain.password")
  jaas_plain="org.apache.kafka.common.security.plain.PlainLoginModule required user_sluice=\"$plain_pw\";"
  jaas_scram="org.apache.kafka.common.security.scram.ScramLoginModule required;"
  cat >"$KDATA/server.properties" <<PROPS
# Written by deploy/local/stack.sh on every start: edit the script instead.
process.roles=broker,controller
node.id=1
controller.quorum.bootstrap.servers=127.0.0.1:$KAFKA_CONTROLLER_PORT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
# PROXIED listens on KAFKA_PROXY_PORT-1 but advertises KAFKA_PROXY_PORT, where
# tests (internal/testenv) may put a TCP proxy: every connection of a client
# that bootstraps there then goes through the proxy, which is how a test cuts
# Kafka off from its own clients without stopping it for everyone else.
# SSL (client certificate required), SASL_SSL and SASL_PLAINTEXT are for the
# TLS and SASL tests; their material is made by kafka_tls.
listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT,CONTROLLER://127.0.0.1:$KAFKA_CONTROLLER_PORT,PROXIED://127.0.0.1:$((KAFKA_PROXY_PORT - 1)),SSL://127.0.0.1:$KAFKA_SSL_PORT,SASL_SSL://127.0.0.1:$KAFKA_SASL_SSL_PORT,SASL_PLAINTEXT://127.0.0.1:$KAFKA_SASL_PORT
advertised.listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT,PROXIED://127.0.0.1:$KAFKA_PROXY_PORT,SSL://127.0.0.1:$KAFKA_SSL_PORT,SASL_SSL://127.0.0.1:$KAFKA_SASL_SSL_PORT,SASL_PLAINTEXT://127.0.0.1:$KAFKA_SASL_PORT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT,PROXIED:PLAINTEXT,SSL:SSL,SASL_SSL:SASL_SSL,SASL_PLAINTEXT:SASL_PLAINTEXT
ssl.keystore.type=PKCS12
ssl.keystore.location=$TLS/broker.p12
ssl.keystore.password=$ks_pw
ssl.key.password=$ks_pw
ssl.truststore.type=PEM
ssl.truststore.location=$TLS/ca.crt
listener.name.ssl.ssl.client.auth=required
sasl.enabled.mechanisms=PLAIN,SCRAM-SHA-256,SCRAM-SHA-512
listener.name.sasl_ssl.plain.sasl.jaas.config=$jaas_plain
listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config=$jaas_scram
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=$jaas_scram
listener.name.sasl_plaintext.plain.sasl.jaas.config=$jaas_plain
listener.name.sasl_plaintext.scram-sha-256.sasl.jaas.config=$jaas_scram
listener.name.sasl_plaintext.scram-sha-512.sasl.jaas.config=$jaas_scram
log.dirs=$KDATA/logs
# One node: every internal topic with one replica, and no waiting for more.
offsets.topic.replication.factor=1
offsets.topic.num.partitions=10
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
min.insync.replicas=1
group.initial.rebalance.delay.ms=0
# The product creates its topics itself.
auto.create.topics.enable=false
num.partitions=1
message.max.bytes=8388608
log.retention.hours=24
PROPS
  chmod 600 "$KDATA/server.properties" # it holds the test passwords
}

# Seconds left before $deadline (60 when none is set), at least 1.
time_left() {
  local n=$((${deadline:-$((SECONDS + 60))} - SECONDS))
  echo $((n < 1 ? 1 : n))
}

# kafka_tool CLASS ARGS...: run one of Kafka's command-line tools, for at
# most time_left seconds (its admin client would otherwise retry for 60 s).
kafka_tool() {
  need_java
  timeout "$(time_left)" "$JAVA" -Xmx256m -XX:TieredStopAtLevel=1 -Djava.awt.headless=true \
    -Dlog4j2.configurationFile="$here/kafka/tools-log4j2.yaml" -cp "$KDIR/lib/*" "$@"
}

kafka_start() {
  if alive kafka; then return; fi
  if port_open "$KAFKA_PORT"; then die "port $KAFKA_PORT is taken by a process not in $RUN/kafka.pid: stop it first"; fi
  need_java
  kafka_install
  mkdir -p "$KDATA" "$LOGS" "$RUN"
  kafka_tls
  kafka_config
  # Format once: meta.properties in the log dir is the marker.
  if [ ! -f "$KDATA/logs/meta.properties" ]; then
    log "formatting Kafka storage (cluster id $KAFKA_CLUSTER_ID)"
    kafka_tool kafka.tools.StorageTool format --standalone -t "$KAFKA_CLUSTER_ID" \
      -c "$KDATA/server.properties" >>"$KLOG" 2>&1 || { tail -n 60 "$KLOG" >&2; die "formatting Kafka storage failed"; }
  fi
  log "starting Kafka $KAFKA_VERSION on 127.0.0.1:$KAFKA_PORT"
  # shellcheck disable=SC2086 # KAFKA_HEAP_OPTS is a list of JVM options
  launch kafka "$KLOG" "$JAVA" $KAFKA_HEAP_OPTS -XX:+UseG1GC -Djava.awt.headless=true \
    -Dlog4j2.configurationFile="$here/kafka/log4j2.yaml" -cp "$KDIR/lib/*" \
    kafka.Kafka "$KDATA/server.properties"
}

# Healthy when a client gets metadata back: the port answers and listing the
# topics succeeds (a JVM start, about 2 s; the admin client retries while the
# broker is still catching up).
kafka_healthy() {
  port_open "$KAFKA_PORT" &&
    kafka_tool org.apache.kafka.tools.TopicCommand --bootstrap-server "127.0.0.1:$KAFKA_PORT" --list >/dev/null 2>&1
}

# --- Elasticsearch -----------------------------------------------------------

es_install() {
  [ -f "$EDIR/.installed" ] && return
  command -v mvn >/dev/null || die "mvn not found: install Maven"
  local art=org.elasticsearch.distribution.integ-test-zip:elasticsearch:$ES_VERSION:zip
  local zip=$LOCAL/download/elasticsearch-$ES_VERSION.zip tmp=$LOCAL/download/unpack
  log "fetching Elasticsearch $ES_VERSION with mvn ($art)"
  mkdir -p "$LOGS"
  mvn -B -Dstyle.color=never org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy \
    -Dartifact="$art" -DoutputDirectory="$LOCAL/download" >"$LOGS/mvn.log" 2>&1 ||
    { tail -n 60 "$LOGS/mvn.log" >&2; die "mvn could not fetch $art (log: $LOGS/mvn.log)"; }
  rm -rf "$EDIR" "$tmp" && mkdir -p "$tmp"
  if command -v unzip >/dev/null; then
    unzip -q "$zip" -d "$tmp"
  else # Python's zipfile drops the files' modes: make the launchers executable again.
    python3 -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])' "$zip" "$tmp" ||
      die "cannot unpack $zip: install unzip (or python3)"
    chmod +x "$tmp"/elasticsearch-*/bin/*
  fi
  mv "$tmp"/elasticsearch-* "$EDIR" && rmdir "$tmp"
  rm -f "$zip" # the Maven repository keeps a copy
  touch "$EDIR/.installed"
}

# es_user: the user Elasticsearch runs as. As root that is $ES_USER, which
# must own what Elasticsearch writes (config/ for its keystore, data, logs)
# and be able to reach the install through every parent directory.
es_user() {
  if [ "$(id -u)" != 0 ]; then id -un; return; fi
  if ! id "$ES_USER" >/dev/null 2>&1; then
    log "creating system user $ES_USER to run Elasticsearch (it refuses to run as root)"
    useradd --system --user-group --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin "$ES_USER" ||
      die "cannot create user $ES_USER"
  fi
  chown -R "$ES_USER:" "$EDIR/config" "$EDATA" "$LOGS/elasticsearch"
  # Top down, so that each directory is tested through parents it can reach.
  local d="" part parts
  IFS=/ read -ra parts <<<"${EDIR#/}"
  for part in "${parts[@]}"; do
    d=$d/$part
    if ! setpriv --reuid="$ES_USER" --regid="$ES_USER" --init-groups test -x "$d"; then
      log "letting others traverse $d (for $ES_USER)"
      chmod o+x "$d"
    fi
  done
  echo "$ES_USER"
}

es_start() {
  if alive es; then return; fi
  if port_open "$ES_PORT"; then die "port $ES_PORT is taken by a process not in $RUN/es.pid: stop it first"; fi
  es_install
  mkdir -p "$EDATA" "$LOGS/elasticsearch" "$RUN"
  local user java_home
  user=$(es_user)
  if [ -z "${ES_JAVA_HOME:-}" ]; then need_java; fi
  java_home=${ES_JAVA_HOME:-$(dirname "$(dirname "$(readlink -f "$JAVA")")")}
  local cmd=(env ES_JAVA_HOME="$java_home" ES_JAVA_OPTS="$ES_JAVA_OPTS" "$EDIR/bin/elasticsearch"
    -E cluster.name=sluice-local -E discovery.type=single-node
    -E network.host=127.0.0.1 -E http.port="$ES_PORT" -E transport.port=$((ES_PORT + 100))
    -E path.data="$EDATA" -E path.logs="$LOGS/elasticsearch"
    # Tests run on nearly full disks too: never turn indices read-only.
    -E cluster.routing.allocation.disk.threshold_enabled=false
    -E action.destructive_requires_name=false -E http.max_content_length=200mb)
  # The integ-test-zip distribution has x-pack security (on by default) but
  # not every distribution does, and unknown settings are fatal.
  if [ -d "$EDIR/modules/x-pack-security" ]; then cmd+=(-E xpack.security.enabled=false); fi
  log "starting Elasticsearch $ES_VERSION on 127.0.0.1:$ES_PORT as $user"
  if [ "$(id -u)" = 0 ]; then
    # setpriv execs (no fork, unlike runuser), so the recorded pid is the server's.
    launch es "$ELOG" setpriv --reuid="$user" --regid="$user" --init-groups --reset-env "${cmd[@]}"
  else
    launch es "$ELOG" "${cmd[@]}"
  fi
}

es_healthy() {
  curl -sf --max-time 5 "http://127.0.0.1:$ES_PORT/_cluster/health?wait_for_status=yellow&timeout=1s" 2>/dev/null |
    grep -Eq '"status":"(green|yellow)"'
}

# --- commands ----------------------------------------------------------------

# One command at a time changes the stack (go test runs packages in parallel,
# and each may ask for `up`).
lock() {
  mkdir -p "$RUN"
  exec 9>"$RUN/stack.lock"
  flock -w "$TIMEOUT" 9 || die "another stack.sh held $RUN/stack.lock for ${TIMEOUT}s"
}

# Kafka already runs and answers on its port: the fast path of `up`, which
# skips the slower metadata check.
kafka_running() { alive kafka && port_open "$KAFKA_PORT"; }

# Sourced (deploy/local/cluster.sh): the functions above only.
if [ "${BASH_SOURCE[0]}" != "$0" ]; then return 0; fi

case "${1:-}" in
  up)
    lock
    # Start both before waiting, so they boot side by side.
    kafka_was_up=false
    if kafka_running; then kafka_was_up=true; else kafka_start; fi
    es_start
    deadline=$((SECONDS + TIMEOUT))
    $kafka_was_up || wait_healthy kafka kafka_healthy "$KLOG"
    wait_healthy es es_healthy "$ELOG"
    log "up: Kafka 127.0.0.1:$KAFKA_PORT (SSL :$KAFKA_SSL_PORT, SASL_SSL :$KAFKA_SASL_SSL_PORT, SASL_PLAINTEXT :$KAFKA_SASL_PORT), Elasticsearch http://127.0.0.1:$ES_PORT"
    ;;
  down) lock; stop kafka; stop es ;;
  clean)
    lock; stop kafka; stop es
    rm -rf "$KDATA" "$EDATA" "$KLOG" "$ELOG" "$LOGS/elasticsearch"
    ;;
  status)
    ok=0
    if alive kafka && kafka_healthy; then echo "kafka: up (127.0.0.1:$KAFKA_PORT)"; else echo "kafka: down"; ok=1; fi
    if alive es && es_healthy; then echo "elasticsearch: up (http://127.0.0.1:$ES_PORT)"; else echo "elasticsearch: down"; ok=1; fi
    exit $ok
    ;;
  kafka-stop) lock; stop kafka ;;
  kafka-start)
    lock
    if ! kafka_running; then
      kafka_start
      deadline=$((SECONDS + TIMEOUT))
      wait_healthy kafka kafka_healthy "$KLOG"
    fi
    ;;
  es-stop) lock; stop es ;;
  es-start)
    lock
    es_start
    deadline=$((SECONDS + TIMEOUT))
    wait_healthy es es_healthy "$ELOG"
    ;;
  topic)
    kafka_tool org.apache.kafka.tools.TopicCommand --bootstrap-server "127.0.0.1:$KAFKA_PORT" --create \
      --if-not-exists --topic "${2:?usage: stack.sh topic NAME [PARTITIONS]}" --partitions "${3:-6}" \
      --replication-factor 1 --config max.message.bytes=8388608 >/dev/null
    ;;
  topic-delete)
    kafka_tool org.apache.kafka.tools.TopicCommand --bootstrap-server "127.0.0.1:$KAFKA_PORT" --delete \
      --if-exists --topic "${2:?usage: stack.sh topic-delete NAME}" >/dev/null
    ;;
  logs)
    case "${2:-}" in
      kafka) tail -n 100 "$KLOG" ;;
      es) tail -n 100 "$ELOG" ;;
      *) die "usage: stack.sh logs kafka|es" ;;
    esac
    ;;
  *) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
esac
