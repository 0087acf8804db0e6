#!/usr/bin/env bash
# Times CompleteMultipartUpload through Twofold against the same Complete made directly on
# a single-node Ceph RGW (memstore), for objects of SIZES_MIB (default "64 256 1024")
# uploaded in 8 MiB parts: the cost of the rewrite that adds every multipart object's
# layout record (docs/gateway.md, *The rewrite at Complete*; results in
# docs/benchmarks.md, *Completing multipart uploads*).
#
# Builds the release binary, starts Ceph (tests/backends/ceph.sh) and one gateway with
# the dev custodians in a temporary folder, runs tests/bench/complete_rewrite.py with
# boto3, and stops everything. Needs python3 with boto3.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
cargo build --release --locked -q -p gateway
TWOFOLD=$ROOT/target/release/twofold
WORK=$(mktemp -d "${TMPDIR:-/tmp}/twofold-complete.XXXXXX")
GW_PID=
cleanup() {
  [ -n "$GW_PID" ] && kill "$GW_PID" 2>/dev/null && wait "$GW_PID" 2>/dev/null
  bash tests/backends/ceph.sh stop "$WORK/ceph" >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT
# memstore keeps the object, its copy and (until gc) the parts it replaced, all in RAM.
largest=$(tr ' ' '\n' <<<"${SIZES_MIB:-64 256 1024}" | sort -n | tail -1)
need=$(((3 * largest + 2048) * 1048576))
[ "$need" -lt 8589934592 ] && need=8589934592
export TWOFOLD_CEPH_MEMSTORE_BYTES=${TWOFOLD_CEPH_MEMSTORE_BYTES:-$need}
bash tests/backends/ceph.sh start "$WORK/ceph" >"$WORK/ceph-start.log" 2>&1 ||
  { cat "$WORK/ceph-start.log"; exit 1; }
getenv() { sed -n "s/^$1=//p" "$WORK/ceph/env"; }
(cd "$WORK" && "$TWOFOLD" keys init --dev) >"$WORK/keys-init.log" 2>&1 ||
  { cat "$WORK/keys-init.log"; exit 1; }
DEV=$WORK/.twofold-dev
(umask 077 && getenv CEPH_S3_SECRET_KEY >"$DEV/backend-ceph.secret")
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
{
  awk '/^\[/ { keep = ($0 != "[server]" && $0 != "[backend]" && $0 != "[admin]") } keep' "$DEV/config.toml"
  cat <<CONF

[server]
listen = "127.0.0.1:$PORT"
region = "us-east-1"
plain_http = true

[admin]
listen = "off"

[backend]
endpoint = "$(getenv CEPH_S3_ENDPOINT)"
plain_http = true
region = "$(getenv CEPH_S3_REGION)"
access_key_id = "$(getenv CEPH_S3_ACCESS_KEY)"
secret_access_key = { file = "backend-ceph.secret" }
CONF
} >"$DEV/bench.toml"
(cd "$WORK" && exec "$TWOFOLD" serve --config "$DEV/bench.toml") >"$WORK/gateway.log" 2>&1 &
GW_PID=$!
for _ in $(seq 100); do
  curl -s -o /dev/null "http://127.0.0.1:$PORT/" && break
  sleep 0.1
done
GATEWAY_URL=http://127.0.0.1:$PORT GATEWAY_KEY=twofold-dev \
  GATEWAY_SECRET=$(tr -d '\n' <"$DEV/client.secret") \
  BACKEND_URL=$(getenv CEPH_S3_ENDPOINT) BACKEND_KEY=$(getenv CEPH_S3_ACCESS_KEY) \
  BACKEND_SECRET=$(getenv CEPH_S3_SECRET_KEY) REGION=$(getenv CEPH_S3_REGION) \
  python3 tests/bench/complete_rewrite.py
