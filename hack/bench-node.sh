#!/usr/bin/env bash
# Idle cost of the local cluster's extra nodes (hack/cluster-up.sh --nodes N): for each node,
# the resident memory of its daemons (kubelet, containerd, kube-proxy, shims) and of the
# whole node (with its pods: the node agent, maybe an operator replica), and the CPU it used
# over a window, from its own cgroup subtree (/<node> in every hierarchy).
#
#   hack/bench-node.sh [seconds]      (default 30)
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
. hack/lib/cluster-env.sh
. hack/lib/cluster-node.sh
[ "$(id -u)" -eq 0 ] || { echo "hack/bench-node.sh needs root" >&2; exit 1; }
secs=${1:-30}
nodes=$(node_names)
[ -n "$nodes" ] || { echo "no extra nodes: hack/cluster-up.sh --nodes 3" >&2; exit 1; }

rss_mib() { # cgroup dir under pids: sum of VmRSS of its processes, MiB
  local kb=0 p v
  for p in $(find "$1" -name cgroup.procs -exec cat {} + 2>/dev/null); do
    v=$(awk '/^VmRSS:/ {print $2}' "/proc/$p/status" 2>/dev/null || true)
    kb=$((kb + ${v:-0}))
  done
  awk -v kb="$kb" 'BEGIN {printf "%.1f", kb / 1024}'
}
cpu_ns() { cat "/sys/fs/cgroup/cpuacct/$1/cpuacct.usage"; }

declare -A before_all before_sys
for n in $nodes; do
  before_all[$n]=$(cpu_ns "$n")
  before_sys[$n]=$(cpu_ns "$n/system")
done
sleep "$secs"
for n in $nodes; do
  all=$(( $(cpu_ns "$n") - before_all[$n] ))
  sys=$(( $(cpu_ns "$n/system") - before_sys[$n] ))
  printf 'node: %s daemons_rss_mib=%s node_rss_mib=%s daemons_cpu_pct=%s node_cpu_pct=%s (of one core, over %ss)\n' \
    "$n" "$(rss_mib "/sys/fs/cgroup/pids/$n/system")" "$(rss_mib "/sys/fs/cgroup/pids/$n")" \
    "$(awk -v ns="$sys" -v s="$secs" 'BEGIN {printf "%.2f", ns * 100 / (s * 1e9)}')" \
    "$(awk -v ns="$all" -v s="$secs" 'BEGIN {printf "%.2f", ns * 100 / (s * 1e9)}')" "$secs"
done
