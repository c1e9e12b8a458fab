#!/usr/bin/env bash
# scripts/kafka.sh: a real single-node Apache Kafka broker (KRaft, no ZooKeeper)
# for portalmail's integration tests, run from jars resolved from Maven Central
# (no Docker, no tarball download). See scripts/kafka/README.md.
#
#   scripts/kafka.sh up                 resolve jars (cached), format once, start, wait
#   scripts/kafka.sh down               stop; delete the data dir unless KEEP_KAFKA_DATA=1
#   scripts/kafka.sh status             exit 0 iff the broker runs and answers metadata
#   scripts/kafka.sh stop-broker        stop, keep the data dir (fault tests)
#   scripts/kafka.sh start-broker       start again on the same data dir, no re-format
#   scripts/kafka.sh restart-broker [S] stop-broker, sleep S seconds (default 0), start-broker
#   scripts/kafka.sh topics-create NAME PARTITIONS [--config k=v ...]
#   scripts/kafka.sh topics-list
#   scripts/kafka.sh selftest           transactional produce + read_committed consume
#   scripts/kafka.sh address            print 127.0.0.1:PORT (bare)
#   scripts/kafka.sh classpath          print the broker classpath (resolving it if needed)
#   scripts/kafka.sh run-class CLASS [ARGS...]   run a Kafka tool class on the classpath
#   scripts/kafka.sh logs               print the log dir
#
# Commands that leave a broker running (up, status, start-broker, restart-broker)
# print exactly one line on stdout, `KAFKA_BROKERS=127.0.0.1:PORT`, as their last
# line; every message goes to stderr. So `eval "$(scripts/kafka.sh up)"` works.
#
# Environment:
#   KAFKA_PORT          client port (default: 9092, or the first free pair after it);
#                       the controller listens on PORT+1
#   PORTALMAIL_CACHE    cache root (default $HOME/.cache/portalmail); Maven repo in <cache>/m2
#   KAFKA_POM           resolve this pom for `classpath` instead (the Kafka Streams peer of
#                       make bench-e2e: test/bench/peer/pom.xml); the broker commands need the default
#   PORTALMAIL_RUN_DIR  run root (default /tmp/portalmail-run); broker files in <run>/kafka
#   KEEP_KAFKA_DATA=1   `down` keeps the data dir
#   KAFKA_HEAP_OPTS     default "-Xms512m -Xmx512m"
#   KAFKA_JVM_OPTS      extra JVM options for the broker
#   KAFKA_START_TIMEOUT seconds to wait for metadata (default 120)
#   KAFKA_STOP_TIMEOUT  seconds to wait after SIGTERM before SIGKILL (default 30)
#   KAFKA_PROBE         kcat | java: how to ask for metadata (default: kcat if installed)
#
# Java 17+ and Maven are installed from Debian's packages when missing
# (openjdk-17-jre-headless, maven), as root or with sudo.
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)"
KDIR="$SCRIPT_DIR/kafka"
POM="${KAFKA_POM:-$KDIR/pom.xml}"
CACHE="${PORTALMAIL_CACHE:-${HOME:-/tmp}/.cache/portalmail}"
M2="$CACHE/m2"
RUN_ROOT="${PORTALMAIL_RUN_DIR:-/tmp/portalmail-run}"
RUN="$RUN_ROOT/kafka"
DATA="$RUN/data"
LOGS="$RUN/logs"
CONF="$RUN/server.properties"
TOOLS_CONF="$RUN/tools.properties"
PIDFILE="$RUN/kafka.pid"
PORTFILE="$RUN/port"
LOCKFILE="$RUN/.lock"

START_TIMEOUT="${KAFKA_START_TIMEOUT:-120}"
STOP_TIMEOUT="${KAFKA_STOP_TIMEOUT:-30}"
JAVA="${JAVA_HOME:+$JAVA_HOME/bin/}java"

log() { printf 'kafka.sh: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
secs_since() { # START_MS -> "12.3s"
  local d=$(( $(now_ms) - $1 ))
  printf '%d.%01ds' $(( d / 1000 )) $(( (d % 1000) / 100 ))
}

# ---------------------------------------------------------------- port / state

# The port of the broker this run dir holds (recorded at start), else KAFKA_PORT.
port() {
  if [[ -s "$PORTFILE" ]]; then cat "$PORTFILE"; else echo "${KAFKA_PORT:-9092}"; fi
}
address() { echo "127.0.0.1:$(port)"; }
emit_address() { echo "KAFKA_BROKERS=$(address)"; }

pid_of_broker() { if [[ -s "$PIDFILE" ]]; then cat "$PIDFILE"; fi; }

# True if the pid in the pidfile is alive and is our kafka.Kafka on our config.
is_running() {
  local pid
  pid="$(pid_of_broker)"
  [[ -n "$pid" ]] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  local cmd
  cmd="$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null || true)"
  [[ "$cmd" == *kafka.Kafka*"$CONF"* ]]
}

port_in_use() { # PORT
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# free_pair PORT: PORT, or PORT+2, PORT+4, ..., the first whose PORT and
# PORT+1 (client and controller) are both free.
free_pair() {
  local p="$1"
  while port_in_use "$p" || port_in_use $((p + 1)); do p=$((p + 2)); done
  echo "$p"
}

with_lock() {
  mkdir -p "$RUN"
  if command -v flock >/dev/null 2>&1; then
    exec 9>"$LOCKFILE"
    flock -w 300 9 || die "could not lock $LOCKFILE within 300s (another kafka.sh running?)"
  fi
}

# ---------------------------------------------------------------- java / classpath

# apt_install PKG...: install Debian packages (as root, or with sudo).
apt_install() {
  local sudo=()
  [[ "$(id -u)" -eq 0 ]] || sudo=(sudo)
  command -v apt-get >/dev/null 2>&1 || die "apt-get not found: install $* by hand"
  log "installing $* with apt-get ..."
  "${sudo[@]}" apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "$@" >&2
}

java_major() { # JAVA -> major version, or nothing
  local v major
  v="$("$1" -version 2>&1 | sed -n 's/.* version "\([^"]*\)".*/\1/p' | head -n1)"
  major="${v%%.*}"
  [[ "$major" == 1 ]] && major="$(echo "$v" | cut -d. -f2)"
  [[ "$major" =~ ^[0-9]+$ ]] && echo "$major"
}

# Kafka 4.x needs Java 17+. Without one (and JAVA_HOME unset), Debian's
# openjdk-17-jre-headless is installed.
check_java() {
  local major=""
  command -v "$JAVA" >/dev/null 2>&1 && major="$(java_major "$JAVA" || true)"
  if [[ -z "$major" ]] || (( major < 17 )); then
    [[ -z "${JAVA_HOME:-}" ]] || die "JAVA_HOME=$JAVA_HOME: Kafka 4.x needs Java 17+, found ${major:-none}"
    log "Java 17+ not found (found ${major:-none}): installing openjdk-17-jre-headless"
    apt_install openjdk-17-jre-headless
    JAVA=java
    for j in /usr/lib/jvm/java-17-openjdk-*/bin/java; do [[ -x "$j" ]] && JAVA="$j"; done
    major="$(java_major "$JAVA" || true)"
    [[ -n "$major" ]] && (( major >= 17 )) || die "Java 17+ still missing after apt-get"
  fi
}

# Prints the broker classpath. Cached per pom content in $CACHE; resolved with
# Maven into $M2 (offline first, so a warm cache never touches the network).
classpath() {
  [[ -f "$POM" ]] || die "missing $POM"
  local key cpfile
  key="$(sha256sum "$POM" | cut -c1-16)"
  cpfile="$CACHE/kafka-classpath-$key.txt"
  if [[ -s "$cpfile" ]] && cp_complete "$cpfile"; then
    cat "$cpfile"
    return 0
  fi
  if ! command -v mvn >/dev/null 2>&1; then
    log "mvn not found (Maven resolves the Kafka jars): installing maven"
    apt_install maven
    command -v mvn >/dev/null 2>&1 || die "mvn still missing after apt-get"
  fi
  mkdir -p "$M2"
  local tmp t0
  tmp="$(mktemp "$CACHE/.classpath.XXXXXX")"
  t0="$(now_ms)"
  local mvn_args=(-B -q -Dstyle.color=never "-Dmaven.repo.local=$M2" -f "$POM"
                  dependency:build-classpath "-Dmdep.outputFile=$tmp")
  if mvn -o "${mvn_args[@]}" >/dev/null 2>&1 && [[ -s "$tmp" ]]; then
    log "classpath resolved offline from $M2 in $(secs_since "$t0")"
  else
    log "resolving the jars of $POM with Maven into $M2 (the broker's first run downloads ~60 MB) ..."
    # (Maven 3.8 -q still writes bare ANSI resets: strip them.)
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

# run_java CLASS_OR_SOURCE ARGS...: a short-lived tool JVM; its log4j goes to stderr.
# With RUN_JAVA_TIMEOUT=N set (and coreutils timeout present), it is killed after N s.
run_java() {
  local cp
  cp="$(classpath)"
  local -a pre=()
  if [[ -n "${RUN_JAVA_TIMEOUT:-}" ]] && command -v timeout >/dev/null 2>&1; then
    pre=(timeout -k 2 "$RUN_JAVA_TIMEOUT")
  fi
  "${pre[@]}" "$JAVA" -Xmx256m -XX:TieredStopAtLevel=1 -XX:+UseSerialGC -Xshare:auto \
    -Djava.awt.headless=true "-Dlog4j2.configurationFile=$KDIR/log4j2-tools.properties" \
    -cp "$cp" "$@"
}

# ---------------------------------------------------------------- probe

# True if the broker answers a metadata request within a few seconds.
probe() {
  # Cheap first: nothing listening yet means no JVM or kcat round trip.
  port_in_use "$(port)" || return 1
  local how="${KAFKA_PROBE:-}"
  if [[ -z "$how" ]]; then
    if command -v kcat >/dev/null 2>&1; then how=kcat; else how=java; fi
  fi
  case "$how" in
    kcat)
      local out
      out="$(kcat -b "$(address)" -L -m 3 2>/dev/null)" || return 1
      [[ "$out" == *"broker 1 at"* ]]
      ;;
    java)
      write_tools_conf
      RUN_JAVA_TIMEOUT=20 run_java org.apache.kafka.tools.TopicCommand \
        --bootstrap-server "$(address)" --command-config "$TOOLS_CONF" --list >/dev/null 2>&1
      ;;
    *) die "KAFKA_PROBE must be kcat or java, not '$how'" ;;
  esac
}

write_tools_conf() {
  mkdir -p "$RUN"
  [[ -s "$TOOLS_CONF" ]] || printf '%s\n' \
    'request.timeout.ms=3000' 'default.api.timeout.ms=5000' \
    'socket.connection.setup.timeout.ms=1000' 'socket.connection.setup.timeout.max.ms=2000' \
    >"$TOOLS_CONF"
}

# ---------------------------------------------------------------- broker

write_config() { # PORT
  local p="$1" cport=$(( $1 + 1 ))
  mkdir -p "$RUN" "$LOGS"
  sed -e "s#@PORT@#$p#g" -e "s#@CONTROLLER_PORT@#$cport#g" -e "s#@DATA_DIR@#$DATA#g" \
    "$KDIR/server.properties.template" >"$CONF.tmp"
  mv -f "$CONF.tmp" "$CONF"
}

is_formatted() { [[ -s "$DATA/meta.properties" ]]; }

# A Kafka cluster id: 16 random bytes, URL-safe base64 without padding, not starting
# with '-' (what `kafka.tools.StorageTool random-uuid` prints), made without a JVM.
random_cluster_id() {
  local id=""
  if command -v base64 >/dev/null 2>&1 && [[ -r /dev/urandom ]]; then
    while [[ -z "$id" || "$id" == -* ]]; do
      id="$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')"
    done
  else
    id="$(run_java kafka.tools.StorageTool random-uuid 2>/dev/null | tail -n1)"
  fi
  echo "$id"
}

format_storage() {
  local t0 uuid
  t0="$(now_ms)"
  mkdir -p "$DATA"
  uuid="$(random_cluster_id)"
  [[ "$uuid" =~ ^[A-Za-z0-9_-]{22}$ ]] || die "StorageTool random-uuid gave '$uuid'"
  # controller.quorum.voters is set (static quorum), so no --standalone.
  local out
  if ! out="$(run_java kafka.tools.StorageTool format -t "$uuid" -c "$CONF" 2>&1)"; then
    printf '%s\n' "$out" >&2
    die "StorageTool format failed"
  fi
  printf '%s\n' "$out" | grep -v '^Bootstrap metadata' >&2 || true
  log "formatted $DATA (cluster id $uuid) in $(secs_since "$t0")"
}

# Byte sizes of the logs when this start began, so a failure shows only its own lines.
LOG_MARK_SERVER=0
LOG_MARK_STDOUT=0
mark_logs() {
  LOG_MARK_SERVER="$(stat -c %s "$LOGS/server.log" 2>/dev/null || echo 0)"
  LOG_MARK_STDOUT="$(stat -c %s "$LOGS/stdout.log" 2>/dev/null || echo 0)"
}

log_tail() {
  local f mark
  for f in stdout.log server.log; do
    if [[ "$f" == server.log ]]; then mark="$LOG_MARK_SERVER"; else mark="$LOG_MARK_STDOUT"; fi
    [[ -s "$LOGS/$f" ]] || continue
    # A rolled-over server.log is smaller than the mark: show its end then.
    (( $(stat -c %s "$LOGS/$f") >= mark )) || mark=0
    log "---- $LOGS/$f: last 40 lines of this start ----"
    tail -c "+$(( mark + 1 ))" "$LOGS/$f" | tail -n 40 >&2
  done
  log "logs kept in $LOGS"
}

# start_broker MODE: MODE=up formats a fresh data dir, MODE=start requires one.
start_broker() {
  local mode="$1"
  local want="${KAFKA_PORT:-}"
  if is_running; then
    if [[ -n "$want" && "$want" != "$(port)" ]]; then
      die "a broker from $RUN already runs on port $(port), not KAFKA_PORT=$want: run 'down' first or use another PORTALMAIL_RUN_DIR"
    fi
    if probe; then
      log "broker already running (pid $(pid_of_broker)) and healthy at $(address)"
      return 0
    fi
    log "broker process $(pid_of_broker) is running but not answering yet; waiting"
    wait_ready "$(now_ms)"
    return 0
  fi
  rm -f "$PIDFILE"

  if [[ "$mode" == start ]] && ! is_formatted; then
    die "no formatted data dir in $DATA: run 'scripts/kafka.sh up' first"
  fi

  local p
  if [[ "$mode" == start && -s "$PORTFILE" ]]; then
    p="$(cat "$PORTFILE")"
  elif [[ -n "$want" ]]; then
    p="$want"
  else
    p="$(free_pair 9092)"
  fi
  if ! [[ "$p" =~ ^[0-9]+$ ]] || (( p < 1 || p > 65534 )); then die "bad port '$p'"; fi
  local cport=$(( p + 1 ))
  local q
  for q in "$p" "$cport"; do
    if port_in_use "$q"; then
      die "port $q on 127.0.0.1 is already in use by another process (choose KAFKA_PORT; the controller uses PORT+1)"
    fi
  done

  check_java
  local t_cp cp
  t_cp="$(now_ms)"
  cp="$(classpath)"
  write_config "$p"
  echo "$p" >"$PORTFILE"

  is_formatted || format_storage

  local heap="${KAFKA_HEAP_OPTS:--Xms512m -Xmx512m}"
  local -a jvm
  read -r -a jvm <<<"$heap ${KAFKA_JVM_OPTS:-}"
  jvm+=(-XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:+ExplicitGCInvokesConcurrent -XX:MaxInlineLevel=15
        -Djava.awt.headless=true "-Dkafka.logs.dir=$LOGS"
        "-Dlog4j2.configurationFile=$KDIR/log4j2.properties")

  mkdir -p "$LOGS"
  mark_logs
  printf '\n==== %s: starting kafka.Kafka %s (port %s) ====\n' "$(date -Is)" "$CONF" "$p" >>"$LOGS/stdout.log"
  local t_start launcher=()
  t_start="$(now_ms)"
  # Own session, so the broker outlives this script and a Ctrl-C of the caller;
  # the bash wrapper records its pid and execs java, so the pidfile holds java's pid.
  command -v setsid >/dev/null 2>&1 && launcher=(setsid)
  # shellcheck disable=SC2016 # $$ and $@ belong to the inner bash
  "${launcher[@]}" nohup bash -c 'echo $$ >"$1"; shift; exec "$@"' _ "$PIDFILE" \
    "$JAVA" "${jvm[@]}" -cp "$cp" kafka.Kafka "$CONF" \
    >>"$LOGS/stdout.log" 2>&1 </dev/null 9>&- &
  local _
  for _ in $(seq 1 50); do [[ -s "$PIDFILE" ]] && break; sleep 0.1; done
  [[ -s "$PIDFILE" ]] || die "broker did not start (no pid in $PIDFILE)"
  log "started broker pid $(pid_of_broker) on $(address) (controller 127.0.0.1:$cport), data $DATA, logs $LOGS"
  wait_ready "$t_start"
  log "ready in $(secs_since "$t_cp") (classpath + config + format if needed + start)"
}

wait_ready() { # START_MS
  local t0="$1" deadline=$(( $(now_ms) + START_TIMEOUT * 1000 ))
  while (( $(now_ms) < deadline )); do
    if ! is_running; then
      log "broker process exited during startup"
      log_tail
      rm -f "$PIDFILE"
      exit 1
    fi
    if probe; then
      log "broker answers metadata at $(address) after $(secs_since "$t0")"
      return 0
    fi
    sleep 0.5
  done
  log "broker did not answer metadata at $(address) within ${START_TIMEOUT}s"
  log_tail
  stop_broker >/dev/null || true
  exit 1
}

stop_broker() {
  if ! is_running; then
    if [[ -s "$PIDFILE" ]]; then log "stale pidfile removed (pid $(pid_of_broker) is not our broker)"; fi
    rm -f "$PIDFILE"
    log "broker not running"
    return 0
  fi
  local pid t0
  pid="$(pid_of_broker)"
  t0="$(now_ms)"
  log "stopping broker pid $pid (SIGTERM, up to ${STOP_TIMEOUT}s) ..."
  kill -TERM "$pid" 2>/dev/null || true
  local deadline=$(( $(now_ms) + STOP_TIMEOUT * 1000 ))
  while kill -0 "$pid" 2>/dev/null && (( $(now_ms) < deadline )); do sleep 0.2; done
  if kill -0 "$pid" 2>/dev/null; then
    log "broker still alive after ${STOP_TIMEOUT}s: SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
  fi
  rm -f "$PIDFILE"
  log "broker stopped in $(secs_since "$t0")"
}

# ---------------------------------------------------------------- commands

cmd_up() {
  with_lock
  start_broker up
  emit_address
}

cmd_start_broker() {
  with_lock
  start_broker start
  emit_address
}

cmd_stop_broker() {
  with_lock
  stop_broker
  log "data kept in $DATA; 'start-broker' resumes on it"
}

cmd_restart_broker() {
  local pause="${1:-0}"
  [[ "$pause" =~ ^[0-9]+([.][0-9]+)?$ ]] || die "restart-broker [PAUSE_SECONDS]: bad pause '$pause'"
  with_lock
  stop_broker
  if [[ "$pause" != 0 ]]; then log "broker down for ${pause}s ..."; sleep "$pause"; fi
  start_broker start
  emit_address
}

cmd_down() {
  with_lock
  stop_broker
  if [[ "${KEEP_KAFKA_DATA:-0}" == 1 ]]; then
    log "KEEP_KAFKA_DATA=1: data kept in $DATA"
  else
    if [[ -e "$DATA" ]]; then
      rm -rf "$DATA"
      log "data dir $DATA removed"
    fi
    rm -f "$PORTFILE"
  fi
  log "logs kept in $LOGS"
}

cmd_status() {
  if ! is_running; then
    log "broker not running (run dir $RUN)"
    exit 1
  fi
  if probe; then
    log "broker running (pid $(pid_of_broker)) and answering at $(address)"
    emit_address
  else
    log "broker process $(pid_of_broker) is running but does not answer metadata at $(address)"
    exit 1
  fi
}

cmd_topics_create() {
  [[ $# -ge 2 ]] || die "usage: topics-create NAME PARTITIONS [--config k=v ...]"
  local name="$1" parts="$2"
  shift 2
  [[ "$parts" =~ ^[0-9]+$ ]] || die "PARTITIONS must be a number, not '$parts'"
  is_running || die "broker not running: run 'scripts/kafka.sh up' first"
  run_java org.apache.kafka.tools.TopicCommand --bootstrap-server "$(address)" \
    --create --if-not-exists --topic "$name" --partitions "$parts" --replication-factor 1 "$@" >&2
  log "topic $name ($parts partitions) present at $(address)"
}

cmd_topics_list() {
  is_running || die "broker not running: run 'scripts/kafka.sh up' first"
  run_java org.apache.kafka.tools.TopicCommand --bootstrap-server "$(address)" --list
}

cmd_selftest() {
  is_running || die "broker not running: run 'scripts/kafka.sh up' first"
  run_java "$KDIR/TxCheck.java" "$(address)" "$@"
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
    stop-broker) cmd_stop_broker ;;
    start-broker) cmd_start_broker ;;
    restart-broker) cmd_restart_broker "$@" ;;
    topics-create) cmd_topics_create "$@" ;;
    topics-list) cmd_topics_list ;;
    selftest) cmd_selftest "$@" ;;
    address) address ;;
    classpath) check_java; classpath ;;
    run-class) [[ $# -ge 1 ]] || die "usage: run-class CLASS [ARGS...]"; run_java "$@" ;;
    logs) echo "$LOGS" ;;
    -h|--help|help) usage ;;
    "") usage; exit 2 ;;
    *) log "unknown command '$cmd'"; usage; exit 2 ;;
  esac
}

main "$@"
