#!/usr/bin/env bash
# Runs every test of seccomp-operator on this machine, installing what it needs:
# formatting, lints, the CRD drift check, unit tests, kernel tests (eBPF recorder, libseccomp,
# as root) and runtime tests (runc, as root).
# Tests that need root skip with a reason when not root; under CI=true they must run.
set -euo pipefail
cd "$(dirname "$0")/.."

hack/deps.sh test

echo "== cargo fmt --check"
cargo fmt --all -- --check

echo "== cargo clippy --all-targets -- -D warnings"
cargo clippy --workspace --all-targets --quiet -- -D warnings

echo "== cargo test (unit, kernel, runtime)"
mkdir -p target
set +e +o pipefail
cargo test --workspace --no-fail-fast 2>&1 | tee target/test-output.txt
status=${PIPESTATUS[0]}
set -e -o pipefail

passed=$(grep -Eo '^test result: .*' target/test-output.txt | sed -E 's/.* ([0-9]+) passed; ([0-9]+) failed; ([0-9]+) ignored.*/\1 \2 \3/' | awk '{p+=$1; f+=$2; i+=$3} END {print p, f, i}')
read -r p f i <<<"$passed"
echo
echo "summary: $p passed, $f failed, $i skipped"
exit "$status"
