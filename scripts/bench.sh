#!/usr/bin/env bash
# Benchmarks against a real redis-server and a real Kafka broker (both
# started here unless REDIS_URL / KAFKA_BROKERS are set, and stopped on exit):
# the engine over a mixed stream, the state store, the process and send
# stages (once on kfake, once on the real broker: processor/pipeline's rig
# uses KAFKA_BROKERS when set, kfake otherwise), and template rendering.
# The end-to-end runs of the built binary are scripts/bench-e2e.sh.
#
# Environment: KAFKA_PORT picks the broker's port (default: 9092, or the next
# free pair); SKIP_KAFKA=1 runs the stage benchmarks on kfake only.
set -euo pipefail
cd "$(dirname "$0")/.."
export PORTALMAIL_RUN_DIR="${PORTALMAIL_RUN_DIR:-$(mktemp -d /tmp/portalmail-bench.XXXXXX)}"
stop_redis=0 stop_kafka=0
cleanup() {
	if [ "$stop_redis" = 1 ]; then scripts/redis.sh stop >/dev/null 2>&1 || true; fi
	if [ "$stop_kafka" = 1 ]; then scripts/kafka.sh down >/dev/null 2>&1 || true; fi
}
trap cleanup EXIT

if [ -z "${REDIS_URL:-}" ]; then
	stop_redis=1
	redis_line=$(scripts/redis.sh start | tail -n 1)
	export "${redis_line?}"
fi
if [ -z "${KAFKA_BROKERS:-}" ] && [ "${SKIP_KAFKA:-}" != 1 ]; then
	stop_kafka=1
	kafka_line=$(scripts/kafka.sh up | tail -n 1)
	case "$kafka_line" in
	KAFKA_BROKERS=*) export "${kafka_line?}" ;;
	*) echo "bench: the Kafka broker did not start" >&2; exit 1 ;;
	esac
fi
brokers="${KAFKA_BROKERS:-}"
echo "bench: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), redis at ${REDIS_URL}, kafka at ${brokers:-none}, load $(cut -d' ' -f1-3 /proc/loadavg)" >&2
# The engine and the state store do not use Kafka.
env -u KAFKA_BROKERS go test ./processor/ -run '^$' -bench EngineMixed -benchtime 50x -count 5 -cpu 1,2
env -u KAFKA_BROKERS go test ./state/ -run '^$' -bench 'Apply(Changes|Steady)' -count 3
echo "bench: process and send stages on kfake (in-process broker over TCP)" >&2
env -u KAFKA_BROKERS go test ./processor/pipeline/ -run '^$' -bench 'Stage' -benchtime 1x -count 3
if [ -n "$brokers" ]; then
	echo "bench: process and send stages on the real broker at $brokers (load $(cut -d' ' -f1-3 /proc/loadavg))" >&2
	KAFKA_BROKERS="$brokers" go test ./processor/pipeline/ -run '^$' -bench 'Stage' -benchtime 1x -count 3
fi
env -u KAFKA_BROKERS go test ./templates/ -run '^$' -bench Render -benchmem -count 3
