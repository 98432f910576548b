#!/usr/bin/env bash
# Runs every test of seccomp-operator on this machine, installing what it needs:
#   1. cargo fmt --check, cargo clippy --all-targets -D warnings, the book (hack/book.sh)
#   2. unit tests, kernel tests (eBPF recorder, libseccomp; root), runtime tests (runc; root) and
#      OCI registry tests (push/pull against hack/registry.sh up's local registries; root)
#   3. end-to-end tests on a real 3-node local cluster (E2E_NODES=N for another size):
#      hack/cluster-up.sh --nodes 3, hack/deploy.sh, the
#      journeys in e2e/, then hack/cluster-down.sh (a cluster that was already up stays up)
# Tests that need root or a cluster print SKIP with the reason when those are missing; under
# CI=true they must run. SKIP_E2E=1 skips step 3 on purpose.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p target
out=target/test-output.txt
: > "$out"

hack/deps.sh test
# The test bed (Kubernetes, etcd, containerd, runc, CNI plugins), built once per machine and
# version; the runtime tests run the cluster's own runc.
if [ "$(id -u)" -eq 0 ]; then
  hack/k8s-build.sh
fi
eval "$(hack/k8s-build.sh --print)"
export PATH=$RUNC_BIN:$PATH
echo "== runc: $(runc --version 2>/dev/null | head -1 || echo 'not built (not root)')"

# A full run (debug and release builds, a cluster) needs about 12 GiB of disk; say so up front
# instead of failing half-way with "No space left on device".
avail_kib=$(df -Pk . | awk 'NR==2 {print $4}')
echo "== disk: $((avail_kib / 1024 / 1024)) GiB free in $(pwd)"
if [ "$avail_kib" -lt $((12 * 1024 * 1024)) ]; then
  echo "warning: less than 12 GiB free; the build or the cluster may run out of disk" >&2
fi
if [ -n "${CI:-}" ]; then
  # No incremental caches in CI: a clean clone never reuses them and they double target/.
  export CARGO_INCREMENTAL=0
fi

echo "== cargo fmt --check"
cargo fmt --all -- --check

echo "== cargo clippy --all-targets -- -D warnings"
cargo clippy --workspace --all-targets --quiet -- -D warnings

echo "== the book (docs/): mdbook build and internal links"
hack/book.sh

# The local OCI registries and oras that the push/pull tests (registry/, seccompctl/) use,
# installed and started as the test bed is: as root. Without them those tests print SKIP.
if [ "$(id -u)" -eq 0 ]; then
  echo "== local OCI registries (hack/registry.sh up)"
  hack/registry.sh up
fi

echo "== unit, kernel and runtime tests"
set +e +o pipefail
cargo test --workspace --exclude e2e --no-fail-fast 2>&1 | tee -a "$out"
status=${PIPESTATUS[0]}
set -e -o pipefail

e2e_reason=""
if [ "${SKIP_E2E:-}" = 1 ]; then
  e2e_reason="SKIP_E2E=1"
elif [ "$(id -u)" -ne 0 ]; then
  e2e_reason="not root (the local cluster needs root)"
fi
if [ -n "$e2e_reason" ]; then
  if [ -n "${CI:-}" ] && [ "${SKIP_E2E:-}" != 1 ]; then
    echo "CI must run the e2e tests, but: $e2e_reason" >&2
    status=1
  else
    echo "SKIP: e2e tests: $e2e_reason"
  fi
else
  echo "== end-to-end tests on a local cluster"
  was_up=false
  [ -f .local-cluster/kubeconfig ] && "$K8S_BIN/kubectl" --kubeconfig .local-cluster/kubeconfig get --raw /readyz >/dev/null 2>&1 && was_up=true
  if ! $was_up; then
    # A fresh cluster: whatever an earlier, interrupted run left (state, mounts, rules) goes.
    hack/cluster-down.sh --wipe >/dev/null 2>&1 || true
    trap 'hack/cluster-down.sh >/dev/null 2>&1 || true' EXIT
  fi
  hack/cluster-up.sh --nodes "${E2E_NODES:-3}"
  hack/deploy.sh
  set +e +o pipefail
  HELM=$HELM_BIN/helm KUBECTL=$K8S_BIN/kubectl KUBECONFIG=$PWD/.local-cluster/kubeconfig cargo test -p e2e --no-fail-fast -- --test-threads=1 2>&1 | tee -a "$out"
  e2e_status=${PIPESTATUS[0]}
  set -e -o pipefail
  [ "$e2e_status" -eq 0 ] || status=$e2e_status
fi

read -r p f i < <(grep -Eo '^test result: .*' "$out" | sed -E 's/.* ([0-9]+) passed; ([0-9]+) failed; ([0-9]+) ignored.*/\1 \2 \3/' | awk '{p+=$1; f+=$2; i+=$3} END {print p+0, f+0, i+0}')
echo
echo "summary: $p passed, $f failed, $i skipped"
exit "$status"
