#!/usr/bin/env bash
# The whole test suite, as `make test` and .ci/run run it: starts a real
# redis-server and a real Apache Kafka broker (scripts/kafka.sh: KRaft, jars
# from Maven Central) on loopback, installing redis-server, kcat and
# Confluent's Python client (python3-confluent-kafka, python3-avro, for
# docs/data.md's example) from Debian's packages if missing, then PostgreSQL
# with Kafka Connect and the Debezium connector on that broker
# (scripts/debezium.sh), and a 3-master Redis Cluster (scripts/redis.sh
# cluster-start), runs every Go test against them under the race detector (REDIS_URL,
# KAFKA_BROKERS; PG_URL, CONNECT_URL and PORTALMAIL_DEBEZIUM=1 for
# test/debezium; the state and pipeline tests once more with REDIS_URL the
# cluster), validates docker-compose.yml (scripts/compose-check.sh),
# fuzzes for a bounded time, runs the deploy/ module's tests (the Kubernetes
# manifests, kustomize), then runs the fault suite (scripts/faults.sh), and
# stops everything again, also on failure. The temporary run dir (servers'
# files and logs) is removed when everything passed, and kept, with its path
# printed, when not. A server that does not start fails the run (with its
# log); there is no fall back to kfake here. Java 17+ and Maven (for the
# broker) are installed from Debian's packages by scripts/kafka.sh when
# missing; gcc (for -race) by this script.
#
# Environment: SKIP_FAULTS=1 skips the fault suite; SKIP_DEBEZIUM=1 skips
# PostgreSQL, Connect and test/debezium; KAFKA_PORT picks the broker's port
# (default: 9092, or the next free one).
set -euo pipefail
cd "$(dirname "$0")/.."

own_run_dir=""
if [ -z "${PORTALMAIL_RUN_DIR:-}" ]; then
	PORTALMAIL_RUN_DIR="$(mktemp -d /tmp/portalmail-run.XXXXXX)"
	own_run_dir="$PORTALMAIL_RUN_DIR"
fi
export PORTALMAIL_RUN_DIR
cleanup() {
	status=$?
	scripts/debezium.sh down >/dev/null 2>&1 || true
	scripts/kafka.sh down >/dev/null 2>&1 || true
	scripts/redis.sh stop >/dev/null 2>&1 || true
	scripts/redis.sh cluster-stop >/dev/null 2>&1 || true
	# The run dir this script made goes on success; on failure its logs stay.
	if [ "$status" -eq 0 ] && [ -n "$own_run_dir" ]; then
		rm -rf "$own_run_dir"
	elif [ "$status" -ne 0 ]; then
		echo "test: failed; servers' logs kept in ${PORTALMAIL_RUN_DIR}" >&2
	fi
}
trap cleanup EXIT

if ! command -v kcat >/dev/null 2>&1; then
	echo "test: kcat not found: installing it with apt-get" >&2
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq >&2
	apt-get install -y -qq kcat >&2
fi
# docs/data.md's example reads the topics with Confluent's Python client.
if ! /usr/bin/python3 -c "import confluent_kafka.avro, avro" >/dev/null 2>&1; then
	echo "test: python3-confluent-kafka/python3-avro not found: installing them with apt-get" >&2
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq >&2
	apt-get install -y -qq --no-install-recommends python3-confluent-kafka python3-avro >&2
fi
# The race detector needs cgo and a C compiler.
if ! command -v gcc >/dev/null 2>&1; then
	echo "test: gcc not found (the race detector needs it): installing it with apt-get" >&2
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq >&2
	apt-get install -y -qq --no-install-recommends gcc libc6-dev >&2
fi
export CGO_ENABLED=1
# Tests that need those tools fail, rather than skip, without them.
export PORTALMAIL_REQUIRE_TOOLS=1

redis_line=$(scripts/redis.sh start | tail -n 1)
export "${redis_line?}"
echo "test: real redis-server at ${REDIS_URL}" >&2
cluster_line=$(scripts/redis.sh cluster-start | tail -n 1)
case "$cluster_line" in
REDIS_CLUSTER_URL=*) export "${cluster_line?}" ;;
*) echo "test: the Redis Cluster did not start" >&2; exit 1 ;;
esac
echo "test: real 3-master Redis Cluster at ${REDIS_CLUSTER_URL}" >&2

kafka_line=$(scripts/kafka.sh up | tail -n 1)
case "$kafka_line" in
KAFKA_BROKERS=*) export "${kafka_line?}" ;;
*) echo "test: the Kafka broker did not start" >&2; exit 1 ;;
esac
echo "test: real Kafka broker at ${KAFKA_BROKERS}" >&2

if [ "${SKIP_DEBEZIUM:-}" != 1 ]; then
	debezium_out=$(scripts/debezium.sh up | tail -n 2)
	case "$debezium_out" in
	PG_URL=*CONNECT_URL=*) ;;
	*) echo "test: PostgreSQL and Kafka Connect with Debezium did not start" >&2; exit 1 ;;
	esac
	while read -r line; do export "${line?}"; done <<<"$debezium_out"
	export PORTALMAIL_DEBEZIUM=1
	echo "test: PostgreSQL at ${PG_URL}, Kafka Connect with Debezium at ${CONNECT_URL}" >&2
fi

go vet ./...
scripts/compose-check.sh
# Under the race detector: a data race is a flaky test waiting to happen
# (ForEachMaster's concurrent callbacks once lost keys only on a Cluster).
go test -race -count=1 -timeout 20m "$@" ./...
# The state's Cluster path (one hash slot per script call) on a real
# cluster: every state test and the pipeline's end-to-end tests again.
REDIS_URL="$REDIS_CLUSTER_URL" go test -race -count=1 -timeout 10m "$@" ./state/... ./processor/pipeline/
# deploy/ is its own module (Kubernetes and kustomize stay out of go.mod).
(cd deploy && go vet ./... && go test -count=1 -timeout 10m ./...)

# Bounded fuzzing: whole CDC streams through the engine (no panic, replays
# exact, no key twice, redelivered prefixes emit nothing new) and the
# decoder on arbitrary records. The executions run are printed.
go test -run '^$' -fuzz '^FuzzCDCStream$' -fuzztime "${FUZZ_TIME:-45s}" ./processor/ 2>&1 | tail -n 3
go test -run '^$' -fuzz '^FuzzDecode$' -fuzztime "${FUZZ_TIME_DECODE:-20s}" ./schemas/cdc/ 2>&1 | tail -n 3

if [ "${SKIP_FAULTS:-}" != 1 ]; then
	scripts/faults.sh
fi
