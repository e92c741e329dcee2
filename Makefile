# streamd — the commands a developer runs. `make demo` and `make test` work on a fresh machine with Go.
GO       ?= go
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo devel)
LDFLAGS  := -X main.buildVersion=$(VERSION)
BIN      := bin/streamd
# The test suite; -race is on because every task runs on its own goroutine.
TESTFLAGS ?= -race -count=1 -timeout 30m

.PHONY: all build demo test test-short bench fuzz lint kafka-up kafka-down kafka-env clean

all: build

## build: a static, pure-Go binary (no libc to match on the target; smaller than a cgo build).
build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "-s -w $(LDFLAGS)" -o $(BIN) ./cmd/streamd

## demo: an in-process Kafka broker, the generator and the example pipeline, with live progress (30 s).
demo: build
	./$(BIN) demo -duration 30s

## test: the whole suite. Uses KAFKA_BROKERS when set (see kafka-up), else in-process kfake.
test:
	$(GO) test $(TESTFLAGS) ./...

test-short:
	$(GO) test -short -count=1 ./...

## fuzz: every fuzz target for FUZZTIME (1m) each, past the seeds that `make test` already runs
## (f.Add and testdata/fuzz/). FUZZ=regexp picks targets by name, e.g. FUZZ=FuzzParse.
FUZZTIME ?= 1m
FUZZ     ?= .
fuzz:
	GO=$(GO) FUZZTIME=$(FUZZTIME) FUZZ='$(FUZZ)' scripts/fuzz.sh

## bench: Go benchmarks of the hot paths (see docs/BENCHMARKS.md for recorded figures).
bench:
	$(GO) test -run '^$$' -bench . -benchmem -benchtime 2s ./...

## bench-e2e: the bare exactly-once loop, windows only and the ML pipelines against a real broker in
## one run (its own broker unless KAFKA_BROKERS is set): records/s, ratio to the bare loop, peak RSS,
## latency percentiles at 25% and 50% of saturation. About 15 minutes on 2 cores.
.PHONY: bench-e2e
bench-e2e:
	GO=$(GO) scripts/bench-e2e.sh

## bench-peers: streamd beside Kafka Streams 4.1 and Flink 2.2 (bench/peers, Maven) on three jobs
## (a 60 s tumbling window, the Yahoo Streaming Benchmark shape, per-event sliding features) against
## one real broker, every output checked against a reference; then River and Vowpal Wabbit beside
## streamd's learners. PEERS_RECORDS (200000) per input; results in bench/peers/results/. Needs Java
## 17 and Maven. 16 minutes on 2 cores under load (docs/BENCHMARKS.md).
.PHONY: bench-peers
bench-peers:
	GO=$(GO) scripts/bench-peers.sh

## lint: gofmt, go vet, and go.mod/go.sum exactly as `go mod tidy` leaves them (also in the nested
## module test/kafkatest/container, which keeps testcontainers-go out of streamd's module graph).
lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) mod tidy -diff
	cd test/kafkatest/container && $(GO) mod tidy -diff && $(GO) vet ./...

## chaos: streamd for CHAOS_DURATION (10m) under SIGKILLs, broker restarts, disk faults and corrupt
## state, on a broker of its own, then an exactly-once check (docs/RELIABILITY.md has the figures).
CHAOS_DURATION ?= 10m
.PHONY: chaos
chaos:
	$(GO) run ./test/chaos -duration $(CHAOS_DURATION)

## failover-bench: TestFailoverToStandby with 1M keys of state (FAILOVER_KEYS) on the broker in
## KAFKA_BROKERS, two instances with and without a standby replica, and TestFailoverToStandbyThree,
## three instances with one (docs/BENCHMARKS.md has the figures).
FAILOVER_KEYS ?= 1000000
.PHONY: failover-bench
failover-bench:
	STREAMD_FAILOVER_KEYS=$(FAILOVER_KEYS) $(GO) test ./test/e2e -run TestFailoverToStandby -count=1 -timeout 30m -v

## kafka-up: a single-node KRaft Apache Kafka broker on 127.0.0.1:9092 from Maven Central (cached).
kafka-up:
	scripts/kafka.sh up

kafka-down:
	scripts/kafka.sh down

kafka-env:
	@scripts/kafka.sh env

clean:
	rm -rf bin
