#!/usr/bin/env bash
# Controls a running local cluster (hack/cluster-up.sh) without tearing it down:
#
#   hack/cluster-ctl.sh nodes               a line per node: NAME KUBELET_ROOT (as seen from here)
#   hack/cluster-ctl.sh stop node NAME      kill every process of an extra node (kubelet,
#                                           containerd, kube-proxy, shims, containers): a power loss
#   hack/cluster-ctl.sh start node NAME     boot it again in the same namespaces and state
#   hack/cluster-ctl.sh add-node            join one more node; prints its name once it is Ready
#   hack/cluster-ctl.sh remove-node NAME    stop it, delete the Node, remove its namespaces and state
#   hack/cluster-ctl.sh stop apiserver      stop kube-apiserver (etcd and everything else stay)
#   hack/cluster-ctl.sh start apiserver     start it again with the same flags
#
# Node 1 (this machine) cannot be stopped or removed: it runs the control plane.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
. hack/lib/cluster-env.sh
. hack/lib/cluster-node.sh
[ "$(id -u)" -eq 0 ] || { echo "hack/cluster-ctl.sh needs root" >&2; exit 1; }

usage() { sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
is_extra() { [ -f "$NODES_STATE/$1/index" ] || { echo "hack/cluster-ctl.sh: no extra node '$1' (nodes: $(node_names | tr '\n' ' '))" >&2; exit 1; }; }
wait_ready() { # name
  for _ in $(seq 600); do node_ready "$1" && return 0; sleep 0.2; done
  echo "hack/cluster-ctl.sh: node $1 not Ready after 120 s; logs in $LOGS/$1-*.log" >&2
  return 1
}

case "${1:-} ${2:-}" in
  "nodes "*)
    echo "$NODE_NAME /var/lib/kubelet"
    for n in $(node_names); do echo "$n $NODES_STATE/$n/kubelet"; done
    ;;
  "stop node")
    n=${3:?usage: stop node NAME}; is_extra "$n"
    node_stop "$n"
    echo "node $n stopped"
    ;;
  "start node")
    n=${3:?usage: start node NAME}; is_extra "$n"
    [ -e "$NODES_RUN/$n/ns/net" ] || node_create "$(node_index "$n")"
    node_start "$n"
    wait_ready "$n"
    echo "node $n started"
    ;;
  "add-node "*)
    nodes_host_setup
    last=1
    for n in $(node_names); do last=$(node_index "$n"); done
    i=$((last + 1))
    node_create "$i" >/dev/null
    node_start "node-$i" >/dev/null
    wait_ready "node-$i"
    echo "node-$i"
    ;;
  "remove-node "*)
    n=${2:?usage: remove-node NAME}; is_extra "$n"
    node_destroy "$n" --wipe
    "$KUBECTL" delete node "$n" --ignore-not-found --wait=true >/dev/null
    echo "node $n removed"
    ;;
  "stop apiserver")
    f=$PIDS/kube-apiserver.pid
    [ -f "$f" ] || { echo "the API server is not running" >&2; exit 1; }
    pid=$(cat "$f")
    # Its command line, to start it again with the same flags.
    tr '\0' '\n' <"/proc/$pid/cmdline" >"$RUN/kube-apiserver.cmdline"
    kill -TERM "$pid"
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    rm -f "$f"
    echo "apiserver stopped"
    ;;
  "start apiserver")
    [ -f "$RUN/kube-apiserver.cmdline" ] || { echo "no saved API server command line (stop it with this script first)" >&2; exit 1; }
    mapfile -t cmd <"$RUN/kube-apiserver.cmdline"
    setsid "${cmd[@]}" >>"$LOGS/kube-apiserver.log" 2>&1 </dev/null &
    echo $! >"$PIDS/kube-apiserver.pid"
    for _ in $(seq 450); do "$KUBECTL" get --raw /readyz >/dev/null 2>&1 && break; sleep 0.2; done
    "$KUBECTL" get --raw /readyz >/dev/null
    echo "apiserver started"
    ;;
  *) usage ;;
esac
