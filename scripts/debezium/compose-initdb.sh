#!/usr/bin/env bash
# docker-compose (profile cdc): run by the postgres image on its first start
# (/docker-entrypoint-initdb.d): creates the databases portal and service with
# the tables of scripts/debezium/portal.sql and service.sql (mounted at
# /portalmail), as scripts/debezium.sh does on the host.
set -euo pipefail
for db in portal service; do
	psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres -c "CREATE DATABASE $db"
	psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$db" -f "/portalmail/$db.sql"
done
