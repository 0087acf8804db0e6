#!/usr/bin/env bash
# Smoke check of Twofold's real S3 test backends: for each backend (Ceph RGW and moto, or the
# ones named as arguments), start it in a temporary folder, drive it with boto3
# (tests/backends/smoke.py: PUT, GET, HEAD, ranges, ListObjectsV2, multipart, copy,
# versioning, a wrong secret, a second user on Ceph), stop it, and check that none of its
# processes is left. Prints `N passed, M failed` last; exits non-zero on any failure.
#
# Usage: bash tests/backends/smoke.sh [ceph] [moto]
#   TWOFOLD_CLIENTS_VENVS=DIR   a boto3 venv at DIR/boto3 is used when present
#                               (default target/clients-venvs); otherwise moto's venv
#   TWOFOLD_MOTO_VENV=DIR       moto's venv (default target/backends-venvs/moto)
#   TWOFOLD_BACKENDS_KEEP=1     keep the temporary folders (logs)
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)

backends=("$@")
[ "${#backends[@]}" -gt 0 ] || backends=(ceph moto)
for b in "${backends[@]}"; do
  case "$b" in ceph | moto) ;; *) echo "unknown backend $b (ceph or moto)" >&2; exit 2 ;; esac
done

passed=0
failed=0
ok() { passed=$((passed + 1)); echo "ok   $*"; }
fail() { failed=$((failed + 1)); echo "FAIL $*"; }

# boto3: the clients' venv when it has it, else moto's venv (moto depends on boto3).
VENVS=${TWOFOLD_CLIENTS_VENVS:-$ROOT/target/clients-venvs}
if "$VENVS/boto3/bin/python" -c 'import boto3' >/dev/null 2>&1; then
  PY=$VENVS/boto3/bin/python
else
  PY=$(bash "$HERE/moto.sh" venv)
fi

WORK=
BACKEND=
cleanup() {
  if [ -n "$WORK" ] && [ -n "$BACKEND" ]; then
    bash "$HERE/$BACKEND.sh" stop "$WORK/$BACKEND" >/dev/null 2>&1 || true
  fi
  if [ -n "$WORK" ] && [ "${TWOFOLD_BACKENDS_KEEP:-0}" != 1 ]; then rm -rf "$WORK"; fi
}
trap cleanup EXIT

ms_since() { echo $(( ($(date +%s%N) - $1) / 1000000 )); }

for BACKEND in "${backends[@]}"; do
  WORK=$(mktemp -d "${TMPDIR:-/tmp}/twofold-backend-$BACKEND.XXXXXX")
  dir=$WORK/$BACKEND
  echo "== $BACKEND"
  t=$(date +%s%N)
  if ! bash "$HERE/$BACKEND.sh" start "$dir" >"$WORK/start.out" 2>&1; then
    cat "$WORK/start.out"
    fail "$BACKEND: start"
    cleanup; WORK=; BACKEND=
    continue
  fi
  ok "$BACKEND: start ($(ms_since "$t") ms)"

  if bash "$HERE/$BACKEND.sh" status "$dir" >/dev/null 2>&1; then ok "$BACKEND: status"; else fail "$BACKEND: status"; fi

  pids=$(sed -n 's/^[A-Z_]*_PID=//p' "$dir/env" | tr '\n' ' ')
  if [ "$BACKEND" = ceph ]; then
    args=(ceph "$(sed -n 's/^CEPH_S3_ENDPOINT=//p' "$dir/env")" "$(sed -n 's/^CEPH_S3_REGION=//p' "$dir/env")"
          "$(sed -n 's/^CEPH_S3_ACCESS_KEY=//p' "$dir/env")" "$(sed -n 's/^CEPH_S3_SECRET_KEY=//p' "$dir/env")"
          "$(sed -n 's/^CEPH_S3_ACCESS_KEY_2=//p' "$dir/env")" "$(sed -n 's/^CEPH_S3_SECRET_KEY_2=//p' "$dir/env")")
  else
    args=(moto "$(sed -n 's/^MOTO_S3_ENDPOINT=//p' "$dir/env")" "$(sed -n 's/^MOTO_S3_REGION=//p' "$dir/env")"
          "$(sed -n 's/^MOTO_S3_ACCESS_KEY=//p' "$dir/env")" "$(sed -n 's/^MOTO_S3_SECRET_KEY=//p' "$dir/env")")
  fi
  "$PY" "$HERE/smoke.py" "${args[@]}" >"$WORK/smoke.out" 2>&1 || true
  grep -v ' passed, .* failed$' "$WORK/smoke.out" || true
  summary=$(tail -n 1 "$WORK/smoke.out")
  if [[ "$summary" =~ ^([0-9]+)\ passed,\ ([0-9]+)\ failed$ ]]; then
    passed=$((passed + BASH_REMATCH[1]))
    failed=$((failed + BASH_REMATCH[2]))
  else
    fail "$BACKEND: smoke.py did not finish"
  fi

  t=$(date +%s%N)
  if bash "$HERE/$BACKEND.sh" stop "$dir" >"$WORK/stop.out" 2>&1; then
    ok "$BACKEND: stop ($(ms_since "$t") ms)"
  else
    cat "$WORK/stop.out"
    fail "$BACKEND: stop"
  fi
  left=
  for p in $pids; do kill -0 "$p" 2>/dev/null && left="$left $p"; done
  # any process still naming the backend's folder on its command line (read from /proc:
  # procps may be missing on a minimal machine)
  for c in /proc/[0-9]*/cmdline; do
    p=${c#/proc/}; p=${p%/cmdline}
    cmd=$(tr '\0' ' ' <"$c" 2>/dev/null || true)
    if [[ "$cmd" == *"$dir"* ]]; then
      case " $left " in *" $p "*) ;; *) left="$left $p" ;; esac
    fi
  done
  if [ -z "$left" ]; then
    ok "$BACKEND: no process left (pids $pids)"
  else
    for p in $left; do echo "left: $p $(tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null)"; done
    fail "$BACKEND: processes left:$left"
  fi
  if bash "$HERE/$BACKEND.sh" status "$dir" >/dev/null 2>&1; then fail "$BACKEND: still answers after stop"; else ok "$BACKEND: no answer after stop"; fi

  BACKEND=
  cleanup
  WORK=
done

echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
