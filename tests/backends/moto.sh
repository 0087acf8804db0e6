#!/usr/bin/env bash
# moto's S3 server on 127.0.0.1, for Twofold's tests. moto does not check signatures: any
# access key and secret are accepted.
#
# Usage:
#   tests/backends/moto.sh start DIR    start moto_server on a free port, write DIR/env, print it
#   tests/backends/moto.sh stop DIR     stop it (SIGTERM, then SIGKILL); DIR is left in place
#   tests/backends/moto.sh status DIR   exit 0 if the S3 endpoint answers
#   tests/backends/moto.sh venv         make sure the venv exists; print its python
#
# Environment:
#   TWOFOLD_MOTO_VENV   the venv holding moto[server] (default target/backends-venvs/moto,
#                       made on first use and reused)
#
# DIR/env holds shell lines (KEY=VALUE):
#   MOTO_S3_ENDPOINT MOTO_S3_ACCESS_KEY MOTO_S3_SECRET_KEY MOTO_S3_REGION MOTO_PID
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
VENV=${TWOFOLD_MOTO_VENV:-$ROOT/target/backends-venvs/moto}
START_TIMEOUT=60
STOP_TIMEOUT=10

usage() {
  echo "usage: $0 start DIR | stop DIR | status DIR | venv" >&2
  exit 2
}
log() { echo "moto.sh: $*" >&2; }
die() { log "error: $*"; exit 1; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

show_log() {
  if [ -s "$1" ]; then
    echo "---- last lines of $1 ----" >&2
    tail -n 30 "$1" >&2 || true
    echo "----" >&2
  fi
}

ensure_venv() {
  if "$VENV/bin/python" -c 'import moto, flask, boto3' >/dev/null 2>&1 && [ -x "$VENV/bin/moto_server" ]; then
    return 0
  fi
  local missing=() probe
  command -v python3 >/dev/null 2>&1 || missing+=(python3)
  command -v curl >/dev/null 2>&1 || missing+=(curl)
  command -v setsid >/dev/null 2>&1 || missing+=(util-linux)
  probe=$(mktemp -d)
  if ! python3 -m venv "$probe/v" >/dev/null 2>&1; then missing+=(python3-venv); fi
  rm -rf "$probe"
  if [ "${#missing[@]}" -gt 0 ]; then
    log "installing ${missing[*]}"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
  log "creating the venv for moto in $VENV"
  rm -rf "$VENV"
  mkdir -p "$(dirname "$VENV")"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check 'moto[server]' >&2
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

http_code() {
  curl -s -o /dev/null -w '%{http_code}' --max-time 3 "$1" 2>/dev/null || true
}

alive() { [ -n "${1:-}" ] && kill -0 "$1" 2>/dev/null; }

# True when PID is a moto_server started for DIR (guards against pid reuse).
ours() {
  local pid=$1 marker=$2
  alive "$pid" || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q moto_server || return 1
  tr '\0' '\n' <"/proc/$pid/environ" 2>/dev/null | grep -qxF "TWOFOLD_MOTO_DIR=$marker"
}

stop_pid() {
  local pid=$1 marker=$2 i
  [ -n "$pid" ] || return 0
  ours "$pid" "$marker" || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < STOP_TIMEOUT * 10; i++)); do
    alive "$pid" || return 0
    sleep 0.1
  done
  log "moto_server (pid $pid) still running ${STOP_TIMEOUT}s after SIGTERM; sending SIGKILL"
  kill -KILL "$pid" 2>/dev/null || true
  for ((i = 0; i < 50; i++)); do
    alive "$pid" || return 0
    sleep 0.1
  done
  return 1
}

abs_dir() {
  local d=$1
  case "$d" in /*) ;; *) d=$PWD/$d ;; esac
  [[ "$d" =~ ^[A-Za-z0-9._/+-]+$ ]] || die "DIR must be a plain path (letters, digits, . _ / + -): $d"
  echo "${d%/}"
}

cmd_start() {
  local dir
  dir=$(abs_dir "$1")
  ensure_venv
  if [ -f "$dir/pid" ] && ours "$(cat "$dir/pid")" "$dir"; then
    die "moto is already running for $dir"
  fi
  mkdir -p "$dir"
  local started_ns port pid="" code=000 attempt i
  started_ns=$(date +%s%N)
  rm -f "$dir/env" "$dir/pid"
  # The port was free a moment ago but may be taken by now: one retry on a new port.
  for attempt in 1 2; do
    port=$(free_port)
    : >"$dir/moto.log"
    # Own session, so that $! is moto_server itself; TWOFOLD_MOTO_DIR marks it as ours.
    TWOFOLD_MOTO_DIR=$dir setsid "$VENV/bin/moto_server" -H 127.0.0.1 -p "$port" \
      </dev/null >>"$dir/moto.log" 2>&1 &
    pid=$!
    disown "$pid"
    echo "$pid" >"$dir/pid"
    for ((i = 0; i < START_TIMEOUT * 10; i++)); do
      alive "$pid" || break
      code=$(http_code "http://127.0.0.1:$port/")
      [ "$code" = 000 ] || break
      sleep 0.1
    done
    [ "$code" = 000 ] || break
    show_log "$dir/moto.log"
    stop_pid "$pid" "$dir" || true
    [ "$attempt" = 2 ] || log "moto_server did not answer on port $port; retrying once on a new port"
  done
  if [ "$code" = 000 ]; then
    rm -f "$dir/pid"
    die "moto_server did not answer"
  fi
  local ms=$(( ($(date +%s%N) - started_ns) / 1000000 ))
  cat >"$dir/env" <<EOF
MOTO_S3_ENDPOINT=http://127.0.0.1:$port
MOTO_S3_ACCESS_KEY=TWOFOLDMOTOTESTKEY01
MOTO_S3_SECRET_KEY=twofold-moto-test-secret-not-checked-000
MOTO_S3_REGION=us-east-1
MOTO_PID=$pid
EOF
  log "started in ${ms} ms"
  cat "$dir/env"
}

cmd_stop() {
  local dir pid
  dir=$(abs_dir "$1")
  [ -f "$dir/pid" ] || { log "no $dir/pid; nothing to stop"; return 0; }
  pid=$(cat "$dir/pid")
  stop_pid "$pid" "$dir" || die "moto_server (pid $pid) would not stop"
}

cmd_status() {
  local dir endpoint code
  dir=$(abs_dir "$1")
  [ -f "$dir/env" ] || { log "no $dir/env"; return 1; }
  endpoint=$(sed -n 's/^MOTO_S3_ENDPOINT=//p' "$dir/env")
  code=$(http_code "$endpoint/")
  if [ "$code" != 000 ]; then
    echo "$endpoint answers (HTTP $code)"
    return 0
  fi
  echo "$endpoint does not answer"
  return 1
}

case "${1:-}" in
  start) [ $# = 2 ] || usage; cmd_start "$2" ;;
  stop) [ $# = 2 ] || usage; cmd_stop "$2" ;;
  status) [ $# = 2 ] || usage; cmd_status "$2" ;;
  venv) [ $# = 1 ] || usage; ensure_venv; echo "$VENV/bin/python" ;;
  *) usage ;;
esac
