#!/usr/bin/env bash
# The fault suite (test/faults): `process` and `send` as OS processes of the
# built binary against a real Kafka broker, the suite's own redis-server
# (appendonly yes), srfake and the Mailgun fake. Uses the broker at
# KAFKA_BROKERS when set (scripts/test.sh starts one); otherwise starts one
# with scripts/kafka.sh and stops it again, also on failure.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -z "${KAFKA_BROKERS:-}" ]; then
	export PORTALMAIL_RUN_DIR="${PORTALMAIL_RUN_DIR:-$(mktemp -d /tmp/portalmail-run.XXXXXX)}"
	trap 'scripts/kafka.sh down >/dev/null 2>&1 || true' EXIT
	kafka_line=$(scripts/kafka.sh up | tail -n 1)
	case "$kafka_line" in
	KAFKA_BROKERS=*) export "${kafka_line?}" ;;
	*) echo "faults: the Kafka broker did not start" >&2; exit 1 ;;
	esac
fi
command -v redis-server >/dev/null 2>&1 || { echo "faults: redis-server missing (scripts/redis.sh start installs it)" >&2; exit 1; }
echo "faults: real Kafka broker at ${KAFKA_BROKERS}" >&2
start=$(date +%s)
PORTALMAIL_FAULTS=1 go test -count=1 -v -timeout 15m "$@" ./test/faults/
echo "faults: passed in $(( $(date +%s) - start ))s" >&2
