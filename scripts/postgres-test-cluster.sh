#!/usr/bin/env bash
# postgres-test-cluster.sh - a throw-away PostgreSQL 15 cluster on loopback
# (Debian 12's postgresql-15), used by nanocdn's PostgreSQL index tests and by
# anyone who wants to try `index.engine: "postgres"`. Self-contained: writes
# nothing outside ROOT (no /etc/postgresql, no systemd unit, no pg_ctlcluster),
# listens on 127.0.0.1 only, and is stopped by the pid it started.
#
#   postgres-test-cluster.sh install        apt-get the Debian package (root)
#   postgres-test-cluster.sh start  [ROOT]  initdb under ROOT (once), start the
#                                           server in the background, wait until
#                                           it answers, print KEY=VALUE lines on
#                                           stdout (use with eval)
#   postgres-test-cluster.sh stop   [ROOT]  stop the server of ROOT by its pid
#                                           (never by name); data is kept
#   postgres-test-cluster.sh status [ROOT]  is the server of ROOT alive (exit 1
#                                           if not)
#   postgres-test-cluster.sh env    [ROOT]  print the KEY=VALUE lines again
#   postgres-test-cluster.sh wipe   [ROOT]  stop, then rm -rf ROOT (all data)
#
# Typical use:
#   sudo scripts/postgres-test-cluster.sh install
#   eval "$(scripts/postgres-test-cluster.sh start)"
#   NANOCDN_INDEX__ENGINE=postgres NANOCDN_INDEX_URL=$PG_URL nanocdn serve ...
#   scripts/postgres-test-cluster.sh wipe
#
# ROOT defaults to $PG_ROOT, else a new directory under ${TMPDIR:-/tmp}
# (printed as PG_ROOT: pass it to stop/wipe). As root, the server runs as
# the `postgres` user (PostgreSQL refuses to run as root) and ROOT is
# chowned to it; otherwise it runs as the calling user. `start` is idempotent:
# when the server of ROOT is up and answering it only prints the lines.
#
# `start` prints:
#   PG_URL=postgres://nanocdn:<password>@127.0.0.1:<port>/nanocdn
#   PGHOST=127.0.0.1 PGPORT PGUSER=nanocdn PGPASSWORD PGDATABASE=nanocdn
#   PG_ROOT PG_BIN PG_SOCKET_DIR (the superuser connects there without a password)
#
# The role `nanocdn` logs in over TCP with a password (scram-sha-256) and may
# create databases (tests give each test its own: `createdb`), so tests need no
# superuser. The superuser (the OS user the server runs as) connects through
# the Unix socket in PG_SOCKET_DIR with `trust`.
#
# Tunables (environment, read by `start`):
#   PG_PORT=           the TCP port on 127.0.0.1; default: a random free port
#                      (retried on a clash)
#   PG_PASSWORD=       the password of role nanocdn; default: a random one
#   PG_BIN=/usr/lib/postgresql/15/bin
#   PG_START_TIMEOUT=60   seconds to wait until the server answers
#   PG_FSYNC=off       fsync of the throw-away cluster (off: tests are faster;
#                      a crash of the machine may lose the cluster)
set -euo pipefail

cmd=${1:-}
ME=$(basename "$0")
PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}

die() { echo "$ME: $*" >&2; exit 1; }
log() { echo "$ME: $*" >&2; }
# shellcheck source=scripts/apt-install.sh
source "$(dirname "${BASH_SOURCE[0]}")/apt-install.sh"

if [[ -n ${2:-} ]]; then ROOT=$2
elif [[ -n ${PG_ROOT:-} ]]; then ROOT=$PG_ROOT
elif [[ $cmd == start ]]; then ROOT=$(mktemp -d "${TMPDIR:-/tmp}/nanocdn-pg-XXXXXX")
else ROOT=
fi
if [[ -n $ROOT ]]; then
  [[ $ROOT == /* ]] || ROOT=$PWD/$ROOT
  ROOT=${ROOT%/}
fi
need_root_dir() { [[ -n $ROOT ]] || die "which cluster? pass ROOT or set PG_ROOT (start printed it)"; }

# --- process bookkeeping -------------------------------------------------------
# ROOT/run/postgres.pid holds the postmaster's pid and, on line 2, its start
# time from /proc/PID/stat, so that `stop` never signals an unrelated process
# that has reused the pid.
proc_start() { sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | awk '{print $20}'; }

alive() {  # PID exists and is not a zombie
  local s
  s=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | awk '{print $1}')
  [[ -n $s && $s != Z ]]
}

server_pid() {  # prints the pid of the live server of ROOT, or fails
  local f="$ROOT/run/postgres.pid" pid st
  [[ -r $f ]] || return 1
  { read -r pid; read -r st; } <"$f" || return 1
  [[ -n $pid && "$(proc_start "$pid")" == "$st" ]] && alive "$pid" || return 1
  echo "$pid"
}

# Runs a PostgreSQL program as the cluster's owner.
as_owner() {
  if [[ $(id -u) == 0 ]]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

random_port() {  # a port in 20000-59999 nobody listens on right now
  local p i
  for ((i = 0; i < 50; i++)); do
    p=$((20000 + (RANDOM * 32768 + RANDOM) % 40000))
    if ! port_busy "$p"; then echo "$p"; return 0; fi
  done
  die "no free port found"
}

print_env() {
  [[ -r $ROOT/pg.env ]] || die "no $ROOT/pg.env (not started?)"
  cat "$ROOT/pg.env"
}

answers() {  # the server takes a password login of nanocdn over TCP
  PGPASSWORD=$PASSWORD PGCONNECT_TIMEOUT=2 "$PG_BIN/psql" -X -q -w -h 127.0.0.1 -p "$PORT" -U nanocdn -d nanocdn \
    -c 'SELECT 1' >/dev/null 2>&1
}

do_stop() {
  need_root_dir
  local pid t
  if pid=$(server_pid); then
    # SIGINT = "fast" shutdown: active sessions are ended, no waiting for clients.
    kill -INT "$pid" 2>/dev/null || true
    for ((t = 0; t < 100; t++)); do alive "$pid" || break; sleep 0.1; done
    if alive "$pid"; then
      # SIGQUIT = "immediate" shutdown (the children exit at once), then KILL.
      kill -QUIT "$pid" 2>/dev/null || true
      for ((t = 0; t < 30; t++)); do alive "$pid" || break; sleep 0.1; done
      kill -KILL "$pid" 2>/dev/null || true
    fi
  fi
  rm -f "$ROOT/run/postgres.pid"
  return 0
}

init_cluster() {
  local owner
  owner=$( [[ $(id -u) == 0 ]] && echo postgres || id -un )
  if [[ $(id -u) == 0 ]]; then
    id postgres >/dev/null 2>&1 || die "no user 'postgres' (run '$0 install')"
  fi
  mkdir -p "$ROOT/data" "$ROOT/run" "$ROOT/log"
  chmod 0700 "$ROOT/data"
  if [[ $(id -u) == 0 ]]; then chown -R postgres: "$ROOT"; chmod 0755 "$ROOT"; fi
  # The superuser is the OS user; auth: trust on the socket only, scram over TCP.
  as_owner "$PG_BIN/initdb" -D "$ROOT/data" -U "$owner" --encoding=UTF8 --locale=C.UTF-8 \
    --auth-local=trust --auth-host=scram-sha-256 >"$ROOT/log/initdb.log" 2>&1 ||
    { cat "$ROOT/log/initdb.log" >&2; die "initdb failed"; }
  cat >>"$ROOT/data/postgresql.conf" <<EOF

# --- written by $ME ---
listen_addresses = '127.0.0.1'
unix_socket_directories = '$ROOT/run'
fsync = ${PG_FSYNC:-off}
synchronous_commit = off
full_page_writes = off
max_connections = 200
shared_buffers = 32MB
logging_collector = off
log_min_messages = warning
EOF
  echo "$owner" >"$ROOT/run/owner"
}

# Role nanocdn and database nanocdn, through the socket as the superuser.
create_role() {
  local owner sql
  owner=$(cat "$ROOT/run/owner")
  sql="CREATE ROLE nanocdn LOGIN CREATEDB PASSWORD '${PASSWORD//\'/\'\'}'"
  as_owner "$PG_BIN/psql" -X -q -w -h "$ROOT/run" -p "$PORT" -U "$owner" -d postgres -v ON_ERROR_STOP=1 \
    -c "$sql" -c 'CREATE DATABASE nanocdn OWNER nanocdn' >>"$ROOT/log/initdb.log" 2>&1 ||
    { cat "$ROOT/log/initdb.log" >&2; die "creating role/database nanocdn failed"; }
}

launch() {
  local port=$1
  # -w: wait until the server accepts connections (or fails); logs to ROOT/log.
  as_owner "$PG_BIN/pg_ctl" -D "$ROOT/data" -l "$ROOT/log/postgres.log" -w -t "$TIMEOUT" \
    -o "-p $port -k $ROOT/run" start >>"$ROOT/log/pg_ctl.log" 2>&1
}

do_start() {
  local t0 first=false pid tries
  t0=$(date +%s%N)
  [[ -x $PG_BIN/initdb && -x $PG_BIN/pg_ctl && -x $PG_BIN/psql ]] ||
    die "PostgreSQL 15 not found in $PG_BIN: run '$0 install' (Debian 12)"
  TIMEOUT=${PG_START_TIMEOUT:-60}

  if [[ -r $ROOT/pg.env ]]; then
    # started before: the port and password it was started with win
    PORT=$(sed -n 's/^PGPORT=//p' "$ROOT/pg.env")
    PASSWORD=$(sed -n 's/^PGPASSWORD=//p' "$ROOT/pg.env")
    if server_pid >/dev/null && answers; then log "already running under $ROOT"; print_env; return 0; fi
    do_stop
  else
    [[ ! -e $ROOT || -z "$(ls -A "$ROOT" 2>/dev/null)" ]] || die "$ROOT is not empty and holds no cluster"
    PASSWORD=${PG_PASSWORD:-$(head -c 18 /dev/urandom | base64 | tr '+/' 'xy')}
    PORT=${PG_PORT:-}
    first=true
    init_cluster
  fi

  # A random port may be taken between the probe and the bind: try a few.
  for ((tries = 0; ; tries++)); do
    [[ -n $PORT ]] || PORT=$(random_port)
    if launch "$PORT"; then break; fi
    if [[ -z ${PG_PORT:-} && $first == true && $tries -lt 5 ]] &&
       grep -q 'Address already in use' "$ROOT/log/postgres.log" 2>/dev/null; then
      log "port $PORT was taken meanwhile; trying another"
      PORT=; continue
    fi
    tail -n 20 "$ROOT/log/postgres.log" >&2 || true
    die "pg_ctl start failed on 127.0.0.1:$PORT; logs in $ROOT/log"
  done
  pid=$(server_pid_from_file) || die "server started but left no postmaster.pid"
  printf '%s\n%s\n' "$pid" "$(proc_start "$pid")" >"$ROOT/run/postgres.pid"

  if [[ $first == true ]]; then create_role; fi

  cat >"$ROOT/pg.env" <<EOF
PG_URL=postgres://nanocdn:$PASSWORD@127.0.0.1:$PORT/nanocdn
PGHOST=127.0.0.1
PGPORT=$PORT
PGUSER=nanocdn
PGPASSWORD=$PASSWORD
PGDATABASE=nanocdn
PG_ROOT=$ROOT
PG_BIN=$PG_BIN
PG_SOCKET_DIR=$ROOT/run
EOF
  chmod 0600 "$ROOT/pg.env"

  local deadline=$(( $(date +%s) + TIMEOUT ))
  until answers; do
    server_pid >/dev/null || { tail -n 20 "$ROOT/log/postgres.log" >&2 || true; die "the server died; logs in $ROOT/log"; }
    (( $(date +%s) > deadline )) && { do_stop; die "no answer after ${TIMEOUT}s; logs in $ROOT/log"; }
    sleep 0.1
  done
  log "ready after $(( ($(date +%s%N) - t0) / 1000000 )) ms on 127.0.0.1:$PORT ($ROOT)"
  print_env
}

server_pid_from_file() {  # the postmaster's pid as the server wrote it
  local pid
  [[ -r $ROOT/data/postmaster.pid ]] || return 1
  read -r pid <"$ROOT/data/postmaster.pid" || return 1
  [[ -n $pid ]] && alive "$pid" || return 1
  echo "$pid"
}

do_status() {
  need_root_dir
  local pid
  if pid=$(server_pid); then echo "postgres running pid $pid ($ROOT)"
  else echo "postgres stopped ($ROOT)"; return 1; fi
}

do_install() {
  # Debian's postinst creates the `postgres` user and a "main" cluster that
  # it starts only where services may start; this script never uses it.
  apt_install postgresql-15 postgresql-client-15
  log "installed: $(dpkg-query -W -f '${Package} ${Version}' postgresql-15)"
}

case $cmd in
  install) do_install ;;
  start) do_start ;;
  stop) do_stop; log "stopped ($ROOT)" ;;
  status) do_status ;;
  env) need_root_dir; print_env ;;
  wipe)
    need_root_dir
    # refuse to rm -rf something that does not look like a cluster root
    [[ $ROOT != / ]] || die "refusing to wipe '$ROOT'"
    if [[ -e $ROOT ]] && [[ ! -e $ROOT/data/PG_VERSION && ! -e $ROOT/pg.env ]] &&
       [[ -n "$(ls -A "$ROOT")" ]]; then
      die "$ROOT does not look like a cluster root; not wiping"
    fi
    do_stop; rm -rf "$ROOT"; log "wiped $ROOT" ;;
  *) sed -n '2,/^set -euo/p' "$0" | grep '^#' | sed 's/^# \{0,1\}//'
     [[ $cmd == -h || $cmd == --help ]] ;;
esac
