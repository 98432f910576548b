#!/usr/bin/env bash
# Runs every libFuzzer harness in fuzz/ for SECONDS each (default 60) with cargo fuzz, and
# prints one line per harness:
#   fuzz: target=NAME seconds=S execs=N execs_per_s=N coverage=N features=N corpus=N crashes=N
# Seeds: the real profiles in ../shared/corpus (profile harness) and fuzz/seeds/<target>/.
# A crash leaves its input in fuzz/artifacts/<target>/ and makes the script exit 1: turn it
# into a regression test (see README, "Fuzzing"). Needs the nightly toolchain (rustup) and
# installs cargo-fuzz from crates.io when it is missing.
#
#   hack/fuzz.sh [SECONDS] [TARGET...]
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-60}
shift || true
command -v rustup >/dev/null || { echo "hack/fuzz.sh: needs rustup (nightly toolchain)" >&2; exit 2; }
rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --version 0.13.2 --locked
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(profile audit_record admission_review)
export CARGO_TARGET_DIR=${FUZZ_TARGET_DIR:-$PWD/fuzz/target}
status=0
for t in "${targets[@]}"; do
  corpus=fuzz/corpus/$t
  mkdir -p "$corpus" "fuzz/artifacts/$t"
  [ -d "fuzz/seeds/$t" ] && cp -n fuzz/seeds/"$t"/* "$corpus"/ 2>/dev/null || true
  if [ "$t" = profile ] && [ -d ../shared/corpus ]; then
    find ../shared/corpus -type f -size -256k -exec cp -n {} "$corpus"/ \; 2>/dev/null || true
  fi
  log=$(mktemp)
  set +e
  cargo +nightly fuzz run --fuzz-dir fuzz "$t" "$corpus" -- \
    -max_total_time="$secs" -rss_limit_mb=2048 -max_len=262144 \
    -artifact_prefix="fuzz/artifacts/$t/" -print_final_stats=1 >"$log" 2>&1
  rc=$?
  set -e
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  speed=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | cut -d' ' -f2)
  ft=$(grep -o 'ft: [0-9]*' "$log" | tail -1 | cut -d' ' -f2)
  crashes=$(find "fuzz/artifacts/$t" -type f | wc -l)
  echo "fuzz: target=$t seconds=$secs execs=${execs:-0} execs_per_s=${speed:-0} coverage=${cov:-0} features=${ft:-0} corpus=$(ls "$corpus" | wc -l) crashes=$crashes"
  if [ "$rc" -ne 0 ] || [ "$crashes" -gt 0 ]; then
    status=1
    echo "hack/fuzz.sh: $t failed (exit $rc); last lines of its log ($log):" >&2
    tail -30 "$log" >&2
  else
    rm -f "$log"
  fi
done
exit $status
