#!/usr/bin/env bash
# Brings up a real Kubernetes cluster on this machine (v1.37 by default; K8S_VERSION selects
# another, see hack/k8s-build.sh), built once from the published Go modules: etcd,
# kube-apiserver, kube-controller-manager, kube-scheduler, containerd 2 + runc, kube-proxy
# (iptables), kubelet. Writes the admin kubeconfig to .local-cluster/kubeconfig.
#
#   hack/cluster-up.sh [--nodes N]    N nodes (default: as many as the kept state has, or 1):
#                                     node 1 is this machine, nodes 2..N each run in their own
#                                     namespaces (hack/lib/cluster-node.sh)
#
# Idempotent: on a running cluster it only adds the nodes that are missing (or restarts the
# stopped ones) and prints the export line. Extra nodes the kept state has beyond N are
# removed (their Node objects too), so that no node is left NotReady. State made by another
# Kubernetes version is wiped first.
#
# Every process it starts is recorded in .local-cluster/pids/ for hack/cluster-down.sh.
# Traffic stays on this machine: the API server listens on the node IP and loopback, pods live
# in network namespaces on a local bridge, and kube-proxy is up before any pod or service IP
# is used.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
. hack/lib/cluster-env.sh
. hack/lib/cluster-node.sh

nodes=""
while [ $# -gt 0 ]; do
  case "$1" in
    --nodes) nodes=${2:?--nodes takes a number}; shift 2 ;;
    --nodes=*) nodes=${1#--nodes=}; shift ;;
    *) echo "usage: hack/cluster-up.sh [--nodes N]" >&2; exit 2 ;;
  esac
done
# Without --nodes: the nodes the kept state has (node 1 alone on a fresh machine).
if [ -z "$nodes" ]; then
  nodes=1
  for n in $(node_names); do nodes=$(node_index "$n"); done
fi
[[ "$nodes" =~ ^[1-9][0-9]?$ ]] || { echo "hack/cluster-up.sh: --nodes must be 1..99, not '$nodes'" >&2; exit 2; }
[ "$(id -u)" -eq 0 ] || { echo "hack/cluster-up.sh needs root" >&2; exit 1; }

alive() { [ -f "$PIDS/$1.pid" ] && kill -0 "$(cat "$PIDS/$1.pid")" 2>/dev/null; }
all_alive() { for c in etcd kube-apiserver kube-controller-manager kube-scheduler containerd kube-proxy kubelet; do alive "$c" || return 1; done; }
wait_for() { # description, timeout seconds, command...
  local what=$1 t=$2; shift 2
  for _ in $(seq "$((t * 5))"); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.2
  done
  echo "timed out waiting for $what; logs in $LOGS" >&2
  return 1
}
# Nodes 2..N: created when missing, started when stopped, then Ready.
extra_nodes() {
  local i n
  for n in $(node_names); do
    if [ "$(node_index "$n")" -gt "$nodes" ]; then
      echo "== node $n: not asked for (--nodes $nodes): removed"
      node_destroy "$n" --wipe
      "$KUBECTL" delete node "$n" --ignore-not-found --wait=false >/dev/null 2>&1 || true
    fi
  done
  [ "$nodes" -gt 1 ] || return 0
  nodes_host_setup
  for i in $(seq 2 "$nodes"); do
    n=node-$i
    echo "== node $n ($(node_ip "$i"), pods $(node_pod_cidr "$i"))"
    node_create "$i"
    node_start "$n"
  done
  for i in $(seq 2 "$nodes"); do
    wait_for "node node-$i Ready" 120 node_ready "node-$i"
  done
}
# A cluster (running or kept) of another version of the stack is torn down and wiped first.
stack="$K8S_BIN $ETCD_BIN $CONTAINERD_BIN $RUNC_BIN $CNI_BIN"
if [ -f "$STATE/stack" ] && [ "$(cat "$STATE/stack")" != "$stack" ]; then
  echo "== the kept cluster is of another stack ($(cat "$STATE/stack")): wiped"
  hack/cluster-down.sh --wipe >/dev/null
fi
if all_alive && "$KUBECTL" --kubeconfig "$KUBECONFIG_PATH" get --raw /readyz >/dev/null 2>&1; then
  echo "cluster already running"
  extra_nodes
  echo "export KUBECONFIG=$KUBECONFIG_PATH"
  exit 0
fi
# Stop what an earlier run left half running, and clean its mounts, namespaces and rules;
# state of an unknown stack (made before the stack was recorded) is wiped.
if [ -d "$STATE" ] && [ ! -f "$STATE/stack" ]; then
  hack/cluster-down.sh --wipe >/dev/null
else
  hack/cluster-down.sh >/dev/null
fi

echo "== packages"
hack/deps.sh test
missing=()
for p in conntrack iptables openssl gcc python3 iproute2; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "installing ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
hack/k8s-build.sh

mkdir -p "$STATE" "$RUN" "$PIDS" "$LOGS" "$PKI" "$CNI_CONF" /var/lib/kubelet
echo "$stack" > "$STATE/stack"
sysctl -qw net.ipv4.ip_forward=1
sysctl -qw net.bridge.bridge-nf-call-iptables=1 2>/dev/null || true
mountpoint -q /sys/fs/bpf || mount -t bpf bpf /sys/fs/bpf 2>/dev/null || true

echo "== certificates and kubeconfigs ($PKI)"
hack/lib/cluster-pki.sh

start() { # name, log, command...
  local name=$1; shift
  if alive "$name"; then return; fi
  setsid "$@" >"$LOGS/$name.log" 2>&1 < /dev/null &
  echo $! >"$PIDS/$name.pid"
}
http_ok() { python3 -c "import sys,urllib.request; urllib.request.urlopen(sys.argv[1], timeout=2)" "$1"; }

echo "== etcd"
start etcd etcd --name local --data-dir "$STATE/etcd" \
  --listen-client-urls http://127.0.0.1:2379 --advertise-client-urls http://127.0.0.1:2379 \
  --listen-peer-urls http://127.0.0.1:2380 --initial-advertise-peer-urls http://127.0.0.1:2380 \
  --initial-cluster local=http://127.0.0.1:2380 --log-level warn
wait_for etcd 30 http_ok http://127.0.0.1:2379/health

echo "== kube-apiserver ($NODE_IP:6443)"
start kube-apiserver "$K8S_BIN/kube-apiserver" \
  --etcd-servers=http://127.0.0.1:2379 \
  --bind-address=0.0.0.0 --secure-port=6443 --advertise-address="$NODE_IP" \
  --service-cluster-ip-range="$SERVICE_CIDR" \
  --authorization-mode=Node,RBAC --enable-admission-plugins=NodeRestriction \
  --client-ca-file="$PKI/ca.crt" \
  --tls-cert-file="$PKI/apiserver.crt" --tls-private-key-file="$PKI/apiserver.key" \
  --kubelet-client-certificate="$PKI/apiserver-kubelet-client.crt" --kubelet-client-key="$PKI/apiserver-kubelet-client.key" \
  --kubelet-preferred-address-types=InternalIP \
  --service-account-issuer=https://kubernetes.default.svc.cluster.local \
  --service-account-key-file="$PKI/sa.pub" --service-account-signing-key-file="$PKI/sa.key" \
  --allow-privileged=true --profiling=false --v=1
wait_for "the API server" 90 "$KUBECTL" --kubeconfig "$KUBECONFIG_PATH" get --raw /readyz

echo "== kube-controller-manager, kube-scheduler"
start kube-controller-manager "$K8S_BIN/kube-controller-manager" \
  --kubeconfig="$STATE/controller-manager.kubeconfig" \
  --authentication-kubeconfig="$STATE/controller-manager.kubeconfig" \
  --authorization-kubeconfig="$STATE/controller-manager.kubeconfig" \
  --service-account-private-key-file="$PKI/sa.key" --root-ca-file="$PKI/ca.crt" \
  --cluster-signing-cert-file="$PKI/ca.crt" --cluster-signing-key-file="$PKI/ca.key" \
  --use-service-account-credentials=true --leader-elect=false \
  --bind-address=127.0.0.1 --secure-port=10257 --v=1
start kube-scheduler "$K8S_BIN/kube-scheduler" \
  --kubeconfig="$STATE/scheduler.kubeconfig" \
  --authentication-kubeconfig="$STATE/scheduler.kubeconfig" \
  --authorization-kubeconfig="$STATE/scheduler.kubeconfig" \
  --leader-elect=false --bind-address=127.0.0.1 --secure-port=10259 --v=1

echo "== containerd (own root, socket $CONTAINERD_SOCK)"
hack/lib/cluster-containerd-config.sh
start containerd containerd --config "$STATE/containerd.toml"
wait_for containerd 30 ctr --address "$CONTAINERD_SOCK" version

echo "== images (pause, busybox)"
hack/lib/cluster-images.sh

echo "== kubelet (node $NODE_NAME)"
hack/lib/cluster-kubelet-config.sh "$STATE/kubelet-config.yaml" kubelet "unix://$CONTAINERD_SOCK"
start kubelet "$K8S_BIN/kubelet" \
  --kubeconfig="$STATE/kubelet.kubeconfig" --config="$STATE/kubelet-config.yaml" \
  --hostname-override="$NODE_NAME" --node-ip="$NODE_IP" --root-dir=/var/lib/kubelet \
  --register-with-taints="$AGENT_TAINT" --v=1
# kube-proxy after the kubelet has registered the Node: one that starts before cannot read the
# node's IPs, assumes loopback, and (1.37) exits when the Node appears with its IP, leaving
# Services unrouted on this node.
wait_for "node $NODE_NAME registered" 60 "$KUBECTL" --kubeconfig "$KUBECONFIG_PATH" get node "$NODE_NAME"
echo "== kube-proxy (iptables)"
start kube-proxy "$K8S_BIN/kube-proxy" \
  --kubeconfig="$STATE/kube-proxy.kubeconfig" --proxy-mode=iptables \
  --hostname-override="$NODE_NAME" --cluster-cidr="$CLUSTER_CIDR" \
  --conntrack-max-per-core=0 --conntrack-tcp-timeout-established=0 --conntrack-tcp-timeout-close-wait=0 \
  --metrics-bind-address=127.0.0.1:10249 --healthz-bind-address=127.0.0.1:10256 --v=1
wait_for kube-proxy 30 http_ok http://127.0.0.1:10256/livez

node_ready() { "$KUBECTL" --kubeconfig "$KUBECONFIG_PATH" get node "$NODE_NAME" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' | grep -q True; }
wait_for "node $NODE_NAME Ready" 120 node_ready
# The default ServiceAccount must exist before pods can be created in a namespace.
wait_for "the default ServiceAccount" 60 "$KUBECTL" --kubeconfig "$KUBECONFIG_PATH" get serviceaccount default
extra_nodes

echo "cluster up: node $NODE_NAME ($NODE_IP), Kubernetes $("$KUBECTL" --kubeconfig "$KUBECONFIG_PATH" version -o json | python3 -c 'import json,sys; print(json.load(sys.stdin)["serverVersion"]["gitVersion"])')"
echo "export KUBECONFIG=$KUBECONFIG_PATH"
