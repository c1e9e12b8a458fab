#!/usr/bin/env bash
# scripts/redis.sh: a throwaway local redis-server for portalmail's tests
# (package state and the integration tests), no persistence.
#
#   scripts/redis.sh start    install redis-server if missing (apt), start it
#                             daemonized on 127.0.0.1, wait for PONG
#   scripts/redis.sh stop     stop it (pidfile, else `redis-cli shutdown nosave`)
#   scripts/redis.sh status   exit 0 iff it runs and answers PING
#   scripts/redis.sh cluster-start   a 3-master Redis Cluster on loopback (redis-server
#                             --cluster-enabled yes, created with redis-cli --cluster
#                             create --cluster-replicas 0); reused when already up
#   scripts/redis.sh cluster-stop    stop it and delete its files
#   scripts/redis.sh cluster-status  exit 0 iff all three answer and cluster_state is ok
#
# `start` and `status` print exactly one line on stdout, as their last line:
# `REDIS_URL=redis://127.0.0.1:PORT/0`; every message goes to stderr. So
#   eval "$(scripts/redis.sh start | tail -1)" && REDIS_URL=$REDIS_URL go test ./state/
# A server this script already started is reused by `start`.
# `cluster-start` and `cluster-status` print, as their last line,
# `REDIS_CLUSTER_URL=127.0.0.1:P1,127.0.0.1:P2,127.0.0.1:P3` (portalmail's
# --redis-url for Cluster).
#
# Environment:
#   REDIS_PORT          port (default 6390; when the default is taken by
#                       something else, the next free port up to 6429 is used)
#   PORTALMAIL_RUN_DIR  run root (default /tmp/portalmail-run); files in <run>/redis:
#                       redis.pid, redis.port, redis.log, and the server's --dir;
#                       the cluster's in <run>/redis/cluster/<port>/ and ports
#   REDIS_CLUSTER_PORT  first port of the cluster (default 6440: the first three
#                       consecutive free ports from there up to 6499 are used)
set -euo pipefail

RUN_DIR="${PORTALMAIL_RUN_DIR:-/tmp/portalmail-run}/redis"
PIDFILE="$RUN_DIR/redis.pid"
PORTFILE="$RUN_DIR/redis.port"
LOGFILE="$RUN_DIR/redis.log"

log() { echo "redis.sh: $*" >&2; }

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

pong() { [ "$(redis-cli -h 127.0.0.1 -p "$1" ping 2>/dev/null)" = "PONG" ]; }

running_pid() {
  [ -s "$PIDFILE" ] || return 1
  local pid
  pid="$(cat "$PIDFILE")"
  kill -0 "$pid" 2>/dev/null && echo "$pid"
}

ensure_installed() {
  if command -v redis-server >/dev/null 2>&1 && command -v redis-cli >/dev/null 2>&1; then
    return
  fi
  log "redis-server not found: installing it with apt-get"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq redis-server >&2
  # Debian's package may start a system service on 6379; ours is separate.
  command -v redis-server >/dev/null 2>&1 || { log "redis-server still missing after apt-get"; exit 1; }
}

cmd_start() {
  ensure_installed
  mkdir -p "$RUN_DIR"
  if pid="$(running_pid)" && [ -s "$PORTFILE" ] && pong "$(cat "$PORTFILE")"; then
    log "already running (pid $pid)"
    echo "REDIS_URL=redis://127.0.0.1:$(cat "$PORTFILE")/0"
    return
  fi
  rm -f "$PIDFILE"
  local port="${REDIS_PORT:-6390}"
  if port_in_use "$port"; then
    if [ -n "${REDIS_PORT:-}" ]; then
      log "port $port (REDIS_PORT) is in use"
      exit 1
    fi
    local p
    for p in $(seq 6391 6429); do
      if ! port_in_use "$p"; then port="$p"; break; fi
    done
    if port_in_use "$port"; then log "no free port in 6390-6429"; exit 1; fi
  fi
  echo "$port" >"$PORTFILE"
  : >"$LOGFILE"
  redis-server --bind 127.0.0.1 --port "$port" --daemonize yes \
    --save "" --appendonly no --dir "$RUN_DIR" --pidfile "$PIDFILE" \
    --logfile "$LOGFILE" >&2
  local deadline=$((SECONDS + 20))
  until pong "$port"; do
    if [ "$SECONDS" -ge "$deadline" ]; then
      log "redis-server did not answer PING on port $port within 20s; log:"
      cat "$LOGFILE" >&2 || true
      exit 1
    fi
    sleep 0.1
  done
  log "redis-server up on 127.0.0.1:$port (pid $(cat "$PIDFILE" 2>/dev/null || echo '?'))"
  echo "REDIS_URL=redis://127.0.0.1:$port/0"
}

cmd_stop() {
  local port=""
  [ -s "$PORTFILE" ] && port="$(cat "$PORTFILE")"
  if pid="$(running_pid)"; then
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
      log "pid $pid did not stop on TERM; killing it"
      kill -9 "$pid" 2>/dev/null || true
    fi
    log "stopped (pid $pid)"
  elif [ -n "$port" ] && pong "$port"; then
    redis-cli -h 127.0.0.1 -p "$port" shutdown nosave >/dev/null 2>&1 || true
    log "shut down the server on port $port"
  else
    log "not running"
  fi
  rm -f "$PIDFILE" "$PORTFILE"
}

cmd_status() {
  if [ -s "$PORTFILE" ] && pong "$(cat "$PORTFILE")"; then
    echo "REDIS_URL=redis://127.0.0.1:$(cat "$PORTFILE")/0"
    return 0
  fi
  log "not running"
  return 1
}

# ---------------------------------------------------------------- cluster

CLUSTER_DIR="$RUN_DIR/cluster"
CLUSTER_PORTS="$CLUSTER_DIR/ports"

cluster_url() {
  local out="" p
  for p in $(cat "$CLUSTER_PORTS"); do out="${out:+$out,}127.0.0.1:$p"; done
  echo "REDIS_CLUSTER_URL=$out"
}

cluster_ok() { # PORT...
  local p
  for p in "$@"; do
    pong "$p" || return 1
    redis-cli -h 127.0.0.1 -p "$p" cluster info 2>/dev/null | grep -q '^cluster_state:ok' || return 1
  done
}

cmd_cluster_start() {
  ensure_installed
  mkdir -p "$CLUSTER_DIR"
  if [ -s "$CLUSTER_PORTS" ] && cluster_ok $(cat "$CLUSTER_PORTS"); then
    log "cluster already running on ports $(tr '\n' ' ' <"$CLUSTER_PORTS")"
    cluster_url
    return
  fi
  cmd_cluster_stop 2>/dev/null || true
  mkdir -p "$CLUSTER_DIR"
  local base="${REDIS_CLUSTER_PORT:-6440}" p ports=""
  while :; do
    if [ "$base" -gt 6497 ]; then log "no three consecutive free ports up to 6499"; exit 1; fi
    if ! port_in_use "$base" && ! port_in_use $((base + 1)) && ! port_in_use $((base + 2)) &&
       ! port_in_use $((base + 10000)) && ! port_in_use $((base + 10001)) && ! port_in_use $((base + 10002)); then
      break # (each node also listens on PORT+10000, the cluster bus)
    fi
    if [ -n "${REDIS_CLUSTER_PORT:-}" ]; then log "ports $base-$((base + 2)) (REDIS_CLUSTER_PORT) are not all free"; exit 1; fi
    base=$((base + 3))
  done
  for p in "$base" $((base + 1)) $((base + 2)); do
    mkdir -p "$CLUSTER_DIR/$p"
    redis-server --bind 127.0.0.1 --port "$p" --cluster-enabled yes \
      --cluster-config-file "$CLUSTER_DIR/$p/nodes.conf" --cluster-node-timeout 5000 \
      --daemonize yes --save "" --appendonly no --dir "$CLUSTER_DIR/$p" \
      --pidfile "$CLUSTER_DIR/$p/redis.pid" --logfile "$CLUSTER_DIR/$p/redis.log" >&2
    ports="$ports $p"
    echo "$p" >>"$CLUSTER_PORTS"
  done
  local deadline=$((SECONDS + 20))
  for p in $ports; do
    until pong "$p"; do
      if [ "$SECONDS" -ge "$deadline" ]; then log "cluster node $p did not answer PING within 20s"; exit 1; fi
      sleep 0.1
    done
  done
  local addrs=""
  for p in $ports; do addrs="$addrs 127.0.0.1:$p"; done
  # shellcheck disable=SC2086 # one argument per node
  redis-cli --cluster create $addrs --cluster-replicas 0 --cluster-yes >&2
  deadline=$((SECONDS + 30))
  # shellcheck disable=SC2086
  until cluster_ok $ports; do
    if [ "$SECONDS" -ge "$deadline" ]; then log "cluster_state did not become ok within 30s"; exit 1; fi
    sleep 0.2
  done
  log "3-master cluster up on 127.0.0.1:$(echo $ports | tr ' ' ',')"
  cluster_url
}

cmd_cluster_stop() {
  if [ ! -d "$CLUSTER_DIR" ]; then log "cluster not running"; return; fi
  local d pid
  for d in "$CLUSTER_DIR"/*/; do
    [ -s "$d/redis.pid" ] || continue
    pid="$(cat "$d/redis.pid")"
    if kill -0 "$pid" 2>/dev/null; then
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -0 "$pid" 2>/dev/null && kill -9 "$pid" 2>/dev/null || true
      log "stopped cluster node pid $pid"
    fi
  done
  rm -rf "$CLUSTER_DIR"
}

cmd_cluster_status() {
  if [ -s "$CLUSTER_PORTS" ] && cluster_ok $(cat "$CLUSTER_PORTS"); then
    cluster_url
    return 0
  fi
  log "cluster not running"
  return 1
}

case "${1:-}" in
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  cluster-start) cmd_cluster_start ;;
  cluster-stop) cmd_cluster_stop ;;
  cluster-status) cmd_cluster_status ;;
  *) echo "usage: $0 start|stop|status|cluster-start|cluster-stop|cluster-status" >&2; exit 2 ;;
esac
