#!/usr/bin/env bash
# bench-e2e.sh: the end-to-end benchmark of docs/BENCHMARKS.md in one run against a real broker: the
# bare franz-go exactly-once loop, windows only, the ML pipeline (ml) and the example pipeline (full) on a 2M-record backlog
# (records/s, ratio to the bare loop, peak RSS), then the bare loop and the ML pipeline again at 25%
# and 50% of their saturation rates (latency p50/p99/p99.9 from produce to a read_committed reader).
#
# With KAFKA_BROKERS set it uses that broker; otherwise it starts one of its own (scripts/kafka.sh, on
# BENCH_KAFKA_PORT, default 9792) and stops it afterwards. BENCH_FLAGS adds flags to test/bench
# (e.g. BENCH_FLAGS="-records 500000 -latency-duration 30s" for a shorter run).
set -euo pipefail
cd "$(dirname "$0")/.."
GO=${GO:-go}
if [ -z "${KAFKA_BROKERS:-}" ]; then
  export KAFKA_PORT=${BENCH_KAFKA_PORT:-9792} KAFKA_CONTROLLER_PORT=${BENCH_KAFKA_CONTROLLER_PORT:-19793}
  export KAFKA_DIR=/tmp/streamd-bench-kafka-$$
  trap 'scripts/kafka.sh down || true' EXIT
  scripts/kafka.sh up
  export KAFKA_BROKERS=127.0.0.1:$KAFKA_PORT
fi
echo "== $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, $($GO version | cut -d' ' -f3), broker $KAFKA_BROKERS"
# shellcheck disable=SC2086
$GO run ./test/bench -brokers "$KAFKA_BROKERS" -records 2000000 -workloads baseline,window,ml,full \
  -latency baseline,ml ${BENCH_FLAGS:-}
