#!/usr/bin/env bash
# Runs the two-node recording N times in a row (default 20) on the local cluster
# (hack/cluster-up.sh --nodes 3 && hack/deploy.sh first): each run starts right after the
# recorders unloaded for the one before, records a replica on each of two nodes, and must merge
# both and end Completed. Ends with `stress: runs=N misses=M`; exits non-zero on a miss.
#
#   hack/stress-recording.sh [N]
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
. hack/lib/cluster-env.sh
runs=${1:-20}
export KUBECONFIG=$KUBECONFIG_PATH KUBECTL
STRESS_RECORDINGS=$runs exec cargo test -p e2e --test multinode -- --test-threads=1 --nocapture \
  stress_two_node_recordings_miss_no_replica
