#!/usr/bin/env bash
# The whole test suite, as `make test` and .ci/run run it: starts a real
# redis-server on loopback (installing it from Debian's packages if missing),
# runs every Go test against it, and stops it again, also on failure.
set -euo pipefail
cd "$(dirname "$0")/.."

export PORTALMAIL_RUN_DIR="${PORTALMAIL_RUN_DIR:-$(mktemp -d /tmp/portalmail-run.XXXXXX)}"
cleanup() {
	scripts/redis.sh stop >/dev/null 2>&1 || true
}
trap cleanup EXIT

redis_line=$(scripts/redis.sh start | tail -n 1)
export "${redis_line?}"
echo "test: real redis-server at ${REDIS_URL}" >&2

go vet ./...
go test -count=1 -timeout 20m "$@" ./...
