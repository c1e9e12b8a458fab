# portalmail — common tasks. `make test` is what CI runs (.ci/run).
GO ?= go

.PHONY: all build test test-faults test-debezium test-quick bench bench-e2e demo catalog simulate kafka-up kafka-down debezium-up debezium-down fmt vet

all: build

build:
	$(GO) build -o bin/portalmail ./cmd/portalmail

## test: the whole suite against a real redis-server (installed and started by scripts/test.sh)
test:
	scripts/test.sh

## test-faults: the fault suite (test/faults) against a real Kafka broker (started unless KAFKA_BROKERS is set)
test-faults:
	scripts/faults.sh

## test-debezium: test/debezium against the servers of kafka-up and debezium-up (docs/debezium.md)
test-debezium:
	eval "$$(scripts/kafka.sh status)" && eval "$$(scripts/debezium.sh status)" && \
		PORTALMAIL_DEBEZIUM=1 $(GO) test -count=1 -v -timeout 15m ./test/debezium/

## test-quick: go test with embedded fakes only (miniredis), nothing to install
test-quick:
	$(GO) test ./...

## bench: engine, state and stage benchmarks against a real redis-server and (stage rows) a real Kafka broker
bench:
	scripts/bench.sh

## bench-e2e: issue 10's end-to-end runs of the built binary on a real broker (cold, warm, latency, scaling, Redis Cluster, simulate, send) and of the Kafka Streams peer; see docs/benchmarks.md
bench-e2e:
	scripts/bench-e2e.sh

## demo: the whole pipeline on embedded parts, fed the bundled sample
demo:
	$(GO) run ./cmd/portalmail demo

## simulate: run the bundled sample through the engine
simulate:
	$(GO) run ./cmd/portalmail simulate --input examples/sample.jsonl --until 2027-01-31

catalog:
	$(GO) run ./cmd/portalmail catalog

kafka-up:
	scripts/kafka.sh up

kafka-down:
	scripts/kafka.sh down

## debezium-up: PostgreSQL and Kafka Connect with Debezium on the broker of kafka-up
debezium-up:
	scripts/debezium.sh up

debezium-down:
	scripts/debezium.sh down

fmt:
	gofmt -w .

vet:
	$(GO) vet ./...
