#!/usr/bin/env bash
# scripts/debezium.sh: a real CDC producer for portalmail's tests: PostgreSQL
# (Debian's packages, wal_level=logical) with the databases `portal` and
# `service`, and Kafka Connect 4.3.0 with the Debezium PostgreSQL connector
# 3.6.1.Final (pgoutput, JsonConverter with schemas), run from jars resolved
# from Maven Central, writing to the broker of scripts/kafka.sh. See
# docs/debezium.md.
#
#   scripts/debezium.sh up          start PostgreSQL (initdb once, as the postgres OS
#                                   user), create both databases from scripts/debezium/*.sql,
#                                   start Connect, register scripts/debezium/*-connector.json,
#                                   wait until both connectors run and their snapshot is done
#   scripts/debezium.sh down        stop Connect and PostgreSQL; delete their data
#                                   unless KEEP_DEBEZIUM_DATA=1 (logs are kept)
#   scripts/debezium.sh status      exit 0 iff PostgreSQL answers and both connectors run
#   scripts/debezium.sh psql DB [ARGS...]   psql on DB (portal, service, postgres, ...)
#   scripts/debezium.sh classpath   print the Connect classpath (resolving it if needed)
#   scripts/debezium.sh logs        print the log dir
#
# `up` and `status` print exactly two lines on stdout, as their last lines:
#   PG_URL=postgresql://postgres@127.0.0.1:PORT      (append /DB)
#   CONNECT_URL=http://127.0.0.1:PORT                (Kafka Connect's REST API)
# every message goes to stderr. So `eval "$(scripts/debezium.sh up)"` works.
#
# Environment:
#   KAFKA_BROKERS        the broker Connect writes to (default: ask `scripts/kafka.sh status`
#                        in the same PORTALMAIL_RUN_DIR)
#   PG_PORT              PostgreSQL's port (default 5433, or the next free one)
#   CONNECT_PORT         Connect's REST port (default 8083, or the next free one)
#   PORTALMAIL_CACHE     cache root (default $HOME/.cache/portalmail); Maven repo in <cache>/m2
#   PORTALMAIL_RUN_DIR   run root (default /tmp/portalmail-run); files in <run>/debezium
#   KEEP_DEBEZIUM_DATA=1 `down` keeps the PostgreSQL data dir and Connect's offsets
#   CONNECT_HEAP_OPTS    default "-Xms256m -Xmx768m"
#   DEBEZIUM_START_TIMEOUT  seconds to wait for each step (default 120)
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)"
DDIR="$SCRIPT_DIR/debezium"
POM="$DDIR/pom.xml"
CACHE="${PORTALMAIL_CACHE:-${HOME:-/tmp}/.cache/portalmail}"
M2="$CACHE/m2"
RUN_ROOT="${PORTALMAIL_RUN_DIR:-/tmp/portalmail-run}"
RUN="$RUN_ROOT/debezium"
LOGS="$RUN/logs"
PGHOME="$RUN/pg"
PGDATA="$PGHOME/data"
PGLOG="$LOGS/postgres.log"
PG_PORTFILE="$RUN/pg.port"
CONNECT_DIR="$RUN/connect"
CONNECT_CONF="$CONNECT_DIR/worker.properties"
CONNECT_OFFSETS="$CONNECT_DIR/offsets"
CONNECT_PIDFILE="$RUN/connect.pid"
CONNECT_PORTFILE="$RUN/connect.port"
LOCKFILE="$RUN/.lock"
CONNECTORS=(portal service)

TIMEOUT="${DEBEZIUM_START_TIMEOUT:-120}"
JAVA="${JAVA_HOME:+$JAVA_HOME/bin/}java"

log() { printf 'debezium.sh: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
secs_since() { # START_MS -> "12.3s"
  local d=$(( $(now_ms) - $1 ))
  printf '%d.%01ds' $(( d / 1000 )) $(( (d % 1000) / 100 ))
}
port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# free_port DEFAULT: DEFAULT if free, else the next free port above it.
free_port() {
  local p="$1" i
  for i in $(seq 0 200); do
    if ! port_in_use $(( p + i )); then echo $(( p + i )); return 0; fi
  done
  die "no free port in $p-$(( p + 200 ))"
}

with_lock() {
  mkdir -p "$RUN"
  if command -v flock >/dev/null 2>&1; then
    exec 9>"$LOCKFILE"
    flock -w 300 9 || die "could not lock $LOCKFILE within 300s (another debezium.sh running?)"
  fi
}

need_tools() {
  local missing=()
  command -v jq >/dev/null 2>&1 || missing+=(jq)
  command -v curl >/dev/null 2>&1 || missing+=(curl)
  if (( ${#missing[@]} > 0 )); then
    log "${missing[*]} not found: installing with apt-get"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >&2
  fi
}

# ---------------------------------------------------------------- PostgreSQL

PGBIN=""
find_pg() {
  local d
  for d in /usr/lib/postgresql/15/bin /usr/lib/postgresql/*/bin; do
    if [[ -x "$d/postgres" && -x "$d/initdb" && -x "$d/pg_ctl" ]]; then PGBIN="$d"; return 0; fi
  done
  return 1
}

ensure_pg() {
  find_pg && return 0
  log "PostgreSQL server binaries not found: installing Debian's postgresql with apt-get"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >&2
  find_pg || die "no /usr/lib/postgresql/*/bin/postgres after apt-get install postgresql"
}

# as_pg CMD...: runs CMD as the postgres OS user (PostgreSQL refuses to run as root).
as_pg() {
  if [[ "$(id -u)" == 0 ]]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

pg_port() { if [[ -s "$PG_PORTFILE" ]]; then cat "$PG_PORTFILE"; fi; }
pg_url() { echo "postgresql://postgres@127.0.0.1:$(pg_port)"; }

pg_ready() {
  local p
  p="$(pg_port)"
  [[ -n "$p" ]] || return 1
  PGCONNECT_TIMEOUT=3 psql -X -q -h 127.0.0.1 -p "$p" -U postgres -d postgres -tAc 'SELECT 1' >/dev/null 2>&1
}

pg_running() { [[ -s "$PGDATA/postmaster.pid" ]] && as_pg "$PGBIN/pg_ctl" -D "$PGDATA" status >/dev/null 2>&1; }

# psql_db DB ARGS...: psql as postgres over TCP, stopping at the first error.
psql_db() {
  local db="$1"
  shift
  psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$(pg_port)" -U postgres -d "$db" "$@"
}

# The postgres OS user must reach the data dir: open the run dirs for traversal.
open_run_dirs() {
  local d
  for d in "$RUN_ROOT" "$RUN"; do
    [[ "$(id -u)" == 0 ]] || break
    if ! runuser -u postgres -- test -x "$d" 2>/dev/null; then chmod a+x "$d"; fi
  done
  if [[ "$(id -u)" == 0 ]] && ! runuser -u postgres -- test -x "$RUN" 2>/dev/null; then
    die "the postgres OS user cannot reach $RUN (a parent dir of PORTALMAIL_RUN_DIR is closed); use another PORTALMAIL_RUN_DIR"
  fi
}

init_pg() {
  local t0
  t0="$(now_ms)"
  mkdir -p "$PGHOME" "$LOGS"
  if [[ "$(id -u)" == 0 ]]; then chown postgres: "$PGHOME"; fi
  local out
  if ! out="$(as_pg "$PGBIN/initdb" -D "$PGDATA" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 --no-instructions 2>&1)"; then
    printf '%s\n' "$out" >&2
    die "initdb failed"
  fi
  # Loopback only, trust (tests): normal and replication connections.
  as_pg tee "$PGDATA/pg_hba.conf" >/dev/null <<'EOF'
# scripts/debezium.sh: loopback only, no passwords (test server).
host all         all 127.0.0.1/32 trust
host replication all 127.0.0.1/32 trust
EOF
  printf "\ninclude_if_exists = 'portalmail.conf'\n" | as_pg tee -a "$PGDATA/postgresql.conf" >/dev/null
  log "initialised $PGDATA in $(secs_since "$t0")"
}

write_pg_conf() { # PORT
  as_pg tee "$PGDATA/portalmail.conf" >/dev/null <<EOF
# Written by scripts/debezium.sh at every start.
listen_addresses = '127.0.0.1'
port = $1
unix_socket_directories = ''
wal_level = logical
max_replication_slots = 20
max_wal_senders = 20
max_connections = 60
shared_buffers = 64MB
fsync = off
synchronous_commit = off
full_page_writes = off
timezone = 'UTC'
log_timezone = 'UTC'
log_min_messages = warning
log_line_prefix = '%m [%p] %d '
EOF
}

start_pg() {
  ensure_pg
  if pg_running; then
    if pg_ready; then
      log "PostgreSQL already running at 127.0.0.1:$(pg_port)"
      return 0
    fi
    die "PostgreSQL of $PGDATA runs but does not answer on 127.0.0.1:$(pg_port)"
  fi
  open_run_dirs
  [[ -s "$PGDATA/PG_VERSION" ]] || init_pg
  local p="${PG_PORT:-}"
  if [[ -z "$p" ]]; then
    p="$(pg_port)"
    if [[ -z "$p" ]] || port_in_use "$p"; then p="$(free_port 5433)"; fi
  elif port_in_use "$p"; then
    die "PG_PORT=$p is in use"
  fi
  write_pg_conf "$p"
  echo "$p" >"$PG_PORTFILE"
  mkdir -p "$LOGS"
  touch "$PGLOG"
  if [[ "$(id -u)" == 0 ]]; then chown postgres: "$PGLOG"; fi
  local t0
  t0="$(now_ms)"
  STARTED_PG=1
  # 9>&-: the server must not inherit (and hold) the lock of this script.
  if ! as_pg "$PGBIN/pg_ctl" -D "$PGDATA" -l "$PGLOG" -w -t "$TIMEOUT" -s start >&2 9>&-; then
    tail -n 30 "$PGLOG" >&2 || true
    die "PostgreSQL did not start (log: $PGLOG)"
  fi
  log "PostgreSQL $("$PGBIN/postgres" --version | awk '{print $3}') up at 127.0.0.1:$p in $(secs_since "$t0") (data $PGDATA)"
}

stop_pg() {
  find_pg || { log "no PostgreSQL binaries: nothing to stop"; return 0; }
  if ! pg_running; then
    log "PostgreSQL not running"
    return 0
  fi
  local t0
  t0="$(now_ms)"
  as_pg "$PGBIN/pg_ctl" -D "$PGDATA" -m fast -w -t 60 -s stop >&2 || as_pg "$PGBIN/pg_ctl" -D "$PGDATA" -m immediate -s stop >&2 || true
  log "PostgreSQL stopped in $(secs_since "$t0")"
}

# Both databases, with their tables (the .sql files are idempotent).
create_dbs() {
  local db
  for db in "${CONNECTORS[@]}"; do
    if [[ "$(psql_db postgres -tAc "SELECT 1 FROM pg_database WHERE datname = '$db'")" != 1 ]]; then
      psql_db postgres -c "CREATE DATABASE $db"
      log "database $db created"
    fi
    psql_db "$db" -f "$DDIR/$db.sql" >/dev/null
  done
}

# ---------------------------------------------------------------- Connect

check_java() {
  command -v "$JAVA" >/dev/null 2>&1 || die "java not found (need Java 17+; set JAVA_HOME)"
  local v major
  v="$("$JAVA" -version 2>&1 | sed -n 's/.* version "\([^"]*\)".*/\1/p' | head -n1)"
  major="${v%%.*}"
  [[ "$major" =~ ^[0-9]+$ ]] || die "cannot tell the Java version from '$JAVA -version'"
  (( major >= 17 )) || die "Kafka Connect 4.x needs Java 17+, found $v ($JAVA)"
}

# Prints the Connect classpath. Cached per pom content in $CACHE; resolved with
# Maven into $M2 (offline first, so a warm cache never touches the network).
classpath() {
  [[ -f "$POM" ]] || die "missing $POM"
  local key cpfile
  key="$(sha256sum "$POM" | cut -c1-16)"
  cpfile="$CACHE/debezium-classpath-$key.txt"
  if [[ -s "$cpfile" ]] && cp_complete "$cpfile"; then
    cat "$cpfile"
    return 0
  fi
  command -v mvn >/dev/null 2>&1 || die "mvn not found (Maven 3.6+ is needed to resolve the Connect and Debezium jars)"
  mkdir -p "$M2"
  local tmp t0
  tmp="$(mktemp "$CACHE/.classpath.XXXXXX")"
  t0="$(now_ms)"
  local mvn_args=(-B -q -Dstyle.color=never "-Dmaven.repo.local=$M2" -f "$POM"
                  dependency:build-classpath "-Dmdep.outputFile=$tmp")
  if mvn -o "${mvn_args[@]}" >/dev/null 2>&1 && [[ -s "$tmp" ]]; then
    log "classpath resolved offline from $M2 in $(secs_since "$t0")"
  else
    log "resolving Kafka Connect and Debezium with Maven into $M2 (first run downloads ~45 MB) ..."
    if ! mvn "${mvn_args[@]}" 2>&1 | sed -e 's/\x1b\[[0-9;]*m//g' -e '/^[[:space:]]*$/d' >&2; then
      rm -f "$tmp"
      die "Maven could not resolve $POM (is Maven Central reachable?)"
    fi
    [[ -s "$tmp" ]] || { rm -f "$tmp"; die "Maven wrote an empty classpath"; }
    log "jars resolved in $(secs_since "$t0")"
  fi
  mv -f "$tmp" "$cpfile"
  cat "$cpfile"
}

cp_complete() { # CPFILE: every jar on it still exists
  local -a jars
  local jar
  IFS=':' read -r -a jars <"$1" || true  # the file has no trailing newline
  (( ${#jars[@]} > 0 )) || return 1
  for jar in "${jars[@]}"; do [[ -f "$jar" ]] || return 1; done
}

connect_port() { if [[ -s "$CONNECT_PORTFILE" ]]; then cat "$CONNECT_PORTFILE"; fi; }
connect_url() { echo "http://127.0.0.1:$(connect_port)"; }

connect_running() {
  [[ -s "$CONNECT_PIDFILE" ]] || return 1
  local pid cmd
  pid="$(cat "$CONNECT_PIDFILE")"
  kill -0 "$pid" 2>/dev/null || return 1
  cmd="$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null || true)"
  [[ "$cmd" == *ConnectStandalone*"$CONNECT_CONF"* ]]
}

# rest METHOD PATH [BODY]: Connect's REST API; prints the body, fails on HTTP >= 400.
rest() {
  local args=(-sS --max-time 10 -X "$1" -H 'Content-Type: application/json' "$(connect_url)$2")
  [[ $# -ge 3 ]] && args+=(--data-binary "$3")
  curl --fail-with-body "${args[@]}"
}

connect_ready() { [[ -n "$(connect_port)" ]] && rest GET / >/dev/null 2>&1; }

kafka_brokers() {
  if [[ -n "${KAFKA_BROKERS:-}" ]]; then echo "$KAFKA_BROKERS"; return 0; fi
  local line
  line="$("$SCRIPT_DIR/kafka.sh" status 2>/dev/null | tail -n 1)" || true
  [[ "$line" == KAFKA_BROKERS=* ]] || die "no Kafka broker: set KAFKA_BROKERS or run 'scripts/kafka.sh up' first (same PORTALMAIL_RUN_DIR)"
  echo "${line#KAFKA_BROKERS=}"
}

start_connect() {
  if connect_running; then
    if connect_ready; then
      log "Kafka Connect already running (pid $(cat "$CONNECT_PIDFILE")) at $(connect_url)"
      return 0
    fi
    log "Kafka Connect pid $(cat "$CONNECT_PIDFILE") runs but its REST API does not answer yet; waiting"
  else
    rm -f "$CONNECT_PIDFILE"
    check_java
    local brokers cp p t0
    brokers="$(kafka_brokers)"
    cp="$(classpath)"
    p="${CONNECT_PORT:-}"
    if [[ -z "$p" ]]; then
      p="$(free_port 8083)"
    elif port_in_use "$p"; then
      die "CONNECT_PORT=$p is in use"
    fi
    mkdir -p "$CONNECT_DIR" "$LOGS"
    sed -e "s#@BROKERS@#$brokers#g" -e "s#@PORT@#$p#g" -e "s#@OFFSETS@#$CONNECT_OFFSETS#g" \
      "$DDIR/worker.properties.template" >"$CONNECT_CONF"
    echo "$p" >"$CONNECT_PORTFILE"
    local heap="${CONNECT_HEAP_OPTS:--Xms256m -Xmx768m}"
    local -a jvm
    read -r -a jvm <<<"$heap"
    jvm+=(-XX:+UseG1GC -XX:MaxGCPauseMillis=20 -Djava.awt.headless=true -Xshare:auto
          "-Dconnect.logs.dir=$LOGS" "-Dlog4j2.configurationFile=$DDIR/log4j2.properties")
    printf '\n==== %s: starting ConnectStandalone %s (REST port %s, brokers %s) ====\n' \
      "$(date -Is)" "$CONNECT_CONF" "$p" "$brokers" >>"$LOGS/connect-stdout.log"
    local launcher=()
    command -v setsid >/dev/null 2>&1 && launcher=(setsid)
    STARTED_CONNECT=1
    # shellcheck disable=SC2016 # $$ and $@ belong to the inner bash
    "${launcher[@]}" nohup bash -c 'echo $$ >"$1"; shift; exec "$@"' _ "$CONNECT_PIDFILE" \
      "$JAVA" "${jvm[@]}" -cp "$cp" org.apache.kafka.connect.cli.ConnectStandalone "$CONNECT_CONF" \
      >>"$LOGS/connect-stdout.log" 2>&1 </dev/null 9>&- &
    local _
    for _ in $(seq 1 50); do [[ -s "$CONNECT_PIDFILE" ]] && break; sleep 0.1; done
    [[ -s "$CONNECT_PIDFILE" ]] || die "Kafka Connect did not start (no pid in $CONNECT_PIDFILE)"
    log "started Kafka Connect pid $(cat "$CONNECT_PIDFILE"), REST 127.0.0.1:$p, brokers $brokers, logs $LOGS"
  fi
  t0="$(now_ms)"
  local deadline=$(( $(now_ms) + TIMEOUT * 1000 ))
  until connect_ready; do
    connect_running || { connect_log_tail; die "Kafka Connect exited during startup"; }
    (( $(now_ms) < deadline )) || { connect_log_tail; die "Kafka Connect's REST API did not answer within ${TIMEOUT}s"; }
    sleep 0.3
  done
  log "Kafka Connect $(rest GET / | jq -r .version) answers at $(connect_url) after $(secs_since "$t0")"
}

connect_log_tail() {
  local f
  for f in connect-stdout.log connect.log; do
    [[ -s "$LOGS/$f" ]] || continue
    log "---- $LOGS/$f: last 40 lines ----"
    tail -n 40 "$LOGS/$f" >&2
  done
}

stop_connect() {
  if ! connect_running; then
    rm -f "$CONNECT_PIDFILE"
    log "Kafka Connect not running"
    return 0
  fi
  local pid t0
  pid="$(cat "$CONNECT_PIDFILE")"
  t0="$(now_ms)"
  kill -TERM "$pid" 2>/dev/null || true
  local deadline=$(( $(now_ms) + 30000 ))
  while kill -0 "$pid" 2>/dev/null && (( $(now_ms) < deadline )); do sleep 0.2; done
  if kill -0 "$pid" 2>/dev/null; then
    log "Kafka Connect still alive after 30s: SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
  fi
  rm -f "$CONNECT_PIDFILE"
  log "Kafka Connect stopped in $(secs_since "$t0")"
}

# connector_config NAME: the JSON file's config, pointed at this PostgreSQL.
connector_config() {
  jq -c --arg port "$(pg_port)" \
    '.config + {"database.hostname": "127.0.0.1", "database.port": $port}' "$DDIR/$1-connector.json"
}

# connector_state NAME: "RUNNING RUNNING" (connector, task), or what it is.
connector_state() {
  rest GET "/connectors/$1/status" 2>/dev/null |
    jq -r '[.connector.state, (.tasks[0].state // "NO_TASK")] | join(" ")' 2>/dev/null || echo "ABSENT"
}

# snapshot_done NAME: the connector streams: its slot is in use by a walsender
# (Debezium starts streaming only after the snapshot completed).
snapshot_done() {
  local slot
  slot="$(jq -r '.config["slot.name"]' "$DDIR/$1-connector.json")"
  [[ "$(psql_db postgres -tAc "SELECT count(*) FROM pg_replication_slots WHERE slot_name = '$slot' AND active")" == 1 ]]
}

register_connectors() {
  local name t0
  t0="$(now_ms)"
  for name in "${CONNECTORS[@]}"; do
    rest PUT "/connectors/$name/config" "$(connector_config "$name")" >/dev/null ||
      die "registering connector $name failed"
  done
  local deadline=$(( $(now_ms) + TIMEOUT * 1000 )) pending state
  while :; do
    pending=()
    for name in "${CONNECTORS[@]}"; do
      state="$(connector_state "$name")"
      if [[ "$state" == *FAILED* ]]; then
        rest GET "/connectors/$name/status" | jq -r '.tasks[0].trace // .connector.trace' | head -n 30 >&2 || true
        die "connector $name failed"
      fi
      if [[ "$state" != "RUNNING RUNNING" ]] || ! snapshot_done "$name"; then pending+=("$name ($state)"); fi
    done
    (( ${#pending[@]} == 0 )) && break
    if (( $(now_ms) >= deadline )); then
      connect_log_tail
      die "connectors not streaming within ${TIMEOUT}s: ${pending[*]}"
    fi
    sleep 0.3
  done
  log "connectors ${CONNECTORS[*]} running, snapshot done, streaming, after $(secs_since "$t0")"
}

emit() {
  echo "PG_URL=$(pg_url)"
  echo "CONNECT_URL=$(connect_url)"
}

# ---------------------------------------------------------------- commands

STARTED_PG=0
STARTED_CONNECT=0
UP_OK=0
on_up_exit() {
  (( UP_OK == 1 )) && return 0
  log "up failed: stopping what this run started (logs kept in $LOGS)"
  if (( STARTED_CONNECT == 1 )); then stop_connect || true; fi
  if (( STARTED_PG == 1 )); then stop_pg || true; fi
}

cmd_up() {
  with_lock
  need_tools
  trap on_up_exit EXIT
  local t0
  t0="$(now_ms)"
  start_pg
  create_dbs
  start_connect
  register_connectors
  UP_OK=1
  log "up in $(secs_since "$t0"); logs in $LOGS"
  emit
}

cmd_down() {
  with_lock
  stop_connect
  stop_pg
  if [[ "${KEEP_DEBEZIUM_DATA:-0}" == 1 ]]; then
    log "KEEP_DEBEZIUM_DATA=1: data kept in $PGHOME and $CONNECT_DIR"
  else
    rm -rf "$PGHOME" "$CONNECT_DIR" "$PG_PORTFILE" "$CONNECT_PORTFILE"
    log "data removed ($PGHOME, $CONNECT_DIR)"
  fi
  log "logs kept in $LOGS"
}

cmd_status() {
  find_pg || die "no PostgreSQL server binaries"
  pg_running && pg_ready || { log "PostgreSQL not running (run dir $RUN)"; exit 1; }
  connect_running && connect_ready || { log "Kafka Connect not running (run dir $RUN)"; exit 1; }
  local name state bad=0
  for name in "${CONNECTORS[@]}"; do
    state="$(connector_state "$name")"
    log "connector $name: $state"
    [[ "$state" == "RUNNING RUNNING" ]] || bad=1
  done
  (( bad == 0 )) || exit 1
  emit
}

cmd_psql() {
  [[ $# -ge 1 ]] || die "usage: psql DB [ARGS...]"
  [[ -n "$(pg_port)" ]] || die "PostgreSQL not started (run 'up' first)"
  local db="$1"
  shift
  exec psql -X -h 127.0.0.1 -p "$(pg_port)" -U postgres -d "$db" "$@"
}

usage() {
  sed -n '2,/^set -euo pipefail/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//' >&2
}

main() {
  local cmd="${1:-}"
  [[ $# -gt 0 ]] && shift
  case "$cmd" in
    up) cmd_up ;;
    down) cmd_down ;;
    status) cmd_status ;;
    psql) cmd_psql "$@" ;;
    classpath) check_java; classpath ;;
    logs) echo "$LOGS" ;;
    -h|--help|help) usage ;;
    "") usage; exit 2 ;;
    *) log "unknown command '$cmd'"; usage; exit 2 ;;
  esac
}

main "$@"
