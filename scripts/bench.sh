#!/usr/bin/env bash
# Benchmarks against a real redis-server (started here, stopped on exit):
# the engine over a mixed stream, the state store, the process and send
# stages end to end (kfake broker), and template rendering.
set -euo pipefail
cd "$(dirname "$0")/.."
export PORTALMAIL_RUN_DIR="${PORTALMAIL_RUN_DIR:-$(mktemp -d /tmp/portalmail-bench.XXXXXX)}"
trap 'scripts/redis.sh stop >/dev/null 2>&1 || true' EXIT
redis_line=$(scripts/redis.sh start | tail -n 1)
export "${redis_line?}"
echo "bench: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), redis at ${REDIS_URL}" >&2
go test ./processor/ -run '^$' -bench EngineMixed -benchtime 50x -count 5 -cpu 1,2
go test ./state/ -run '^$' -bench ApplyChanges -count 3
go test ./processor/pipeline/ -run '^$' -bench 'Stage' -benchtime 1x -count 3
go test ./templates/ -run '^$' -bench Render -benchmem -count 3
