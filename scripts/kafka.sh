#!/usr/bin/env bash
# kafka.sh runs a single-node KRaft Apache Kafka broker on loopback, from the jars on Maven Central.
#
#   scripts/kafka.sh up     fetch the jars (cached), format a fresh log dir, start, wait until it answers
#   scripts/kafka.sh down   stop the broker started by "up" and remove its data
#   scripts/kafka.sh restart  kill the broker started by "up" and start it again on the same data
#   scripts/kafka.sh env    print the KAFKA_BROKERS line for the running broker
#
# Settings (environment): KAFKA_VERSION (4.1.1), KAFKA_PORT (9092), KAFKA_CONTROLLER_PORT (19093),
# KAFKA_HEAP (512m), STREAMD_CACHE (~/.cache/streamd: where the jars are kept between runs),
# KAFKA_DIR (/tmp/streamd-kafka-$KAFKA_PORT: data, config, log, pid).
#
# KAFKA_SASL_PORT adds a second listener, SASL_PLAINTEXT on 127.0.0.1:$KAFKA_SASL_PORT, for tests of
# streamd's authentication (the PLAINTEXT listener stays, for the tests' own clients). It enables
# PLAIN and SCRAM-SHA-256/512 for the user $KAFKA_SASL_USER (streamd) with the password
# $KAFKA_SASL_PASSWORD (streamd-secret), and OAUTHBEARER with Kafka's unsecured JWS validator: it
# accepts an unsigned JWT (alg "none") with sub, iat and exp claims, and with the scope
# $KAFKA_OAUTHBEARER_SCOPE when that is set. For tests only: the unsecured validator checks no
# signature.
#
# The broker is tuned for tests on a small machine: replication factor 1 everywhere, few internal
# partitions, no initial rebalance delay, and a fast sweep of timed-out transactions, so that a
# killed transactional producer stops blocking read_committed readers quickly.
set -euo pipefail

KAFKA_VERSION=${KAFKA_VERSION:-4.1.1}
KAFKA_PORT=${KAFKA_PORT:-9092}
KAFKA_CONTROLLER_PORT=${KAFKA_CONTROLLER_PORT:-19093}
KAFKA_HEAP=${KAFKA_HEAP:-512m}
CACHE=${STREAMD_CACHE:-$HOME/.cache/streamd}
LIBS="$CACHE/kafka-$KAFKA_VERSION/libs"
DIR=${KAFKA_DIR:-/tmp/streamd-kafka-$KAFKA_PORT}
KAFKA_SASL_PORT=${KAFKA_SASL_PORT:-}
KAFKA_SASL_USER=${KAFKA_SASL_USER:-streamd}
KAFKA_SASL_PASSWORD=${KAFKA_SASL_PASSWORD:-streamd-secret}
KAFKA_OAUTHBEARER_SCOPE=${KAFKA_OAUTHBEARER_SCOPE:-}

log() { echo "kafka.sh: $*" >&2; }

fetch_jars() {
  if [ -f "$LIBS/.complete" ]; then return; fi
  command -v mvn >/dev/null || { log "mvn not found: Maven is needed to fetch Kafka from Maven Central"; exit 1; }
  command -v java >/dev/null || { log "java not found: Kafka needs Java 17 or newer"; exit 1; }
  local pomdir="$CACHE/kafka-$KAFKA_VERSION/pom"
  mkdir -p "$pomdir" "$LIBS"
  cat >"$pomdir/pom.xml" <<EOF
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>dev.streamd</groupId><artifactId>kafka-broker</artifactId><version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka_2.13</artifactId><version>$KAFKA_VERSION</version></dependency>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka-tools</artifactId><version>$KAFKA_VERSION</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-slf4j-impl</artifactId><version>2.24.3</version></dependency>
  </dependencies>
</project>
EOF
  log "fetching Apache Kafka $KAFKA_VERSION from Maven Central into $LIBS"
  (cd "$pomdir" && mvn -q -B dependency:copy-dependencies -DoutputDirectory="$LIBS" -DincludeScope=runtime)
  touch "$LIBS/.complete"
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

up() {
  if [ -f "$DIR/pid" ] && kill -0 "$(cat "$DIR/pid")" 2>/dev/null; then
    log "already running (pid $(cat "$DIR/pid")) on 127.0.0.1:$KAFKA_PORT"
    env_line
    return
  fi
  if port_open "$KAFKA_PORT"; then log "port $KAFKA_PORT is taken by another process"; exit 1; fi
  if [ -n "$KAFKA_SASL_PORT" ] && port_open "$KAFKA_SASL_PORT"; then log "port $KAFKA_SASL_PORT is taken by another process"; exit 1; fi
  fetch_jars
  rm -rf "$DIR"
  mkdir -p "$DIR/data"
  local listeners="PLAINTEXT://127.0.0.1:$KAFKA_PORT" protocols="PLAINTEXT:PLAINTEXT"
  if [ -n "$KAFKA_SASL_PORT" ]; then
    listeners="$listeners,SASL_PLAINTEXT://127.0.0.1:$KAFKA_SASL_PORT"
    protocols="$protocols,SASL_PLAINTEXT:SASL_PLAINTEXT"
  fi
  cat >"$DIR/server.properties" <<EOF
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$KAFKA_CONTROLLER_PORT
listeners=$listeners,CONTROLLER://127.0.0.1:$KAFKA_CONTROLLER_PORT
advertised.listeners=$listeners
controller.listener.names=CONTROLLER
listener.security.protocol.map=$protocols,CONTROLLER:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
log.dirs=$DIR/data
num.partitions=4
auto.create.topics.enable=false
offsets.topic.replication.factor=1
offsets.topic.num.partitions=8
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=8
group.initial.rebalance.delay.ms=0
transaction.abort.timed.out.transaction.cleanup.interval.ms=2000
log.segment.bytes=67108864
num.network.threads=2
num.io.threads=4
background.threads=4
EOF
  local format_opts=()
  if [ -n "$KAFKA_SASL_PORT" ]; then
    sasl_listener_config >>"$DIR/server.properties"
    # SCRAM credentials live in the cluster metadata: format writes them there before the start.
    format_opts=(--add-scram "SCRAM-SHA-256=[name=$KAFKA_SASL_USER,password=$KAFKA_SASL_PASSWORD]"
      --add-scram "SCRAM-SHA-512=[name=$KAFKA_SASL_USER,password=$KAFKA_SASL_PASSWORD]")
  fi
  cat >"$DIR/log4j2.properties" <<EOF
status = error
appender.file.type = File
appender.file.name = file
appender.file.fileName = $DIR/server.log
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = info
rootLogger.appenderRef.file.ref = file
logger.kafka.name = kafka
logger.kafka.level = warn
logger.apache.name = org.apache.kafka
logger.apache.level = warn
EOF
  local id
  id=$(java -cp "$LIBS/*" -Dlog4j2.configurationFile="$DIR/log4j2.properties" kafka.tools.StorageTool random-uuid)
  java -cp "$LIBS/*" -Dlog4j2.configurationFile="$DIR/log4j2.properties" \
    kafka.tools.StorageTool format -t "$id" -c "$DIR/server.properties" "${format_opts[@]}" >"$DIR/format.log" 2>&1 \
    || { log "formatting the log dir failed:"; cat "$DIR/format.log" >&2; exit 1; }
  launch
}

# sasl_listener_config prints the settings of the SASL_PLAINTEXT listener (see KAFKA_SASL_PORT).
sasl_listener_config() {
  local l=listener.name.sasl_plaintext scope=
  if [ -n "$KAFKA_OAUTHBEARER_SCOPE" ]; then scope=" unsecuredValidatorRequiredScope=\"$KAFKA_OAUTHBEARER_SCOPE\""; fi
  cat <<EOF
sasl.enabled.mechanisms=PLAIN,SCRAM-SHA-256,SCRAM-SHA-512,OAUTHBEARER
$l.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required user_$KAFKA_SASL_USER="$KAFKA_SASL_PASSWORD";
$l.scram-sha-256.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
$l.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
$l.oauthbearer.sasl.jaas.config=org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required unsecuredLoginStringClaim_sub="broker"$scope;
EOF
}

# launch starts the broker on the formatted log dir in $DIR and waits until it listens.
launch() {
  local jopts=(-Xms"$KAFKA_HEAP" -Xmx"$KAFKA_HEAP" -XX:+UseG1GC -XX:MaxGCPauseMillis=20
    -Djava.awt.headless=true -Dlog4j2.configurationFile="$DIR/log4j2.properties" -cp "$LIBS/*")
  nohup java "${jopts[@]}" kafka.Kafka "$DIR/server.properties" >>"$DIR/stdout.log" 2>&1 &
  echo $! >"$DIR/pid"
  local deadline=$((SECONDS + 90))
  until port_open "$KAFKA_PORT"; do
    if ! kill -0 "$(cat "$DIR/pid")" 2>/dev/null; then
      log "the broker exited during start-up; its output:"; tail -50 "$DIR/stdout.log" "$DIR/server.log" >&2 || true; exit 1
    fi
    if [ $SECONDS -ge $deadline ]; then
      log "the broker did not listen on 127.0.0.1:$KAFKA_PORT within 90 s"; tail -50 "$DIR/stdout.log" "$DIR/server.log" >&2 || true
      down; exit 1
    fi
    sleep 0.5
  done
  log "Apache Kafka $KAFKA_VERSION (KRaft) listening on 127.0.0.1:$KAFKA_PORT, pid $(cat "$DIR/pid"), data in $DIR"
  env_line
}

down() {
  if [ -f "$DIR/pid" ]; then
    local pid; pid=$(cat "$DIR/pid")
    if kill -0 "$pid" 2>/dev/null; then
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
      kill -9 "$pid" 2>/dev/null || true
    fi
  fi
  rm -rf "$DIR"
  log "stopped"
}

# restart kills the broker (SIGKILL: a crash, not a clean stop) and starts it again on the same data
# after $KAFKA_DOWN_SECONDS (default 0), as a broker that crashed and came back does.
restart() {
  [ -f "$DIR/pid" ] || { log "no broker started by 'up' in $DIR"; exit 1; }
  local pid; pid=$(cat "$DIR/pid")
  kill -9 "$pid" 2>/dev/null || true
  while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
  sleep "${KAFKA_DOWN_SECONDS:-0}"
  launch
}

env_line() { echo "KAFKA_BROKERS=127.0.0.1:$KAFKA_PORT"; }

case "${1:-}" in
  up) up ;;
  down) down ;;
  restart) restart ;;
  env) env_line ;;
  fetch) fetch_jars ;;
  *) echo "usage: $0 up|down|restart|env|fetch" >&2; exit 2 ;;
esac
