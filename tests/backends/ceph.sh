#!/usr/bin/env bash
# A throw-away single-node Ceph cluster with radosgw (S3) on 127.0.0.1, for Twofold's tests.
#
# Everything lives inside DIR: ceph.conf, keyring, monitor and OSD data (the OSD uses the
# in-memory `memstore` object store), pid files, admin sockets and logs. Nothing is read
# from or written to /etc/ceph or /var/lib/ceph, and no systemd is needed.
#
# Usage:
#   tests/backends/ceph.sh start DIR    start mon + osd + radosgw, create two S3 users,
#                                       write DIR/env and print it; a failed start is
#                                       tried once more (first try kept in DIR/failed-start)
#   tests/backends/ceph.sh stop DIR     stop what `start DIR` started (radosgw, then the
#                                       OSD, then the monitor); DIR is left in place
#   tests/backends/ceph.sh status DIR   exit 0 if the S3 endpoint answers
#
# Environment:
#   TWOFOLD_CEPH_MEMSTORE_BYTES   size the OSD reports (default 8 GiB; data lives in RAM)
#   TWOFOLD_CEPH_START_TIMEOUT    seconds to wait for each daemon (default 60)
#   TWOFOLD_CEPH_STOP_TIMEOUT     seconds to wait after SIGTERM before SIGKILL (default 10)
#   TWOFOLD_CEPH_RGW_PORT         port radosgw tries first (default: a free one); when it
#                                 cannot bind it, start retries once on a free port
#
# DIR/env holds shell lines (KEY=VALUE, no quoting needed):
#   CEPH_S3_ENDPOINT CEPH_S3_ACCESS_KEY CEPH_S3_SECRET_KEY CEPH_S3_ACCESS_KEY_2
#   CEPH_S3_SECRET_KEY_2 CEPH_S3_REGION CEPH_CONF CEPH_MON_PID CEPH_OSD_PID CEPH_RGW_PID
set -euo pipefail

START_TIMEOUT=${TWOFOLD_CEPH_START_TIMEOUT:-60}
STOP_TIMEOUT=${TWOFOLD_CEPH_STOP_TIMEOUT:-10}
MEMSTORE_BYTES=${TWOFOLD_CEPH_MEMSTORE_BYTES:-8589934592}
RGW_NAME=client.rgw.twofold

usage() {
  echo "usage: $0 start|stop|status DIR" >&2
  exit 2
}

log() { echo "ceph.sh: $*" >&2; }
die() { log "error: $*"; exit 1; }

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

# Last lines of a log file, for error messages.
show_log() {
  local f=$1
  if [ -s "$f" ]; then
    echo "---- last lines of $f ----" >&2
    tail -n 30 "$f" >&2 || true
    echo "----" >&2
  fi
}

# --- packages ------------------------------------------------------------------------------
ensure_packages() {
  local missing=() c
  for c in ceph-mon:ceph-mon ceph-osd:ceph-osd radosgw:radosgw radosgw-admin:radosgw \
           ceph:ceph-common rados:ceph-common ceph-authtool:ceph-common monmaptool:ceph-common \
           curl:curl python3:python3 setsid:util-linux; do
    command -v "${c%%:*}" >/dev/null 2>&1 || missing+=("${c#*:}")
  done
  if [ "${#missing[@]}" -gt 0 ]; then
    mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
    log "installing ${missing[*]}"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
}

# --- helpers -------------------------------------------------------------------------------
# N free TCP ports on 127.0.0.1, all bound at once so that they differ.
free_ports() {
  python3 - "$1" <<'EOF'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
EOF
}

rand_str() { # rand_str LEN ALPHABET
  python3 -c 'import secrets,sys; n=int(sys.argv[1]); a=sys.argv[2]; print("".join(secrets.choice(a) for _ in range(n)))' "$1" "$2"
}

# HTTP status of GET URL ("000" when nothing answers).
http_code() {
  curl -s -o /dev/null -w '%{http_code}' --max-time 3 "$1" 2>/dev/null || true
}

alive() { [ -n "${1:-}" ] && kill -0 "$1" 2>/dev/null; }

# True when PID is a process started from this cluster's ceph.conf (guards against pid reuse).
ours() {
  local pid=$1 conf=$2
  alive "$pid" || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$conf"
}

# stop_pid NAME PID CONF: SIGTERM, wait up to STOP_TIMEOUT, then SIGKILL.
stop_pid() {
  local name=$1 pid=$2 conf=$3 i
  [ -n "$pid" ] || return 0
  ours "$pid" "$conf" || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < STOP_TIMEOUT * 10; i++)); do
    alive "$pid" || return 0
    sleep 0.1
  done
  log "$name (pid $pid) still running ${STOP_TIMEOUT}s after SIGTERM; sending SIGKILL"
  kill -KILL "$pid" 2>/dev/null || true
  for ((i = 0; i < 50; i++)); do
    alive "$pid" || return 0
    sleep 0.1
  done
  log "$name (pid $pid) survived SIGKILL"
  return 1
}

# The pid of a daemon: from DIR/env, else from its pid file.
pid_of() { # pid_of DIR VAR PIDFILE
  local dir=$1 var=$2 pidfile=$3 v=
  if [ -f "$dir/env" ]; then
    v=$(sed -n "s/^$var=//p" "$dir/env" | tail -n 1)
  fi
  if [ -z "$v" ] && [ -f "$dir/pids/$var" ]; then v=$(cat "$dir/pids/$var"); fi
  if [ -z "$v" ] && [ -f "$pidfile" ]; then v=$(cat "$pidfile"); fi
  echo "$v"
}

stop_all() {
  local dir=$1 conf=$1/ceph.conf rc=0
  [ -f "$conf" ] || return 0
  stop_pid radosgw "$(pid_of "$dir" CEPH_RGW_PID "$dir/run/$RGW_NAME.pid")" "$conf" || rc=1
  stop_pid ceph-osd "$(pid_of "$dir" CEPH_OSD_PID "$dir/run/osd.0.pid")" "$conf" || rc=1
  stop_pid ceph-mon "$(pid_of "$dir" CEPH_MON_PID "$dir/run/mon.a.pid")" "$conf" || rc=1
  return $rc
}

blocklist_watchers() {
  local dir=$1 i addr
  for i in 0 1 2 3 4 5 6 7; do
    timeout 10 rados -c "$dir/ceph.conf" -p default.rgw.control listwatchers "notify.$i" 2>/dev/null || true
  done | sed -n 's/^watcher=\([^ ]*\) .*/\1/p' | sort -u | while read -r addr; do
    timeout 20 ceph -c "$dir/ceph.conf" --connect-timeout 10 osd blocklist add "$addr" \
      >>"$dir/log/ceph-cli.log" 2>&1 || true
  done
}

abs_dir() {
  local d=$1
  case "$d" in /*) ;; *) d=$PWD/$d ;; esac
  # Ceph's config parser and our env file want plain paths.
  [[ "$d" =~ ^[A-Za-z0-9._/+-]+$ ]] || die "DIR must be a plain path (letters, digits, . _ / + -): $d"
  echo "${d%/}"
}

# --- start ---------------------------------------------------------------------------------
cmd_start() {
  local dir
  dir=$(abs_dir "$1")
  ensure_packages
  if [ -e "$dir/ceph.conf" ]; then
    die "$dir already holds a cluster; stop it and start in a fresh folder"
  fi
  mkdir -p "$dir"
  local t0=$SECONDS
  local started_ns
  started_ns=$(date +%s%N)

  local conf=$dir/ceph.conf
  mkdir -p "$dir/mon" "$dir/osd/ceph-0" "$dir/run" "$dir/log" "$dir/crash" "$dir/rgw" "$dir/pids"

  local ports mon2 mon1 rgw_port fsid osd_uuid
  ports=$(free_ports 3)
  read -r mon2 mon1 rgw_port <<<"$ports"
  rgw_port=${TWOFOLD_CEPH_RGW_PORT:-$rgw_port}
  fsid=$(python3 -c 'import uuid; print(uuid.uuid4())')
  osd_uuid=$(python3 -c 'import uuid; print(uuid.uuid4())')

  write_conf() {
    cat >"$conf" <<EOF
# Single-node Ceph cluster for Twofold's tests; every path is inside this folder.
[global]
fsid = $fsid
mon host = [v2:127.0.0.1:$mon2,v1:127.0.0.1:$mon1]
mon initial members = a
public addr = 127.0.0.1
public network = 127.0.0.1/32
ms bind ipv6 = false
auth cluster required = cephx
auth service required = cephx
auth client required = cephx
keyring = $dir/keyring
run dir = $dir/run
crash dir = $dir/crash
exec dir = $dir/run
pid file = $dir/run/\$name.pid
log file = $dir/log/\$name.log
mon cluster log file = $dir/log/cluster.log
log to stderr = false
err to stderr = true
[mon]
admin socket = $dir/run/\$name.asok

[osd]
admin socket = $dir/run/\$name.asok

[global]
mon data = $dir/mon/\$cluster-\$id
osd data = $dir/osd/\$cluster-\$id
# in-memory object store: starts in ~2.5 s (an unknown value would silently mean bluestore)
osd objectstore = memstore
memstore device bytes = $MEMSTORE_BYTES
# one OSD: pools of size 1, few PGs (radosgw makes 7+ pools), no replication across hosts
osd pool default size = 1
osd pool default min size = 1
mon allow pool size one = true
mon warn on pool no redundancy = false
# The monitor refuses to start when its data folder's filesystem has at most 5 % free (it
# compares whole percents, so a nearly full disk reads 0 % and only -1 turns the check off);
# a test cluster's monitor data is a few MB, and a shared build machine's disk is often full.
mon data avail crit = -1
mon data avail warn = -1
mon allow pool delete = true
osd pool default pg num = 8
osd pool default pgp num = 8
mon max pg per osd = 1000
osd pool default pg autoscale mode = off
osd crush chooseleaf type = 0
# without these, start takes ~13 s and each first CreateBucket/PUT ~2 s
paxos propose interval = 0.1
paxos min wait = 0.01
auth allow insecure global id reclaim = false
mon warn on insecure global id reclaim allowed = false

[$RGW_NAME]
admin socket = $dir/run/\$name.asok
# tcp_nodelay: without it the end of each answer waits for a delayed ACK (about 40 ms).
rgw frontends = beast endpoint=127.0.0.1:$rgw_port tcp_nodelay=1
rgw data = $dir/rgw
# memstore keeps deleted data in RAM until gc: collect after 30 s, not hours
rgw gc obj min wait = 30
rgw gc processor period = 30
rgw enable usage log = false
EOF
  }
  write_conf

  # From here on a failure stops what was started.
  START_DIR=$dir
  trap 'start_failed' EXIT

  local CEPH=(timeout 30 ceph -c "$conf" --connect-timeout 20)

  # One keyring with every entity; ceph-mon --mkfs imports it.
  ceph-authtool --create-keyring "$dir/keyring" --gen-key -n mon. --cap mon 'allow *' >/dev/null
  ceph-authtool "$dir/keyring" --gen-key -n client.admin \
    --cap mon 'allow *' --cap osd 'allow *' --cap mds 'allow *' --cap mgr 'allow *' >/dev/null
  ceph-authtool "$dir/keyring" --gen-key -n osd.0 \
    --cap mon 'allow profile osd' --cap osd 'allow *' --cap mgr 'allow profile osd' >/dev/null
  ceph-authtool "$dir/keyring" --gen-key -n "$RGW_NAME" \
    --cap mon 'allow rw' --cap osd 'allow rwx' --cap mgr 'allow rw' >/dev/null
  chmod 600 "$dir/keyring"

  monmaptool --create --fsid "$fsid" --addv a "[v2:127.0.0.1:$mon2,v1:127.0.0.1:$mon1]" \
    "$dir/monmap" >/dev/null
  ceph-mon -c "$conf" --mkfs -i a --monmap "$dir/monmap" --keyring "$dir/keyring" \
    >>"$dir/log/mkfs.log" 2>&1 || { show_log "$dir/log/mkfs.log"; die "ceph-mon --mkfs failed"; }

  # Daemons run in the foreground (-f) of their own session, so that $! is their pid;
  # disowned, as they outlive this script.
  setsid ceph-mon -c "$conf" -i a -f </dev/null >>"$dir/log/mon.a.out" 2>&1 &
  local mon_pid=$!
  disown "$mon_pid"
  echo "$mon_pid" >"$dir/pids/CEPH_MON_PID"

  # `ceph osd new` needs the monitor; it answers with the new OSD's id.
  local osd_id="" i
  for ((i = 0; i < START_TIMEOUT * 5; i++)); do
    alive "$mon_pid" || { show_log "$dir/log/mon.a.log"; show_log "$dir/log/mon.a.out"; die "ceph-mon exited"; }
    if osd_id=$("${CEPH[@]}" osd new "$osd_uuid" 2>>"$dir/log/ceph-cli.log"); then break; fi
    osd_id=""
    sleep 0.2
  done
  [ "$osd_id" = 0 ] || { show_log "$dir/log/mon.a.log"; show_log "$dir/log/ceph-cli.log"; die "ceph osd new gave '$osd_id', expected 0"; }

  ceph-osd -c "$conf" -i 0 --mkfs --osd-uuid "$osd_uuid" >>"$dir/log/mkfs.log" 2>&1 \
    || { show_log "$dir/log/mkfs.log"; show_log "$dir/log/osd.0.log"; die "ceph-osd --mkfs failed"; }
  [ "$(cat "$dir/osd/ceph-0/type" 2>/dev/null)" = memstore ] \
    || die "the OSD was not made on memstore (type: $(cat "$dir/osd/ceph-0/type" 2>/dev/null))"
  setsid ceph-osd -c "$conf" -i 0 -f </dev/null >>"$dir/log/osd.0.out" 2>&1 &
  local osd_pid=$!
  disown "$osd_pid"
  echo "$osd_pid" >"$dir/pids/CEPH_OSD_PID"

  local up=""
  for ((i = 0; i < START_TIMEOUT * 5; i++)); do
    alive "$osd_pid" || { show_log "$dir/log/osd.0.log"; show_log "$dir/log/osd.0.out"; die "ceph-osd exited"; }
    if "${CEPH[@]}" osd dump 2>>"$dir/log/ceph-cli.log" | grep -q '^osd\.0 up'; then up=1; break; fi
    sleep 0.2
  done
  [ -n "$up" ] || { show_log "$dir/log/osd.0.log"; die "osd.0 not up after ${START_TIMEOUT}s"; }
  local t_rados=$(( ($(date +%s%N) - started_ns) / 1000000 ))

  # radosgw; its port was free a moment ago but may be taken by now: one retry on a new port.
  local rgw_pid="" attempt code=000
  for attempt in 1 2; do
    setsid radosgw -c "$conf" -n "$RGW_NAME" -f </dev/null >>"$dir/log/rgw.out" 2>&1 &
    rgw_pid=$!
    # (disowned: a radosgw that failed to bind crashes on SIGTERM; no job notice for that)
    disown "$rgw_pid"
    echo "$rgw_pid" >"$dir/pids/CEPH_RGW_PID"
    code=000
    for ((i = 0; i < START_TIMEOUT * 5; i++)); do
      alive "$rgw_pid" || break
      code=$(http_code "http://127.0.0.1:$rgw_port/")
      [ "$code" = 000 ] || break
      # beast logs a bind failure and keeps running without a frontend
      if grep -qiE 'failed to bind|address already in use' "$dir/log/$RGW_NAME.log" 2>/dev/null; then break; fi
      sleep 0.2
    done
    [ "$code" = 000 ] || break
    show_log "$dir/log/$RGW_NAME.log"
    stop_pid radosgw "$rgw_pid" "$conf" || true
    if [ "$attempt" = 1 ]; then
      log "radosgw did not answer on port $rgw_port; retrying once on a new port"
      mv "$dir/log/$RGW_NAME.log" "$dir/log/$RGW_NAME.log.attempt1" 2>/dev/null || true
      rgw_port=$(free_ports 1)
      # The dead radosgw's watches on its control objects would make radosgw-admin wait
      # for them to time out (30 s); blocklisting its addresses drops them at once.
      blocklist_watchers "$dir"
      sed -i "s|^rgw frontends = .*|rgw frontends = beast endpoint=127.0.0.1:$rgw_port tcp_nodelay=1|" "$conf"
    fi
  done
  [ "$code" != 000 ] || die "radosgw did not answer on 127.0.0.1:$rgw_port"

  # Two S3 users with random keys.
  local ak1 sk1 ak2 sk2
  ak1=$(rand_str 20 ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789)
  sk1=$(rand_str 40 ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789)
  ak2=$(rand_str 20 ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789)
  sk2=$(rand_str 40 ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789)
  timeout 60 radosgw-admin -c "$conf" user create --uid twofold --display-name "Twofold tests" \
    --access-key "$ak1" --secret-key "$sk1" >>"$dir/log/radosgw-admin.out" 2>&1 \
    || { show_log "$dir/log/radosgw-admin.out"; die "radosgw-admin user create (main user) failed"; }
  timeout 60 radosgw-admin -c "$conf" user create --uid twofold-2 --display-name "Twofold tests, second user" \
    --access-key "$ak2" --secret-key "$sk2" >>"$dir/log/radosgw-admin.out" 2>&1 \
    || { show_log "$dir/log/radosgw-admin.out"; die "radosgw-admin user create (second user) failed"; }

  # Ready when a signed request of the main user answers 200 (the user is visible to radosgw).
  # radosgw wants x-amz-content-sha256, which curl 7.88 does not send by itself.
  local endpoint=http://127.0.0.1:$rgw_port signed=000
  for ((i = 0; i < START_TIMEOUT * 5; i++)); do
    signed=$(curl -s -o /dev/null -w '%{http_code}' --max-time 3 \
      --aws-sigv4 "aws:amz:us-east-1:s3" --user "$ak1:$sk1" \
      -H 'x-amz-content-sha256: UNSIGNED-PAYLOAD' "$endpoint/" 2>/dev/null || true)
    [ "$signed" = 200 ] && break
    alive "$rgw_pid" || break
    sleep 0.2
  done
  [ "$signed" = 200 ] || { show_log "$dir/log/$RGW_NAME.log"; die "a signed ListBuckets answered $signed, not 200"; }

  local ms=$(( ($(date +%s%N) - started_ns) / 1000000 ))
  cat >"$dir/env.tmp" <<EOF
CEPH_S3_ENDPOINT=$endpoint
CEPH_S3_ACCESS_KEY=$ak1
CEPH_S3_SECRET_KEY=$sk1
CEPH_S3_ACCESS_KEY_2=$ak2
CEPH_S3_SECRET_KEY_2=$sk2
CEPH_S3_REGION=us-east-1
CEPH_CONF=$conf
CEPH_MON_PID=$mon_pid
CEPH_OSD_PID=$osd_pid
CEPH_RGW_PID=$rgw_pid
EOF
  chmod 600 "$dir/env.tmp"
  mv "$dir/env.tmp" "$dir/env"
  trap - EXIT
  log "started in ${ms} ms (mon+osd ${t_rados} ms, $((SECONDS - t0)) s wall)"
  cat "$dir/env"
}

START_DIR=
start_failed() {
  local rc=$?
  trap - EXIT
  if [ -n "$START_DIR" ]; then
    log "start failed; stopping what was started (logs kept in $START_DIR/log)"
    stop_all "$START_DIR" || true
  fi
  exit $((rc == 0 ? 1 : rc))
}

# --- stop / status -------------------------------------------------------------------------
cmd_stop() {
  local dir
  dir=$(abs_dir "$1")
  if [ ! -f "$dir/ceph.conf" ]; then
    log "no cluster in $dir (no ceph.conf); nothing to stop"
    return 0
  fi
  stop_all "$dir" || die "some daemon of $dir would not stop"
}

cmd_status() {
  local dir endpoint code
  dir=$(abs_dir "$1")
  [ -f "$dir/env" ] || { log "no $dir/env"; return 1; }
  endpoint=$(sed -n 's/^CEPH_S3_ENDPOINT=//p' "$dir/env")
  code=$(http_code "$endpoint/")
  if [ "$code" != 000 ]; then
    echo "$endpoint answers (HTTP $code)"
    return 0
  fi
  echo "$endpoint does not answer"
  return 1
}

# A start that fails (a port taken between choosing and binding it, a daemon that died early
# on a loaded machine) is tried once more; the first try's files, its logs among them, are
# kept in DIR/failed-start. Each try runs as a process of its own, so that `set -e` holds in it.
cmd_start_retrying() {
  local dir rc=0
  dir=$(abs_dir "$1")
  [ ! -e "$dir/ceph.conf" ] || die "$dir already holds a cluster; stop it and start in a fresh folder"
  "$BASH" "${BASH_SOURCE[0]}" start-once "$dir" || rc=$?
  [ "$rc" != 0 ] || return 0
  [ -e "$dir/ceph.conf" ] || exit "$rc" # it failed before making anything: trying again would too
  log "start failed (exit $rc); trying once more, the first try's files are in $dir/failed-start"
  mkdir "$dir/failed-start"
  find "$dir" -mindepth 1 -maxdepth 1 ! -name failed-start -exec mv -t "$dir/failed-start" {} +
  "$BASH" "${BASH_SOURCE[0]}" start-once "$dir"
}

[ $# = 2 ] || usage
case "$1" in
  start) cmd_start_retrying "$2" ;;
  start-once) cmd_start "$2" ;;
  stop) cmd_stop "$2" ;;
  status) cmd_status "$2" ;;
  *) usage ;;
esac
