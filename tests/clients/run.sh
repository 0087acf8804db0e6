#!/usr/bin/env bash
# Real S3 clients against a real `twofold serve --dev`: boto3 (tests/clients/s3_clients.py)
# and the aws CLI, each in its own Python venv (the PyPI awscli v1 pins its own botocore).
# Sets up everything it needs on a fresh Debian machine (python3-venv, SoftHSM2, openssl),
# builds the gateway, starts it in a temporary folder, drives it, checks that the backend's
# folder holds no plaintext, and stops it. Prints `N passed, M failed` last; exits non-zero
# on any failure.
#
# Usage: bash tests/clients/run.sh
#   TWOFOLD_CLIENTS_VENVS=DIR   where the venvs live (default target/clients-venvs, reused)
#   TWOFOLD_CLIENTS_STRICT=1    count checks marked as known gateway bugs as failures
#   TWOFOLD_CLIENTS_KEEP=1      keep the temporary folder (server log, dev setup)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
ROOT=$PWD
CLIENTS=$ROOT/tests/clients

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

# --- system packages ---------------------------------------------------------------------
missing=()
[ -e /usr/lib/softhsm/libsofthsm2.so ] || missing+=(softhsm2)
command -v openssl >/dev/null || missing+=(openssl)
command -v python3 >/dev/null || missing+=(python3)
probe=$(mktemp -d)
if ! python3 -m venv "$probe/v" >/dev/null 2>&1; then missing+=(python3-venv); fi
rm -rf "$probe"
if [ "${#missing[@]}" -gt 0 ]; then
  echo "== installing ${missing[*]}"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# --- Python venvs --------------------------------------------------------------------------
VENVS=${TWOFOLD_CLIENTS_VENVS:-$ROOT/target/clients-venvs}
mkdir -p "$VENVS"
if ! "$VENVS/boto3/bin/python" -c 'import boto3' >/dev/null 2>&1; then
  echo "== venv for boto3"
  rm -rf "$VENVS/boto3"
  python3 -m venv "$VENVS/boto3"
  "$VENVS/boto3/bin/pip" install -q --disable-pip-version-check 'boto3>=1.36'
fi
if ! "$VENVS/awscli/bin/aws" --version >/dev/null 2>&1; then
  echo "== venv for the aws CLI"
  rm -rf "$VENVS/awscli"
  python3 -m venv "$VENVS/awscli"
  "$VENVS/awscli/bin/pip" install -q --disable-pip-version-check awscli
fi
PY=$VENVS/boto3/bin/python
AWS=$VENVS/awscli/bin/aws

# --- the gateway ---------------------------------------------------------------------------
echo "== cargo build -p twofold"
cargo build -q -p twofold
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
case "$TARGET_DIR" in /*) ;; *) TARGET_DIR=$ROOT/$TARGET_DIR ;; esac
TWOFOLD=$TARGET_DIR/debug/twofold
[ -x "$TWOFOLD" ] || { echo "no binary at $TWOFOLD"; exit 1; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/twofold-clients.XXXXXX")
SERVER_PID=
cleanup() {
  if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  if [ "${TWOFOLD_CLIENTS_KEEP:-0}" = 1 ]; then
    echo "kept $WORK"
  else
    rm -rf "$WORK"
  fi
}
trap cleanup EXIT

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
PORT=$(free_port)
ADMIN_PORT=$(free_port)
export TWOFOLD_ADMIN_URL=http://127.0.0.1:$ADMIN_PORT
echo "== twofold serve --dev --listen 127.0.0.1:$PORT --admin-listen 127.0.0.1:$ADMIN_PORT (in $WORK)"
(
  cd "$WORK"
  unset SOFTHSM2_CONF
  exec "$TWOFOLD" serve --dev --listen "127.0.0.1:$PORT" --admin-listen "127.0.0.1:$ADMIN_PORT"
) >"$WORK/server.log" 2>&1 &
SERVER_PID=$!

# The dev setup creates two SoftHSM2 tokens first; then the port answers and client.env
# is written.
for _ in $(seq 1 240); do
  if ! kill -0 "$SERVER_PID" 2>/dev/null; then
    echo "the gateway exited:"; cat "$WORK/server.log"; exit 1
  fi
  if [ -s "$WORK/.twofold-dev/client.env" ] &&
     python3 -c "import socket,sys; socket.create_connection(('127.0.0.1',$PORT),1)" 2>/dev/null; then
    break
  fi
  sleep 0.5
done
[ -s "$WORK/.twofold-dev/client.env" ] || { echo "the gateway did not come up:"; cat "$WORK/server.log"; exit 1; }
set -a
# shellcheck disable=SC1091
. "$WORK/.twofold-dev/client.env"
set +a
DATA=$WORK/.twofold-dev/data
grep '^twofold:' "$WORK/server.log" || true

passed=0
failed=0

# --- boto3 ---------------------------------------------------------------------------------
echo "== boto3"
if "$PY" "$CLIENTS/s3_clients.py" run --data-dir "$DATA" --counts "$WORK/boto3.counts" --work "$WORK"; then :; fi
if [ -s "$WORK/boto3.counts" ]; then
  read -r p f <"$WORK/boto3.counts"
  passed=$((passed + p)); failed=$((failed + f))
else
  echo "FAIL boto3 checks did not finish"; failed=$((failed + 1))
fi

# --- aws CLI ---------------------------------------------------------------------------------
echo "== aws CLI ($("$AWS" --version 2>&1))"
aws_() { "$AWS" --endpoint-url "$AWS_ENDPOINT_URL" "$@"; }
check() {
  local name=$1; shift
  local out
  if out=$("$@" 2>&1); then
    echo "PASS $name"; passed=$((passed + 1))
  else
    echo "FAIL $name"; printf '%s\n' "$out" | sed 's/^/    /' | tail -20; failed=$((failed + 1))
  fi
}
CLI_BUCKET=cli-$RANDOM$RANDOM
SMALL=$WORK/cli-small.bin
BIG=$WORK/cli-big.bin
head -c $((3 * 1024 * 1024 + 5)) /dev/urandom >"$SMALL"
head -c $((20 * 1024 * 1024 + 3)) /dev/urandom >"$BIG"

check "aws s3 mb" aws_ s3 mb "s3://$CLI_BUCKET"
check "aws s3 cp up (3 MiB, below the multipart threshold)" \
  aws_ s3 cp "$SMALL" "s3://$CLI_BUCKET/dir/small.bin"
check "aws s3 cp down, same bytes" bash -c '
  "$0" --endpoint-url "$AWS_ENDPOINT_URL" s3 cp "s3://$1/dir/small.bin" "$2.down" && cmp "$2" "$2.down"
' "$AWS" "$CLI_BUCKET" "$SMALL"
check "aws s3 ls shows the plaintext size" bash -c '
  out=$("$0" --endpoint-url "$AWS_ENDPOINT_URL" s3 ls "s3://$1/dir/") || exit 1
  echo "$out"; echo "$out" | grep -Eq "[[:space:]]$2[[:space:]]+small\.bin$"
' "$AWS" "$CLI_BUCKET" "$(stat -c %s "$SMALL")"
check "aws s3api head-object: size and DSSE" bash -c '
  out=$("$0" --endpoint-url "$AWS_ENDPOINT_URL" s3api head-object --bucket "$1" --key dir/small.bin) || exit 1
  echo "$out"
  echo "$out" | grep -q "\"ContentLength\": $2" && echo "$out" | grep -q "\"ServerSideEncryption\": \"aws:kms:dsse\""
' "$AWS" "$CLI_BUCKET" "$(stat -c %s "$SMALL")"
check "aws s3 cp up and down (20 MiB, multipart)" bash -c '
  "$0" --endpoint-url "$AWS_ENDPOINT_URL" s3 cp "$2" "s3://$1/big.bin" &&
  "$0" --endpoint-url "$AWS_ENDPOINT_URL" s3 cp "s3://$1/big.bin" "$2.down" && cmp "$2" "$2.down"
' "$AWS" "$CLI_BUCKET" "$BIG"
check "aws s3api head-object --checksum-mode ENABLED: the multipart file's CRC32" bash -c '
  out=$("$0" --endpoint-url "$AWS_ENDPOINT_URL" s3api head-object --bucket "$1" --key big.bin --checksum-mode ENABLED) || exit 1
  echo "$out"
  echo "$out" | grep -Eq "\"ChecksumCRC32\": \"[A-Za-z0-9+/=]+(-[0-9]+)?\""
' "$AWS" "$CLI_BUCKET"
check "the backend holds no plaintext of the CLI's files" \
  "$PY" "$CLIENTS/s3_clients.py" scan "$DATA" "$SMALL" "$BIG"
check "aws s3 rm" aws_ s3 rm "s3://$CLI_BUCKET/dir/small.bin"
check "head-object after rm is 404" bash -c '
  ! "$0" --endpoint-url "$AWS_ENDPOINT_URL" s3api head-object --bucket "$1" --key dir/small.bin 2>&1 | tee /dev/stderr | grep -q ContentLength
' "$AWS" "$CLI_BUCKET"

check "admin listener: /readyz ready, /metrics counted PUTs and sealed bytes" "$PY" -c '
import re, sys, urllib.request
base = sys.argv[1]
ready = urllib.request.urlopen(base + "/readyz").read().decode()
print(ready)
assert ready.startswith("ready"), ready
text = urllib.request.urlopen(base + "/metrics").read().decode()
def total(pattern):
    return sum(float(m.group(1)) for m in re.finditer(pattern + r"\S* (\S+)$", text, re.M))
puts = total(r"^twofold_requests_total\{[^}]*operation=\"PutObject\"[^}]*code=\"200\"")
sealed = total(r"^twofold_sealed_bytes_total\{layer=\"inner\"")
print("PutObject 200:", puts, "sealed by the inner layer:", sealed)
assert puts >= 2 and sealed >= 3 * 1024 * 1024, (puts, sealed)
' "$TWOFOLD_ADMIN_URL"

if ! kill -0 "$SERVER_PID" 2>/dev/null; then
  echo "FAIL the gateway died during the run:"; tail -20 "$WORK/server.log"; failed=$((failed + 1))
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
