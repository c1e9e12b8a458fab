#!/usr/bin/env bash
# scripts/bench-e2e.sh (`make bench-e2e`): portalmail end to end on a real
# broker, issue 10's measurements. It starts what it needs unless given:
# a Kafka broker (scripts/kafka.sh; KAFKA_BROKERS to use another), a
# redis-server (scripts/redis.sh start; REDIS_URL) and a 3-master Redis
# Cluster (scripts/redis.sh cluster-start; REDIS_CLUSTER_URL), builds the
# portalmail binary and cmd/pmbench, generates the workload
# (cmd/pmbench gen: 80,050 snapshot rows + 300,000 changes, seed BENCH_SEED)
# and runs `pmbench e2e`, which serves srfake and the Mailgun fake and runs
# simulate, cold, warm, send, the Kafka Streams peer (test/bench/peer, its
# jars resolved with Maven), latency, scaling and cluster; it stops
# everything it started, also on failure.
#
# The Redis servers given or started are FLUSHED before every run: never
# point REDIS_URL or REDIS_CLUSTER_URL at data you want to keep.
#
# Environment:
#   BENCH_ONLY=cold,warm,...  scenarios (simulate,cold,warm,send,peer,latency,scaling,cluster; default all)
#   BENCH_RUNS=3              runs of cold and warm;  BENCH_SCALING_RUNS=1 of each scaling/cluster setup
#   BENCH_PARTITIONS=6        partitions per topic;    BENCH_SCALING_PARTITIONS=12 for scaling/cluster
#   BENCH_LATENCY_RATES=20000 changes/s of the latency runs, comma-separated (one run each)
#   BENCH_LATENCY_INSTANCES=1 process instances of the latency runs (above 1: on BENCH_SCALING_PARTITIONS)
#   BENCH_SIM_REDIS_RECORDS=100050  records `simulate --redis-url` reads (0: all 380,050; ~5 min)
#   BENCH_SEED=1              workload seed;  BENCH_INPUT=FILE  use this workload file instead
#   BENCH_WRAP=1              generate the JsonConverter schema/payload form (schemas.enable=true)
#   BENCH_BIN=FILE            measure this portalmail binary instead of building ./cmd/portalmail
#   BENCH_DIR                 logs, results.json, report.txt (default: under the run dir)
#   BENCH_WARMUP=1            one untimed warm run before the timed ones (0: none; it takes ~40 s)
#   BENCH_PROFILE=1           perf CPU profiles of the process stage and Redis in the first warm run
#                             (BENCH_DIR/profile/*.perf.data and perf report summaries *.txt)
#   BENCH_RESTARTS=5          restarts of a crashed process instance per run (as an orchestrator
#                             would) before the run is reported FAILED
#   KAFKA_BROKERS, REDIS_URL, REDIS_CLUSTER_URL   use these instead of starting them
#   KAFKA_PORT                broker port (default: 9092 or the next free pair)
#   PORTALMAIL_RUN_DIR        run root of the servers (default: a fresh mktemp dir)
set -euo pipefail
cd "$(dirname "$0")/.."

export PORTALMAIL_RUN_DIR="${PORTALMAIL_RUN_DIR:-$(mktemp -d /tmp/portalmail-bench-e2e.XXXXXX)}"
BENCH_DIR="${BENCH_DIR:-$PORTALMAIL_RUN_DIR/bench}"
mkdir -p "$BENCH_DIR"
log() { echo "bench-e2e: $*" >&2; }

stop_kafka=0 stop_redis=0 stop_cluster=0
cleanup() {
	if [ "$stop_kafka" = 1 ]; then scripts/kafka.sh down >/dev/null 2>&1 || true; fi
	if [ "$stop_redis" = 1 ]; then scripts/redis.sh stop >/dev/null 2>&1 || true; fi
	if [ "$stop_cluster" = 1 ]; then scripts/redis.sh cluster-stop >/dev/null 2>&1 || true; fi
	if [ "${BENCH_KEEP:-}" != 1 ]; then rm -f "$BENCH_DIR"/workload*.jsonl; fi
}
trap cleanup EXIT

wants() { [ -z "${BENCH_ONLY:-}" ] || [[ ",$BENCH_ONLY," == *",$1,"* ]]; }

if [ -z "${KAFKA_BROKERS:-}" ]; then
	stop_kafka=1
	kafka_line=$(scripts/kafka.sh up | tail -n 1)
	case "$kafka_line" in
	KAFKA_BROKERS=*) export "${kafka_line?}" ;;
	*) log "the Kafka broker did not start"; exit 1 ;;
	esac
	KAFKA_PID=$(cat "$PORTALMAIL_RUN_DIR/kafka/kafka.pid")
	export KAFKA_PID
fi
if [ -z "${REDIS_URL:-}" ]; then
	stop_redis=1
	redis_line=$(scripts/redis.sh start | tail -n 1)
	export "${redis_line?}"
fi
if [ -z "${REDIS_CLUSTER_URL:-}" ] && wants cluster; then
	stop_cluster=1
	cluster_line=$(scripts/redis.sh cluster-start | tail -n 1)
	export "${cluster_line?}"
fi

if wants peer && ! command -v javac >/dev/null 2>&1; then
	log "no javac (a JDK 17+ compiles the peer): the peer scenario is skipped"
elif wants peer; then
	log "resolving the Kafka Streams peer's classpath (test/bench/peer/pom.xml)"
	PEER_CLASSPATH="$(KAFKA_POM="$PWD/test/bench/peer/pom.xml" scripts/kafka.sh classpath)"
	PEER_SOURCE="$PWD/test/bench/peer"
	export PEER_CLASSPATH PEER_SOURCE
fi

log "building portalmail and pmbench"
go build -o "$BENCH_DIR/pmbench" ./cmd/pmbench
if [ -n "${BENCH_BIN:-}" ]; then
	export PORTALMAIL_BIN="$BENCH_BIN"
else
	go build -o "$BENCH_DIR/portalmail" ./cmd/portalmail
	export PORTALMAIL_BIN="$BENCH_DIR/portalmail"
fi
if [ -z "${BENCH_INPUT:-}" ]; then
	BENCH_INPUT="$BENCH_DIR/workload.jsonl"
	wrap=()
	if [ "${BENCH_WRAP:-}" = 1 ]; then wrap=(--wrap); fi
	"$BENCH_DIR/pmbench" gen --out "$BENCH_INPUT" --seed "${BENCH_SEED:-1}" "${wrap[@]}" >"$BENCH_DIR/workload.txt"
fi
export BENCH_INPUT BENCH_DIR
if [ "${BENCH_PROFILE:-}" = 1 ]; then export BENCH_PROFILE_DIR="${BENCH_PROFILE_DIR:-$BENCH_DIR/profile}"; fi
PMBENCH_KAFKA_VERSION="$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' scripts/kafka/pom.xml)"
PMBENCH_COMMIT="$(git describe --always --dirty 2>/dev/null || echo unknown)"
export PMBENCH_KAFKA_VERSION PMBENCH_COMMIT

log "Kafka ${KAFKA_BROKERS}, Redis ${REDIS_URL}, cluster ${REDIS_CLUSTER_URL:-none}; results in $BENCH_DIR"
start=$(date +%s)
"$BENCH_DIR/pmbench" e2e "$@" | tee "$BENCH_DIR/report.txt"
log "done in $(($(date +%s) - start))s; report $BENCH_DIR/report.txt, every figure in $BENCH_DIR/results.json"
