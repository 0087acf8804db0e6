#!/usr/bin/env bash
# Twofold's whole test run: installs what the tests need on a fresh Debian machine
# (SoftHSM2; the client script adds Python venvs), then checks formatting, runs clippy with
# warnings denied, runs every test of the workspace, and drives the gateway with boto3 and
# the aws CLI, and fuzzes the parsers briefly. Usage: bash tests/run.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

missing=()
[ -e /usr/lib/softhsm/libsofthsm2.so ] || missing+=(softhsm2)
command -v pkcs11-tool >/dev/null || missing+=(opensc)
if [ "${#missing[@]}" -gt 0 ]; then
  echo "== installing ${missing[*]}"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# The tests create their own SoftHSM2 tokens in temporary folders; an outside
# configuration must not leak in.
unset SOFTHSM2_CONF

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy (warnings denied)"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== cargo test"
cargo test --workspace --locked
echo "== deployment files (systemd unit, Debian package, Prometheus, Grafana, HAProxy)"; bash deploy/check.sh
echo "== real S3 clients (boto3, aws CLI, rclone, s3cmd) against the gateway in front of s3s-fs, Ceph RGW and moto"
bash tests/clients/run.sh all
echo "== fuzz targets (HTTP head, chunked, aws-chunked, envelope reader), 15 s each"
bash tests/fuzz/run.sh 15
echo "== simd-bench smoke run"
cargo run --release --locked -q -p simd-bench -- --seconds 0.05 >/dev/null
echo "== all checks passed"
