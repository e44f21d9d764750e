#!/usr/bin/env bash
# Local single-node Kafka (KRaft, broker+controller) for development, tests and demos.
#
#   deploy/local/kafka.sh up|down|status|logs [-f]
#
# Needs Java 17+ and Maven 3.8+ (Maven only the first time, to fetch the jars).
# The Kafka version is pinned in deploy/local/pom.xml (<kafka.version>); the jars are
# cached in .cache/kafka/<version>/libs under the repo.
#
# Environment (all optional):
#   KAFKA_PORT             client port on 127.0.0.1            (default 9092)
#   KAFKA_CONTROLLER_PORT  KRaft controller port                 (default KAFKA_PORT+1)
#   KAFKA_DATA_DIR         config, logs and data                 (default var/kafka-<port>)
#   KAFKA_VERSION          overrides the version in pom.xml
#   KAFKA_HEAP_OPTS        JVM heap                              (default -Xmx512m -Xms128m)
#   KAFKA_START_TIMEOUT    seconds to wait for the broker        (default 90)
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
POM=$HERE/pom.xml

PORT=${KAFKA_PORT:-9092}
CPORT=${KAFKA_CONTROLLER_PORT:-$((PORT + 1))}
DATA=${KAFKA_DATA_DIR:-$REPO/var/kafka-$PORT}
VERSION=${KAFKA_VERSION:-$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$POM")}
LIBS=$REPO/.cache/kafka/$VERSION/libs
PIDFILE=$DATA/kafka.pid
LOG=$DATA/logs/server.log
TIMEOUT=${KAFKA_START_TIMEOUT:-90}

say() { echo "kafka.sh: $*"; }
die() { echo "kafka.sh: error: $*" >&2; exit 1; }

# PID of our broker if it is running (checks the command line, not just the pid).
running_pid() {
  local pid
  [[ -f $PIDFILE ]] || return 1
  pid=$(<"$PIDFILE")
  [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null || return 1
  ps -ww -p "$pid" -o args= 2>/dev/null | grep -qF "kafka.Kafka $DATA/server.properties" || return 1
  echo "$pid"
}

# A real Kafka request: ApiVersions v0 (api_key 18, correlation id 7, null client id).
# Reply: size(4) correlation_id(4) error_code(2) ...; we want correlation 7 and error 0.
probe() {
  local reply
  reply=$(timeout 5 bash -c '
    exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
    printf "\x00\x00\x00\x0a\x00\x12\x00\x00\x00\x00\x00\x07\xff\xff" >&3
    head -c 10 <&3 | od -An -tx1' _ "$PORT" 2>/dev/null | tr -d ' \n') || return 1
  [[ ${reply:8:12} == 000000070000 ]]
}

check_java() {
  command -v java >/dev/null || die "java not found (needs Java 17+)"
  local major
  major=$(java -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -1)
  [[ ${major:-0} -ge 17 ]] || die "Java 17+ required, found: $(java -version 2>&1 | head -1)"
}

# Fetch the broker jars once per version (into a temp dir, then renamed: no half caches).
resolve_jars() {
  [[ -f $LIBS/.complete ]] && return 0
  command -v mvn >/dev/null || die "mvn not found (Maven 3.8+ is needed to fetch Kafka $VERSION)"
  say "resolving Kafka $VERSION jars with Maven into $LIBS"
  local tmp=$LIBS.tmp.$$
  rm -rf "$tmp" && mkdir -p "$tmp"
  local t0=$SECONDS
  mvn -q -B -Dstyle.color=never -f "$POM" dependency:copy-dependencies -Dkafka.version="$VERSION" \
      -DoutputDirectory="$tmp" -DincludeScope=runtime \
    || { rm -rf "$tmp"; die "mvn could not resolve Kafka $VERSION"; }
  touch "$tmp/.complete"
  rm -rf "$LIBS" && mv "$tmp" "$LIBS"
  say "jars ready in $((SECONDS - t0))s"
}

write_config() {
  mkdir -p "$DATA/logs" "$DATA/data"
  cat >"$DATA/server.properties" <<EOF
# Written by deploy/local/kafka.sh; edits are overwritten on the next 'up'.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$CPORT
listeners=PLAINTEXT://127.0.0.1:$PORT,CONTROLLER://127.0.0.1:$CPORT
advertised.listeners=PLAINTEXT://127.0.0.1:$PORT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
log.dirs=$DATA/data
auto.create.topics.enable=true
num.partitions=4
default.replication.factor=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=4
group.initial.rebalance.delay.ms=0
EOF
  cat >"$DATA/log4j.properties" <<EOF
# INFO and above to logs/server.log, WARN and above to the console (console.log).
log4j.rootLogger=INFO, file, console
log4j.appender.file=org.apache.log4j.FileAppender
log4j.appender.file.File=$LOG
log4j.appender.file.layout=org.apache.log4j.PatternLayout
log4j.appender.file.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.appender.console=org.apache.log4j.ConsoleAppender
log4j.appender.console.Threshold=WARN
log4j.appender.console.layout=org.apache.log4j.PatternLayout
log4j.appender.console.layout.ConversionPattern=[%d] %p %m (%c)%n
EOF
}

format_storage() {
  [[ -f $DATA/data/meta.properties ]] && return 0
  local tool=(java -Dlog4j.configuration="file:$DATA/log4j.properties" -cp "$LIBS/*"
              kafka.tools.StorageTool)
  local id
  id=$("${tool[@]}" random-uuid)
  "${tool[@]}" format -t "$id" -c "$DATA/server.properties" >/dev/null \
    || die "formatting KRaft storage in $DATA/data failed"
  say "formatted KRaft storage (cluster id $id)"
}

start_broker() {
  [[ -f $LOG ]] && mv -f "$LOG" "$LOG.1"   # fresh log: the start marker below must be new
  local heap=${KAFKA_HEAP_OPTS:--Xmx512m -Xms128m}
  # setsid: the broker outlives the calling shell / make / pytest process group.
  # 9>&-: do not hand our lock to the broker.
  # shellcheck disable=SC2086
  setsid nohup java $heap -XX:+ExitOnOutOfMemoryError -Djava.awt.headless=true \
    -Dlog4j.configuration="file:$DATA/log4j.properties" -Dkafka.logs.dir="$DATA/logs" \
    -cp "$LIBS/*" kafka.Kafka "$DATA/server.properties" \
    </dev/null >"$DATA/logs/console.log" 2>&1 9>&- &
  echo $! >"$PIDFILE"
}

wait_ready() {
  local pid=$1 t0=$SECONDS
  while ((SECONDS - t0 < TIMEOUT)); do
    if ! kill -0 "$pid" 2>/dev/null; then
      rm -f "$PIDFILE"
      fail_with_logs "broker exited during startup"
    fi
    # Startup marker (when our log4j config is in effect) plus a real request.
    if { grep -q "Kafka Server started" "$LOG" 2>/dev/null || [[ ! -f $LOG ]]; } && probe; then
      say "ready on 127.0.0.1:$PORT (pid $pid, ${SECONDS}s)"
      return 0
    fi
    sleep 0.5
  done
  fail_with_logs "broker not ready on 127.0.0.1:$PORT after ${TIMEOUT}s (still running as pid $pid)"
}

fail_with_logs() {
  echo "kafka.sh: error: $1" >&2
  echo "---- tail of $LOG" >&2; tail -n 30 "$LOG" >&2 2>/dev/null || true
  echo "---- tail of $DATA/logs/console.log" >&2; tail -n 15 "$DATA/logs/console.log" >&2 2>/dev/null || true
  exit 1
}

cmd_up() {
  mkdir -p "$DATA"
  # One 'up' at a time per data dir (flock is in util-linux; skipped if absent).
  if command -v flock >/dev/null; then
    exec 9>"$DATA/.lock"
    flock -w 300 9 || die "another kafka.sh is busy with $DATA"
  fi
  local pid
  if pid=$(running_pid); then
    say "already running on 127.0.0.1:$PORT (pid $pid)"
    return 0
  fi
  probe && die "port $PORT already answers Kafka, but not from $DATA (another broker?)"
  check_java
  resolve_jars
  write_config
  format_storage
  start_broker
  say "starting Kafka $VERSION on 127.0.0.1:$PORT (controller $CPORT, data $DATA)"
  wait_ready "$(<"$PIDFILE")"
}

cmd_down() {
  local pid i
  if ! pid=$(running_pid); then
    rm -f "$PIDFILE"
    say "not running ($DATA)"
    return 0
  fi
  kill -TERM "$pid"
  for ((i = 0; i < 120; i++)); do   # a clean shutdown takes a few seconds
    kill -0 "$pid" 2>/dev/null || { rm -f "$PIDFILE"; say "stopped (pid $pid)"; return 0; }
    sleep 0.5
  done
  say "pid $pid ignored SIGTERM for 60s; killing it"
  kill -KILL "$pid" 2>/dev/null || true
  rm -f "$PIDFILE"
}

cmd_status() {
  local pid
  if pid=$(running_pid); then
    say "running on 127.0.0.1:$PORT (pid $pid, data $DATA)"
  else
    say "not running (data $DATA)"
    return 3
  fi
}

cmd_logs() {
  [[ -f $LOG ]] || die "no log yet at $LOG"
  if [[ ${1:-} == -f ]]; then tail -n 100 -F "$LOG"; else tail -n 200 "$LOG"; fi
}

case ${1:-} in
  up) cmd_up ;;
  down) cmd_down ;;
  status) cmd_status ;;
  logs) shift; cmd_logs "$@" ;;
  *) echo "usage: $0 up|down|status|logs [-f]" >&2; exit 2 ;;
esac
