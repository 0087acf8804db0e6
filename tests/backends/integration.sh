#!/usr/bin/env bash
# Twofold's gateway integration tests against a real S3 backend instead of the embedded
# s3s-fs: starts the backend (tests/backends/ceph.sh or moto.sh) in a temporary folder,
# runs the test files below with TWOFOLD_TEST_BACKEND set, stops the backend, and prints
# every test that skipped on this backend and why. Exit status non-zero on any failure.
#
#   bash tests/backends/integration.sh ceph|moto [cargo test filter...]
#
# The files are those whose requests reach the backend's object data paths: round trip,
# ranges, multipart and copy, copies of format version 1 objects, unaligned multipart,
# checksums, multipart checksums, payload forms, metadata (in the clear and sealed), ETags,
# framing, key segments, authentication, grants, faults and versioned buckets. Left
# out, because they test only the gateway's own front and would run the same whatever the
# backend: deadlines, lingering close, malformed heads, TLS, the process, metrics, /readyz
# (cache and HSM), the HSM going away, and hygiene (error documents and probe costs,
# which need the backend stopped and started at will).
#
# Each test gateway gets its own backend namespace: on Ceph a user of a fresh RGW tenant,
# on moto a moto_server of its own (see tests/src/backend.rs).
#
# The files are modules of the integration tests' one binary (tests/tests/it/X.rs, test
# names X::...): it is built once, and runs the tests of the chosen modules, named exactly
# (`--exact`, from `it --list`), so that a filter given after the backend narrows them down
# as `cargo test FILTER` does, and `round_trip` is not `gateway_round_trip`.
#
# Settings: TWOFOLD_BACKENDS_KEEP=1 keeps the backend's folder and logs;
# TWOFOLD_IT_FILES="gateway_etags gateway_ranges" runs only those files.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

FILES=(
  gateway_round_trip
  gateway_ranges
  gateway_copy_multipart
  gateway_copy_v1
  gateway_unaligned
  gateway_multipart_shape
  gateway_checksums
  gateway_multipart_checksums
  gateway_payload
  gateway_metadata
  gateway_sealed_metadata
  gateway_etags
  gateway_s3_edges
  gateway_framing
  gateway_key_segments
  gateway_auth
  gateway_grants
  gateway_faults
  gateway_versions
  gateway_named_keys
  gateway_sse_c
  keys_shredding
  keys_rewrap
  gateway_post_upload
)
# TWOFOLD_IT_FILES="a b c" runs those files instead (tests/run.sh runs a subset on moto).
if [ -n "${TWOFOLD_IT_FILES:-}" ]; then
  read -r -a FILES <<<"$TWOFOLD_IT_FILES"
fi

backend=${1:-}
case "$backend" in
  ceph | moto) shift ;;
  *) echo "usage: $0 ceph|moto [cargo test filter...]" >&2; exit 2 ;;
esac

dir=$(mktemp -d "${TMPDIR:-/tmp}/twofold-it-$backend.XXXXXX")
stop() {
  bash "tests/backends/$backend.sh" stop "$dir" >/dev/null 2>&1 || true
  if [ "${TWOFOLD_BACKENDS_KEEP:-0}" = 1 ]; then
    echo "== kept $dir"
  else
    rm -rf "$dir"
  fi
}
trap stop EXIT

echo "== building the test files"
cargo test -q -p twofold-tests --locked --no-run --test it
# The arguments given after the backend: libtest's filters, and its options (those below
# take a value; --exact applies to the filters, and the run below has its own).
filters=()
options=()
exact=()
while [ "$#" -gt 0 ]; do
  case "$1" in
    --skip | --test-threads | --logfile | --format | --color | --shuffle-seed | -Z)
      options+=("$1" "${2:-}"); shift $(($# > 1 ? 2 : 1)) ;;
    --exact) exact=(--exact); shift ;;
    -*) options+=("$1"); shift ;;
    *) filters+=("$1"); shift ;;
  esac
done
list() { cargo test -q -p twofold-tests --locked --test it -- --list "$@" | sed -n 's/: test$//p'; }
every=$(list)
# The tests of the chosen files that the filters and options select, by full name.
selected=$(list ${options[@]+"${options[@]}"} ${exact[@]+"${exact[@]}"} ${filters[@]+"${filters[@]}"})
tests=()
for f in "${FILES[@]}"; do
  grep -q "^$f::" <<<"$every" || { echo "no test file tests/tests/it/$f.rs" >&2; exit 2; }
  while IFS= read -r t; do tests+=("$t"); done < <(grep "^$f::" <<<"$selected" || true)
done

echo "== starting $backend"
started=$(date +%s)
bash "tests/backends/$backend.sh" start "$dir" >"$dir.start.log" 2>&1 || {
  cat "$dir.start.log" >&2
  rm -f "$dir.start.log"
  exit 1
}
rm -f "$dir.start.log"
echo "   up in $(($(date +%s) - started)) s"
if [ "$backend" = moto ]; then
  # Every test gateway starts a moto_server of its own, from the venv moto.sh made.
  TWOFOLD_MOTO_SERVER="$(dirname "$(bash tests/backends/moto.sh venv)")/moto_server"
  export TWOFOLD_MOTO_SERVER
fi

export TWOFOLD_TEST_BACKEND=$backend
export TWOFOLD_TEST_BACKEND_ENV=$dir/env
export TWOFOLD_TEST_SKIPS=$dir/skipped
: >"$TWOFOLD_TEST_SKIPS"
unset SOFTHSM2_CONF

echo "== cargo test against $backend: ${FILES[*]}"
started=$(date +%s)
status=0
if [ "${#tests[@]}" = 0 ]; then
  echo "   no test of those files is selected"
else
  cargo test -p twofold-tests --locked --no-fail-fast --test it -- \
    ${options[@]+"${options[@]}"} --exact "${tests[@]}" || status=$?
fi
echo "== tests against $backend took $(($(date +%s) - started)) s"

echo "== skipped on $backend: $(wc -l <"$TWOFOLD_TEST_SKIPS")"
sort "$TWOFOLD_TEST_SKIPS" | sed 's/^/   /'
if [ "$status" != 0 ]; then
  echo "== FAILED against $backend" >&2
fi
exit "$status"
