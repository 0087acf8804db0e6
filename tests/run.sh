#!/usr/bin/env bash
# Twofold's whole test run: installs what the tests need on a fresh Debian machine
# (SoftHSM2; the client, backend and appliance scripts add Python venvs, rclone, s3cmd, Ceph
# and HAProxy), then checks formatting, runs clippy with warnings denied, runs every test of
# the workspace, drives the gateway with boto3, the aws CLI, rclone and s3cmd in front of
# s3s-fs, Ceph RGW and moto, runs the integration tests in front of Ceph and moto, two
# appliances behind HAProxy, the operator console in headless Chromium, checks the
# workspace builds with its declared minimum Rust version, fuzzes the parsers briefly, and
# checks the forced software fallback of the inner layer against the format vectors.
#
# Usage: bash tests/run.sh         everything (what CI runs)
#        bash tests/run.sh quick   formatting, clippy and every test of the workspace: unit
#                                  and protocol tests, and the integration tests in front of
#                                  the embedded s3s-fs backend, the test binaries side by side
#                                  (tests/run_side_by_side.py); no Ceph, moto, real clients,
#                                  appliances, console browser tests, package checks or
#                                  fuzzing
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

tier=${1:-all}
case "$tier" in
  quick | all) ;;
  *) echo "usage: bash tests/run.sh [quick|all]" >&2; exit 2 ;;
esac

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
if [ "$tier" = quick ]; then
  echo "== cargo test --workspace, the test binaries side by side"
  python3 tests/run_side_by_side.py
  cargo test --workspace --doc --locked -q
  echo "== quick checks passed (bash tests/run.sh runs everything)"
  exit 0
fi
echo "== cargo test"
cargo test --workspace --locked
echo "== cargo clippy -p gateway --no-default-features (the packaged build, without the dev backend)"
cargo clippy -p gateway --no-default-features --all-targets --locked -- -D warnings
# The workspace's rust-version is the lowest toolchain that builds it: the highest any
# dependency needs (compio-driver uses cfg_select!, stable since Rust 1.95, though its own
# rust-version says less). Checked, not built, with that very toolchain. Where it is the
# toolchain in use, the check shares the target folder and clippy's checked dependencies and
# takes seconds; otherwise it goes to a target folder of its own, removed afterwards (checking
# every dependency takes several minutes on 2 cores).
msrv=$(sed -n 's/^rust-version = "\(.*\)"$/\1/p' Cargo.toml)
if command -v rustup >/dev/null; then
  echo "== cargo +$msrv check (the declared minimum Rust version)"
  rustup toolchain install "$msrv" --profile minimal --no-self-update >/dev/null 2>&1
  msrv_target=${CARGO_TARGET_DIR:-target}
  [ "$(rustc "+$msrv" -vV)" = "$(rustc -vV)" ] || msrv_target=$msrv_target/msrv
  CARGO_TARGET_DIR=$msrv_target cargo "+$msrv" check --workspace --all-targets --locked -q
  [ "$msrv_target" = "${CARGO_TARGET_DIR:-target}" ] || rm -rf "$msrv_target"
else
  echo "== no rustup: the minimum Rust version ($msrv) is not checked"
fi
echo "== deployment files (systemd unit, Debian package, Prometheus, Grafana, HAProxy)"; bash deploy/check.sh
echo "== real S3 clients (boto3, aws CLI, rclone, s3cmd) against the gateway in front of s3s-fs, Ceph RGW and moto"
bash tests/clients/run.sh all
echo "== the gateway's integration tests in front of a real Ceph RGW (tests/backends/integration.sh)"
bash tests/backends/integration.sh ceph
# moto is an emulator, and each test gateway starts a moto server of its own: a subset that
# covers what moto does differently (Connection: close on every answer, ETags, multipart,
# versioning) keeps the whole run well inside CI's time; Ceph above runs every file.
echo "== the gateway's integration tests in front of moto (a subset)"
TWOFOLD_IT_FILES="gateway_round_trip gateway_etags gateway_copy_multipart gateway_multipart_checksums gateway_versions gateway_ranges gateway_sealed_metadata gateway_multipart_shape" \
  bash tests/backends/integration.sh moto
echo "== two appliances behind HAProxy over one Ceph cluster: SIGKILL under load, rolling restart"
bash tests/appliances/run.sh
echo "== the operator console in headless Chromium: pages, figures, jobs, refusals, secrets, speed"
bash tests/console/run.sh
echo "== fuzz targets (HTTP head, chunked, aws-chunked, envelope reader), 15 s each"
bash tests/fuzz/run.sh 15
echo "== simd-bench smoke run"
cargo run --release --locked -q -p simd-bench -- --seconds 0.05 >/dev/null
# The shipped build picks its inner layer's code at run time (docs/adr/0008-crypto-speed.md):
# twofold-gcm's own VAES/VPCLMULQDQ code, else RustCrypto's aes-gcm on AES-NI/VAES and CLMUL,
# else RustCrypto's software AES and GHASH. The last is forced here, so that path is checked
# against the format's vectors and NIST's on every run; simd-bench must report it taken.
echo "== the inner layer's software fallback, forced: vectors and simd-bench's path"
soft_flags='--cfg aes_backend="soft" --cfg polyval_backend="soft"'
CARGO_TARGET_DIR=target/soft-crypto RUSTFLAGS=$soft_flags \
  cargo test --locked -q -p gateway --test format_vectors --test kat
CARGO_TARGET_DIR=target/soft-crypto RUSTFLAGS=$soft_flags \
  cargo test --locked -q -p twofold-gcm
CARGO_TARGET_DIR=target/soft-crypto RUSTFLAGS=$soft_flags \
  cargo run --locked -q -p simd-bench -- --seconds 0.02 >target/soft-crypto.txt
grep -q 'software (fixsliced' target/soft-crypto.txt && grep -q 'software (portable Rust)' target/soft-crypto.txt \
  || { cat target/soft-crypto.txt; echo "simd-bench did not report the software paths" >&2; exit 1; }
rm -rf target/soft-crypto target/soft-crypto.txt
echo "== all checks passed"
