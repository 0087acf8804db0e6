#!/usr/bin/env bash
# Builds the fuzz targets once and runs each for SECONDS (default 20) from a fresh corpus
# holding only the seeds of gen_seeds.py. Exits non-zero, naming the input, if any target
# panics, hangs or runs out of memory. Usage: bash tests/fuzz/run.sh [SECONDS]
#
# Stable toolchain: cargo-fuzz needs nightly only for its sanitizers (-Zsanitizer=...).
# With `--sanitizer none` every flag it passes is stable (-Cpasses=sancov-module,
# -Cllvm-args=-sanitizer-coverage-*, --cfg fuzzing, -Cdebug-assertions, -Ccodegen-units=1),
# so libFuzzer's coverage guidance works on stable rustc without RUSTC_BOOTSTRAP. What is
# lost is AddressSanitizer, which matters little here: the library is `#![deny(unsafe_code)]`
# and a Rust panic (overflow included, debug assertions are on) is what the targets catch.
#
# Environment: JOBS (targets run at once, default: the number of cores, at most 4).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

SECONDS_PER_TARGET="${1:-20}"
TARGETS=(http_request_head http_chunked aws_chunked envelope_reader post_form)
CARGO_FUZZ_VERSION=0.13.2 # the version whose flags were checked for stable (see above)
FLAGS=(--sanitizer none --fuzz-dir .)
JOBS="${JOBS:-$(nproc)}"
[ "$JOBS" -gt 4 ] && JOBS=4
[ "$JOBS" -lt 1 ] && JOBS=1

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
missing=()
command -v python3 >/dev/null || missing+=(python3)
command -v c++ >/dev/null || missing+=(g++) # libfuzzer-sys compiles libFuzzer (C++)
if [ "${#missing[@]}" -gt 0 ]; then
  echo "== installing ${missing[*]}"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "== cargo install cargo-fuzz $CARGO_FUZZ_VERSION"
  cargo install cargo-fuzz --version "$CARGO_FUZZ_VERSION" --locked
fi

echo "== $(cargo fuzz --version), $(rustc --version)"
echo "== building all targets"
start=$(date +%s)
cargo fuzz build "${FLAGS[@]}"
echo "== built in $(($(date +%s) - start)) s"

echo "== seed corpus"
rm -rf corpus
python3 gen_seeds.py corpus

mkdir -p artifacts
logs=$(mktemp -d)
marker="$logs/start" # artifacts newer than this one come from this run
touch "$marker"
trap 'rm -rf "$logs"' EXIT

run_one() {
  local t=$1
  # -timeout: a single input running 10 s is a hang, reported like a crash.
  cargo fuzz run "${FLAGS[@]}" "$t" -- \
    -max_total_time="$SECONDS_PER_TARGET" -timeout=10 -print_final_stats=1 \
    >"$logs/$t.log" 2>&1
}

echo "== fuzzing each target for $SECONDS_PER_TARGET s, $JOBS at a time"
declare -A status
pending=("${TARGETS[@]}")
while [ "${#pending[@]}" -gt 0 ]; do
  batch=("${pending[@]:0:$JOBS}")
  pending=("${pending[@]:$JOBS}")
  pids=()
  for t in "${batch[@]}"; do
    run_one "$t" &
    pids+=($!)
  done
  for i in "${!batch[@]}"; do
    if wait "${pids[$i]}"; then status[${batch[$i]}]=0; else status[${batch[$i]}]=$?; fi
  done
done

failed=0
for t in "${TARGETS[@]}"; do
  log="$logs/$t.log"
  stats=$(awk '/stat::number_of_executed_units/ {n=$2} /stat::average_exec_per_sec/ {r=$2}
               END {if (n) printf "%s execs, %s exec/s", n, r}' "$log")
  done_line=$(grep -E '^#[0-9]+[[:space:]]+DONE' "$log" | tail -1 | sed -E 's/^#[0-9]+[[:space:]]+DONE[[:space:]]+//' || true)
  new=$(find "artifacts/$t" -type f -newer "$marker" 2>/dev/null || true)
  if [ "${status[$t]}" != 0 ] || [ -n "$new" ]; then
    failed=1
    echo "!! $t FAILED (exit ${status[$t]})"
    grep -E -A1 "panicked at" "$log" | head -6 || true
    grep -E "^==[0-9]+== ERROR|Test unit written" "$log" | head -4 || true
    for a in $new; do echo "   artifact: tests/fuzz/$a"; done
    echo "   reproduce: cd tests/fuzz && cargo fuzz run ${FLAGS[*]} $t <artifact>"
    echo "   --- last lines of the log:"
    tail -40 "$log" | sed 's/^/   /'
  else
    echo "ok $t: $stats; $done_line"
  fi
done
exit "$failed"
