#!/usr/bin/env bash
# bench-peers.sh: `make bench-peers`, streamd beside Kafka Streams and Apache Flink on the same three
# jobs against one real broker (test/peers; the jobs in bench/peers), then River and Vowpal Wabbit
# beside streamd's learners on the same rows (scripts/learn_peers.py, BenchmarkRiverRows,
# TestRiverPhishing, TestRiverRegression). Results go to bench/peers/results/ (DATE.md, DATE.json,
# DATE-learn.md); docs/BENCHMARKS.md quotes them.
#
# Settings (environment): PEERS_RECORDS (200000: records of each input), PEERS_FLAGS (more flags to
# test/peers, e.g. "-jobs window -systems baseline,streamd,flink" or "-load-max 0.5 -load-wait 5m"),
# PEERS_LEARN (1; 0 skips the learning half), KAFKA_BROKERS (a broker to use; otherwise one of its
# own from scripts/kafka.sh on BENCH_KAFKA_PORT, default 9794, stopped afterwards).
set -euo pipefail
cd "$(dirname "$0")/.."
GO=${GO:-go}
RESULTS=bench/peers/results
mkdir -p "$RESULTS" bin

# Build: the jars from Maven Central (offline when every artifact is cached), and test/bench.
for m in kstreams flink; do
  (cd bench/peers/$m && { mvn -q -o -B package 2>/dev/null || mvn -q -B package; })
done
$GO build -o bin/bench ./test/bench

if [ -z "${KAFKA_BROKERS:-}" ]; then
  export KAFKA_PORT=${BENCH_KAFKA_PORT:-9794} KAFKA_CONTROLLER_PORT=${BENCH_KAFKA_CONTROLLER_PORT:-19795}
  export KAFKA_DIR=/tmp/streamd-bench-peers-kafka-$$
  trap 'scripts/kafka.sh down || true' EXIT
  scripts/kafka.sh up
  export KAFKA_BROKERS=127.0.0.1:$KAFKA_PORT
fi
# shellcheck disable=SC2086
$GO run ./test/peers -brokers "$KAFKA_BROKERS" -records "${PEERS_RECORDS:-200000}" -results "$RESULTS" ${PEERS_FLAGS:-}

if [ "${PEERS_LEARN:-1}" = 1 ]; then
  VENV=${STREAMD_RIVER_VENV:-$HOME/.cache/streamd-river}
  [ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
  "$VENV/bin/python" -c 'import river' 2>/dev/null || "$VENV/bin/pip" install -q river==0.26.1
  "$VENV/bin/python" -c 'import vowpalwabbit' 2>/dev/null || "$VENV/bin/pip" install -q vowpalwabbit \
    || echo "bench-peers: vowpalwabbit did not install; the table has River only" >&2
  out="$RESULTS/$(date -u +%Y-%m-%dT%H%MZ)-learn.md"
  {
    echo "# Learning: River and Vowpal Wabbit beside streamd, $(date -u +%Y-%m-%d), $(nproc) cores"
    echo
    echo '## River and Vowpal Wabbit (`scripts/learn_peers.py`)'
    echo
    "$VENV/bin/python" scripts/learn_peers.py
    echo
    echo '## streamd on the same rows (`go test ./online -run "TestRiverPhishing|TestRiverRegression" -v`, `-bench BenchmarkRiverRows`)'
    echo
    echo '```'
    $GO test ./online -run 'TestRiverPhishing$|TestRiverRegression$' -count=1 -v 2>&1 | grep -E 'streamd|River|Phishing:|^(ok|FAIL)'
    $GO test ./online -run '^$' -bench BenchmarkRiverRows -benchtime 2s -count=1 2>&1 | grep -E '^Benchmark|^(ok|FAIL)'
    echo '```'
  } | tee "$out"
fi
