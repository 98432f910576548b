#!/usr/bin/env bash
# Stops exactly the processes hack/cluster-up.sh started (by the PIDs it recorded in
# /run/seccomp-operator-cluster/pids, from whichever checkout started them; never by
# name; for extra nodes, every process in their own cgroup subtree; the containerd shims by
# the cluster's socket they name) and cleans what they left: containers, mounts, network namespaces, the pod bridge,
# CNI and kube-proxy iptables chains. `--wipe` also deletes the cluster's state (etcd data,
# certificates, containerd images, /var/lib/kubelet). Idempotent.
set -uo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
. hack/lib/cluster-env.sh
. hack/lib/cluster-node.sh
wipe=false
[ "${1:-}" = "--wipe" ] && wipe=true
[ "$(id -u)" -eq 0 ] || { echo "hack/cluster-down.sh needs root" >&2; exit 1; }

stop() { # name: SIGTERM, then SIGKILL after 10 s
  local f=$PIDS/$1.pid
  [ -f "$f" ] || return 0
  local pid
  pid=$(cat "$f")
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
  fi
  rm -f "$f"
}

# Extra nodes first: every process in their cgroups, then their namespaces, veths, routes.
for n in $(node_names); do
  if $wipe; then node_destroy "$n" --wipe; else node_destroy "$n"; fi
done
ip link delete "$NODE_BRIDGE" 2>/dev/null
mountpoint -q "$NODES_RUN" 2>/dev/null && umount "$NODES_RUN" 2>/dev/null

stop kubelet
# Containers the kubelet left: stop them through containerd while it still runs.
if [ -f "$PIDS/containerd.pid" ] && kill -0 "$(cat "$PIDS/containerd.pid")" 2>/dev/null; then
  c="ctr --address $CONTAINERD_SOCK -n k8s.io"
  for t in $($c tasks ls -q 2>/dev/null); do $c tasks kill -s SIGKILL "$t" >/dev/null 2>&1; done
  sleep 1
  for t in $($c tasks ls -q 2>/dev/null); do $c tasks rm -f "$t" >/dev/null 2>&1; done
  for k in $($c containers ls -q 2>/dev/null); do $c containers rm "$k" >/dev/null 2>&1; done
fi
stop kube-proxy
stop containerd
stop kube-scheduler
stop kube-controller-manager
stop kube-apiserver
stop etcd
# containerd-shim processes are children of containerd's session.
for f in /run/seccomp-operator-cluster/containerd/io.containerd.runtime.v2.task/k8s.io/*/init.pid; do
  [ -f "$f" ] && kill -KILL "$(cat "$f")" 2>/dev/null
done
# The shims outlive their containerd by design; each of this cluster's (every node's) names
# a socket under $RUN, which no other containerd uses.
for p in /proc/[0-9]*; do
  cmd=$(tr '\0' ' ' <"$p/cmdline" 2>/dev/null) || continue
  case "$cmd" in
    *containerd-shim*" -address $RUN/"*) kill -KILL "${p#/proc/}" 2>/dev/null ;;
  esac
done

# Mounts under the cluster's directories, deepest first.
awk '{print $2}' /proc/mounts | grep -E "^(/var/lib/kubelet|$STATE|$RUN)(/|$)" | sort -r | while read -r m; do
  umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null
done
# Network namespaces CNI made for pods, and the bridge.
for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep '^cni-'); do ip netns delete "$ns" 2>/dev/null; done
ip link delete cni0 2>/dev/null
# kube-proxy's and the CNI plugins' iptables chains.
if command -v iptables-save >/dev/null; then
  for table in nat filter mangle; do
    rules=$(iptables-save -t "$table" 2>/dev/null) || continue
    if echo "$rules" | grep -qE 'KUBE-|CNI-'; then
      echo "$rules" | grep -vE '(-j|-A|:)[ ]?(KUBE-|CNI-)|--comment "(name: \\"local\\"|kubernetes)' | iptables-restore -T "$table" 2>/dev/null || true
    fi
  done
fi
rm -rf "$STATE/cni/ipam"
# A node agent stopped mid-recording leaves its recorder pinned so that the next agent takes
# over; with the cluster gone, nobody will: removing the pins detaches the programs.
rm -rf /sys/fs/bpf/seccomp-operator

if $wipe; then
  rm -rf "$STATE" "$RUN" "$LOCAL" /var/lib/kubelet
  echo "cluster stopped and wiped"
else
  echo "cluster stopped (state kept in $STATE; --wipe removes it)"
fi
