#!/usr/bin/env bash
# scripts/compose-check.sh: validate docker-compose.yml with Debian's
# docker-compose (installed with apt-get if missing). No Docker engine is
# needed: `config` only parses, interpolates (with .env.example as the
# environment file) and checks the file against the Compose schema.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v docker-compose >/dev/null 2>&1; then
	echo "compose-check: installing docker-compose (apt)" >&2
	SUDO=""
	if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
	$SUDO apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq docker-compose >/dev/null
fi

docker-compose --env-file .env.example -f docker-compose.yml config -q
for f in deploy/prometheus.yml deploy/alerts.yml deploy/grafana/portalmail.json \
	deploy/grafana/provisioning/datasources/prometheus.yml deploy/grafana/provisioning/dashboards/portalmail.yml; do
	[ -s "$f" ] || { echo "compose-check: $f missing" >&2; exit 1; }
done
echo "compose-check: docker-compose.yml is valid" >&2
