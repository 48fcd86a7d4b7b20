#!/usr/bin/env bash
# swift-test-cluster.sh - an OpenStack Swift-All-In-One on loopback (Swift 2.30,
# Debian 12 packages) with the s3api + tempauth middlewares, used as the S3
# backend by nanocdn's S3 integration tests. Self-contained: needs only Debian's
# apt archive and loopback; writes nothing outside ROOT (no /etc/swift, no
# syslog, no systemd).
#
#   swift-test-cluster.sh install        apt-get the Debian packages (root)
#   swift-test-cluster.sh start  [ROOT]  write config under ROOT, build rings,
#                                        start the daemons in the background,
#                                        wait until healthy, print KEY=VALUE
#                                        lines on stdout (use with eval)
#   swift-test-cluster.sh stop   [ROOT]  kill the daemons in ROOT/run/*.pid (by
#                                        pid, never by name); unmount the tmpfs
#                                        object device if start mounted one
#   swift-test-cluster.sh status [ROOT]  which daemons are alive (exit 1 if any
#                                        is not)
#   swift-test-cluster.sh env    [ROOT]  print the KEY=VALUE lines again
#   swift-test-cluster.sh wipe   [ROOT]  stop, then rm -rf ROOT (all objects)
#
# Typical use:
#   sudo scripts/swift-test-cluster.sh install
#   eval "$(scripts/swift-test-cluster.sh start)"
#   ... run the tests with S3_ENDPOINT etc. ...
#   scripts/swift-test-cluster.sh stop
#
# ROOT defaults to $SAIO_ROOT, else /tmp/nanocdn-swift. `start` is idempotent:
# when the daemons of ROOT are already up and healthy it only prints the lines.
# Stored data is kept across stop/start (except on a tmpfs object device);
# use `wipe` for a clean store.
#
# `start` prints:
#   S3_ENDPOINT=http://127.0.0.1:18080   S3_REGION=us-east-1
#   S3_ACCESS_KEY_ID=test:tester         S3_SECRET_ACCESS_KEY=testing
#   S3_FORCE_PATH_STYLE=true
#   SWIFT_AUTH_URL=.../auth/v1.0  SWIFT_USER  SWIFT_KEY
#   SAIO_ROOT  SAIO_OBJECT_DEVICE_DIR  SAIO_OBJECT_DEVICE_MB
#   SAIO_FALLOCATE_RESERVE  SAIO_{PROXY,OBJECT,CONTAINER,ACCOUNT,MEMCACHE}_PORT
#
# Tunables (environment, read by `start`):
#   SAIO_PROXY_PORT=18080 SAIO_OBJECT_PORT=16210 SAIO_CONTAINER_PORT=16211
#   SAIO_ACCOUNT_PORT=16212 SAIO_MEMCACHE_PORT=16213   (all on 127.0.0.1)
#   SAIO_ACCOUNT=test SAIO_USER=tester SAIO_KEY=testing   (tempauth user; the
#                                 S3 access key is "<account>:<user>")
#   SAIO_FALLOCATE_RESERVE=1%     object-server fallocate_reserve (bytes or N%):
#                                 a PUT with Content-Length gets 507 (the client
#                                 sees 503) when free - length <= reserve
#   SAIO_OBJECT_DEVICE_MB=        if set (root only), the object device is a
#                                 tmpfs of this many MiB: exact "disk full"
#                                 tests; `stop` unmounts it, losing its objects
#   SAIO_ERROR_SUPPRESSION_INTERVAL=0   proxy: seconds a failed device (e.g.
#                                 after a 507) is skipped; Swift's default 60
#                                 turns one 507 into a minute of 503s
#   SAIO_WORKERS=0                0 = one process per server, no forking
#   SAIO_LOG_LEVEL=INFO           logs: ROOT/log/<daemon>.log
#   SAIO_START_TIMEOUT=60         seconds to wait for health
#
# Client notes (@aws-sdk/client-s3 v3): forcePathStyle: true; region
# us-east-1; requestChecksumCalculation and responseChecksumValidation
# 'WHEN_REQUIRED' (stream bodies otherwise use aws-chunked -> 501);
# DeleteObjects needs a Content-MD5 header (s3api requires it); a full disk
# shows up as 503 SlowDown, which the SDK retries (use maxAttempts: 1);
# conditional PUT (If-None-Match: *) is not supported (501).
set -euo pipefail

cmd=${1:-}
ROOT=${2:-${SAIO_ROOT:-/tmp/nanocdn-swift}}
[[ $ROOT == /* ]] || ROOT=$PWD/$ROOT
ROOT=${ROOT%/}
DAEMONS="memcached account container object proxy"   # start order
# Debian's python: the packages install swift there. `python3` on PATH may be
# a pyenv/venv interpreter without the swift module.
PY=/usr/bin/python3
ME=$(basename "$0")

die() { echo "$ME: $*" >&2; exit 1; }
log() { echo "$ME: $*" >&2; }
# shellcheck source=scripts/apt-install.sh
source "$(dirname "${BASH_SOURCE[0]}")/apt-install.sh"

# --- process bookkeeping -------------------------------------------------------
# A pid file holds the pid and, on line 2, the process start time from
# /proc/PID/stat, so that `stop` never signals an unrelated process that has
# reused the pid.
proc_start() { sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | awk '{print $20}'; }

alive() {  # PID exists and is not a zombie
  local s
  s=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | awk '{print $1}')
  [[ -n $s && $s != Z ]]
}

pid_of() {  # prints the pid of the live daemon NAME of ROOT, or fails
  local f="$ROOT/run/$1.pid" pid st
  [[ -r $f ]] || return 1
  { read -r pid; read -r st; } <"$f" || return 1
  [[ -n $pid && "$(proc_start "$pid")" == "$st" ]] && alive "$pid" || return 1
  echo "$pid"
}

launch() {  # NAME CMD... : run in the background, stdio to ROOT/log/NAME.log
  local name=$1; shift
  nohup "$@" >>"$ROOT/log/$name.log" 2>&1 </dev/null &
  local pid=$!
  printf '%s\n%s\n' "$pid" "$(proc_start "$pid")" >"$ROOT/run/$name.pid"
}

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

do_stop() {
  local name pid pids=() left t
  for name in proxy object container account memcached; do
    if pid=$(pid_of "$name"); then
      # Swift servers setsid() and, on SIGTERM, killpg their own group
      # (forked workers included); the caller's group is not touched.
      kill -TERM "$pid" 2>/dev/null || true
      pids+=("$pid")
    fi
  done
  for ((t = 0; t < 100; t++)); do          # up to 10 s for a clean exit
    left=()
    for pid in "${pids[@]}"; do if alive "$pid"; then left+=("$pid"); fi; done
    pids=("${left[@]}")
    ((${#pids[@]} == 0)) && break
    sleep 0.1
  done
  for pid in "${pids[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
  rm -f "$ROOT"/run/*.pid
  if [[ -e $ROOT/run/obj1.tmpfs ]]; then
    if mountpoint -q "$ROOT/srv/node/obj1"; then
      umount "$ROOT/srv/node/obj1" || die "cannot unmount the tmpfs $ROOT/srv/node/obj1"
    fi
    rm -f "$ROOT/run/obj1.tmpfs"
  fi
  return 0
}

print_env() {
  [[ -r $ROOT/saio.env ]] || die "no $ROOT/saio.env (not started?)"
  cat "$ROOT/saio.env"
}

# --- config --------------------------------------------------------------------
write_config() {
  local E=$ROOT/etc run_user
  run_user=$(id -un)
  mkdir -p "$E" "$ROOT/srv/node/db1" "$ROOT/srv/node/obj1" "$ROOT/run" "$ROOT/log" "$ROOT/bin"

  # Swift 2.30 reads swift.conf from the hard-coded /etc/swift; this launcher
  # points it at $E instead (utils.set_swift_dir, then reloads the policies and
  # constraints, as the swift-*-server scripts would), and sends the logs to
  # stderr instead of syslog (which would fall back to UDP 127.0.0.1:514).
  cat >"$ROOT/bin/swift-run.py" <<'PY'
# usage: /usr/bin/python3 swift-run.py SWIFT_DIR SERVER_NAME CONF_FILE
import logging, sys
swift_dir, server, conf = sys.argv[1:4]
from swift.common import utils

class NoSyslog(logging.Handler):
    def __init__(self, *args, **kwargs):
        logging.Handler.__init__(self)
    def emit(self, record):
        pass

utils.ThreadSafeSysLogHandler = NoSyslog   # keep only the console handler
utils.set_swift_dir(swift_dir)             # swift.conf from SWIFT_DIR
from swift.common import constraints, storage_policy
storage_policy.reload_storage_policies()
constraints.reload_constraints()
from swift.common.wsgi import run_wsgi
kwargs = {'verbose': True}                 # log to stderr
if server == 'object-server':
    from swift.obj import server as obj_server
    kwargs['global_conf_callback'] = obj_server.global_conf_callback
sys.exit(run_wsgi(conf, server, **kwargs))
PY

  cat >"$E/swift.conf" <<EOF
[swift-hash]
# any non-empty value; must never change while data exists
swift_hash_path_prefix = nanocdn
swift_hash_path_suffix = nanocdn

[storage-policy:0]
name = Policy-0
default = yes
EOF

  # settings shared by the three storage servers
  local common="[DEFAULT]
bind_ip = 127.0.0.1
devices = $ROOT/srv/node
# the devices are plain directories (or a tmpfs), not checked mount points
mount_check = false
swift_dir = $E
user = $run_user
workers = $WORKERS
log_level = $LOG_LEVEL"

  local s
  for s in account container; do
    cat >"$E/$s-server.conf" <<EOF
$common
bind_port = $([[ $s == account ]] && echo "$ACCOUNT_PORT" || echo "$CONTAINER_PORT")

[pipeline:main]
pipeline = healthcheck $s-server

[app:$s-server]
use = egg:swift#$s

[filter:healthcheck]
use = egg:swift#healthcheck
EOF
  done

  cat >"$E/object-server.conf" <<EOF
$common
bind_port = $OBJECT_PORT
# PUT with Content-Length N fails with 507 when (free bytes - N) <= this
# (bytes, or N% of the filesystem)
fallocate_reserve = $RESERVE

[pipeline:main]
pipeline = healthcheck object-server

[app:object-server]
use = egg:swift#object

[filter:healthcheck]
use = egg:swift#healthcheck
EOF

  cat >"$E/proxy-server.conf" <<EOF
[DEFAULT]
bind_ip = 127.0.0.1
bind_port = $PROXY_PORT
swift_dir = $E
user = $run_user
workers = $WORKERS
log_level = $LOG_LEVEL

[pipeline:main]
# s3api must come before the auth middleware (tempauth); multipart upload
# needs slo after s3api; tempauth needs the cache (memcached)
pipeline = catch_errors gatekeeper healthcheck proxy-logging cache listing_formats s3api tempauth copy slo dlo versioned_writes proxy-logging proxy-server

[app:proxy-server]
use = egg:swift#proxy
# tempauth accounts do not exist until first written
account_autocreate = true
# with one device there is nothing to fail over to: never skip it
error_suppression_interval = $ERROR_SUPPRESSION_INTERVAL

[filter:s3api]
use = egg:swift#s3api
# region for SigV4 signatures; clients must use the same
location = us-east-1

[filter:tempauth]
use = egg:swift#tempauth
# user_<account>_<user> = <key> <groups>; .admin may create buckets
user_${S3_ACCOUNT}_${S3_USER} = $S3_KEY .admin

[filter:cache]
use = egg:swift#memcache
memcache_servers = 127.0.0.1:$MEMCACHE_PORT

[filter:catch_errors]
use = egg:swift#catch_errors
[filter:gatekeeper]
use = egg:swift#gatekeeper
[filter:healthcheck]
use = egg:swift#healthcheck
[filter:proxy-logging]
use = egg:swift#proxy_logging
[filter:listing_formats]
use = egg:swift#listing_formats
[filter:copy]
use = egg:swift#copy
[filter:slo]
use = egg:swift#slo
[filter:dlo]
use = egg:swift#dlo
[filter:versioned_writes]
use = egg:swift#versioned_writes
EOF
}

build_rings() {  # 1 replica, 2^8 partitions; rebuilt only when ports change
  # account + container DBs on device db1, objects on device obj1, so that a
  # full object device does not also break the DB servers
  local E=$ROOT/etc stamp="part_power=8 ports=$ACCOUNT_PORT,$CONTAINER_PORT,$OBJECT_PORT devs=db1,obj1"
  if [[ -f $E/account.ring.gz && -f $E/container.ring.gz && -f $E/object.ring.gz &&
        "$(cat "$E/rings.stamp" 2>/dev/null)" == "$stamp" ]]; then
    return 0
  fi
  # One python process with swift's RingBuilder (what swift-ring-builder's
  # create / add / rebalance do): ~0.4 s instead of ~4 s for nine CLI runs.
  "$PY" - "$E" "$ACCOUNT_PORT" "$CONTAINER_PORT" "$OBJECT_PORT" >>"$ROOT/log/rings.log" 2>&1 <<'PY' ||
import os, sys
from swift.common.ring import RingBuilder
etc, ports = sys.argv[1], dict(zip(('account', 'container', 'object'), map(int, sys.argv[2:5])))
for name, port in ports.items():
    dev = 'obj1' if name == 'object' else 'db1'
    b = RingBuilder(8, 1, 1)                 # 2^8 partitions, 1 replica, 1 h
    b.add_dev({'region': 1, 'zone': 1, 'ip': '127.0.0.1', 'port': port,
               'replication_ip': '127.0.0.1', 'replication_port': port,
               'device': dev, 'weight': 1.0, 'meta': ''})
    b.rebalance()
    for suffix in ('.ring.gz', '.builder'):
        f = os.path.join(etc, name + suffix)
        if os.path.exists(f):
            os.unlink(f)
    b.get_ring().save(os.path.join(etc, name + '.ring.gz'))
    b.save(os.path.join(etc, name + '.builder'))
    print('ring %s: 127.0.0.1:%d/%s' % (name, port, dev))
PY
    die "ring build failed, see $ROOT/log/rings.log"
  echo "$stamp" >"$E/rings.stamp"
}

healthy() {  # all daemons up and answering, and tempauth -> account works
  local p line
  for p in "$ACCOUNT_PORT" "$CONTAINER_PORT" "$OBJECT_PORT" "$PROXY_PORT"; do
    [[ "$(curl -s -m 2 "http://127.0.0.1:$p/healthcheck")" == OK ]] || return 1
  done
  line=$( (exec 3<>"/dev/tcp/127.0.0.1/$MEMCACHE_PORT" &&
            printf 'version\r\n' >&3 && read -r -t 2 l <&3 && echo "$l") 2>/dev/null) || return 1
  [[ $line == VERSION* ]] || return 1
  local hdrs tok url
  hdrs=$(curl -s -m 5 -D - -o /dev/null -H "X-Storage-User: $S3_ACCOUNT:$S3_USER" \
    -H "X-Storage-Pass: $S3_KEY" "http://127.0.0.1:$PROXY_PORT/auth/v1.0") || return 1
  tok=$(sed -n 's/^X-Auth-Token: *\([^[:space:]]*\).*/\1/Ip' <<<"$hdrs")
  url=$(sed -n 's/^X-Storage-Url: *\([^[:space:]]*\).*/\1/Ip' <<<"$hdrs")
  [[ -n $tok && -n $url ]] || return 1
  [[ "$(curl -s -m 5 -o /dev/null -w '%{http_code}' -I -H "X-Auth-Token: $tok" "$url")" == 2* ]]
}

do_start() {
  local t0 name pid c p
  t0=$(date +%s%N)
  for c in memcached curl mountpoint; do
    command -v "$c" >/dev/null || die "$c not found: run '$0 install' (Debian 12)"
  done
  [[ -x $PY && -d /usr/lib/python3/dist-packages/swift/common/middleware/s3api ]] ||
    die "python3-swift with s3api not found for $PY: run '$0 install'"

  PROXY_PORT=${SAIO_PROXY_PORT:-18080}
  OBJECT_PORT=${SAIO_OBJECT_PORT:-16210}
  CONTAINER_PORT=${SAIO_CONTAINER_PORT:-16211}
  ACCOUNT_PORT=${SAIO_ACCOUNT_PORT:-16212}
  MEMCACHE_PORT=${SAIO_MEMCACHE_PORT:-16213}
  S3_ACCOUNT=${SAIO_ACCOUNT:-test} S3_USER=${SAIO_USER:-tester} S3_KEY=${SAIO_KEY:-testing}
  WORKERS=${SAIO_WORKERS:-0}
  LOG_LEVEL=${SAIO_LOG_LEVEL:-INFO}
  ERROR_SUPPRESSION_INTERVAL=${SAIO_ERROR_SUPPRESSION_INTERVAL:-0}
  RESERVE=${SAIO_FALLOCATE_RESERVE:-1%}
  local timeout=${SAIO_START_TIMEOUT:-60} dev_mb=${SAIO_OBJECT_DEVICE_MB:-}

  # already running (all five alive and healthy)? -> just print the lines
  local nup=0
  for name in $DAEMONS; do if pid_of "$name" >/dev/null; then nup=$((nup + 1)); fi; done
  if ((nup == 5)) && [[ -r $ROOT/saio.env ]]; then
    # the settings it was started with win over the environment
    # shellcheck disable=SC1091
    . "$ROOT/saio.env"
    PROXY_PORT=$SAIO_PROXY_PORT OBJECT_PORT=$SAIO_OBJECT_PORT
    CONTAINER_PORT=$SAIO_CONTAINER_PORT ACCOUNT_PORT=$SAIO_ACCOUNT_PORT
    MEMCACHE_PORT=$SAIO_MEMCACHE_PORT S3_ACCOUNT=${S3_ACCESS_KEY_ID%%:*}
    S3_USER=${S3_ACCESS_KEY_ID#*:} S3_KEY=$S3_SECRET_ACCESS_KEY
    if healthy; then log "already running under $ROOT"; print_env; return 0; fi
  fi
  if ((nup > 0)); then log "restarting a partial/unhealthy cluster under $ROOT"; do_stop; fi

  for p in "$PROXY_PORT" "$OBJECT_PORT" "$CONTAINER_PORT" "$ACCOUNT_PORT" "$MEMCACHE_PORT"; do
    if port_busy "$p"; then die "127.0.0.1:$p is already in use (set SAIO_*_PORT)"; fi
  done

  local OBJ=$ROOT/srv/node/obj1
  mkdir -p "$ROOT/srv/node/db1" "$OBJ" "$ROOT/run" "$ROOT/log"
  # optional: the object device on its own small tmpfs -> exact, immediate
  # capacity accounting for "disk full" tests (a shared ext4 disk's free space
  # moves, and it frees deleted blocks only at the next journal commit)
  if [[ -n $dev_mb ]] && ! mountpoint -q "$OBJ"; then
    [[ $dev_mb =~ ^[1-9][0-9]*$ ]] || die "SAIO_OBJECT_DEVICE_MB must be a number of MiB"
    mount -t tmpfs -o "size=${dev_mb}m,mode=0755" nanocdn-swift-obj1 "$OBJ" ||
      die "cannot mount a tmpfs on $OBJ (needs root / CAP_SYS_ADMIN)"
    touch "$ROOT/run/obj1.tmpfs"   # `stop` unmounts it (its objects are lost)
  fi

  # the tmpfs may still be mounted from an earlier start: report its real size
  if [[ -e $ROOT/run/obj1.tmpfs ]]; then
    dev_mb=$(df -B1M --output=size "$OBJ" | tail -1 | tr -d ' ')
  else
    dev_mb=
  fi

  write_config
  build_rings
  log "config + rings ready after $(( ($(date +%s%N) - t0) / 1000000 )) ms"

  local mc_user=()
  [[ $(id -u) == 0 ]] && mc_user=(-u root)   # memcached refuses root without -u
  launch memcached memcached -l 127.0.0.1 -p "$MEMCACHE_PORT" -U 0 -m 64 -t 1 "${mc_user[@]}"
  for name in account container object proxy; do
    launch "$name" "$PY" "$ROOT/bin/swift-run.py" "$ROOT/etc" "$name-server" \
      "$ROOT/etc/$name-server.conf"
  done

  cat >"$ROOT/saio.env" <<EOF
S3_ENDPOINT=http://127.0.0.1:$PROXY_PORT
S3_REGION=us-east-1
S3_ACCESS_KEY_ID=$S3_ACCOUNT:$S3_USER
S3_SECRET_ACCESS_KEY=$S3_KEY
S3_FORCE_PATH_STYLE=true
SWIFT_AUTH_URL=http://127.0.0.1:$PROXY_PORT/auth/v1.0
SWIFT_USER=$S3_ACCOUNT:$S3_USER
SWIFT_KEY=$S3_KEY
SAIO_ROOT=$ROOT
SAIO_OBJECT_DEVICE_DIR=$OBJ
SAIO_OBJECT_DEVICE_MB=$dev_mb
SAIO_FALLOCATE_RESERVE=$RESERVE
SAIO_PROXY_PORT=$PROXY_PORT
SAIO_OBJECT_PORT=$OBJECT_PORT
SAIO_CONTAINER_PORT=$CONTAINER_PORT
SAIO_ACCOUNT_PORT=$ACCOUNT_PORT
SAIO_MEMCACHE_PORT=$MEMCACHE_PORT
EOF

  local deadline=$(( $(date +%s) + timeout ))
  until healthy; do
    for name in $DAEMONS; do
      if ! pid_of "$name" >/dev/null; then
        log "$name died; last lines of $ROOT/log/$name.log:"
        tail -n 20 "$ROOT/log/$name.log" >&2 || true
        do_stop; exit 1
      fi
    done
    if (( $(date +%s) > deadline )); then
      log "not healthy after ${timeout}s; logs in $ROOT/log"; do_stop; exit 1
    fi
    sleep 0.2
  done
  log "healthy after $(( ($(date +%s%N) - t0) / 1000000 )) ms"
  print_env
}

do_status() {
  local name pid rc=0
  for name in $DAEMONS; do
    if pid=$(pid_of "$name"); then echo "$name running pid $pid"
    else echo "$name stopped"; rc=1; fi
  done
  return $rc
}

do_install() {
  # --no-install-recommends keeps python3-keystonemiddleware & co out; the
  # packages' postinst starts no daemon where policy-rc.d forbids it / no systemd
  apt_install swift swift-proxy swift-object swift-container swift-account python3-swift memcached curl
  log "installed: $(dpkg-query -W -f '${Package} ${Version}' swift) + memcached, curl"
}

case $cmd in
  install) do_install ;;
  start) do_start ;;
  stop) do_stop; log "stopped ($ROOT)" ;;
  status) do_status ;;
  env) print_env ;;
  wipe)
    # refuse to rm -rf something that is not (or no longer looks like) a ROOT
    [[ -n $ROOT && $ROOT != / ]] || die "refusing to wipe '$ROOT'"
    if [[ -e $ROOT ]] && [[ ! -e $ROOT/etc/swift.conf && ! -e $ROOT/saio.env ]] &&
       [[ -n "$(ls -A "$ROOT")" ]]; then
      die "$ROOT does not look like a cluster root; not wiping"
    fi
    do_stop; rm -rf "$ROOT"; log "wiped $ROOT" ;;
  *) sed -n '2,/^set -euo/p' "$0" | grep '^#' | sed 's/^# \{0,1\}//'
     [[ $cmd == -h || $cmd == --help ]] ;;
esac
