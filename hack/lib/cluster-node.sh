# Extra nodes of the local cluster (sourced after cluster-env.sh). Node 1 is this machine;
# node i (i >= 2) is named node-i and looks like a machine of its own:
#
#   namespaces  net, mount and uts namespaces pinned in $RUN/nodes/node-i/ns/ (files on a
#               private bind mount; never `ip netns add`, whose rbind of /run/netns hides the
#               host's pod namespaces)
#   network     veth into the host bridge $NODE_BRIDGE: 10.90.0.i/24, pods 10.89.i.0/24, a
#               host route per node, so pods reach each other and the API server
#   mounts      in its mount namespace: its own /var/lib/kubelet, /run/containerd (runc state,
#               shims), /var/lib/cni, /var/log/pods, /var/log/containers and a fresh bpffs at
#               /sys/fs/bpf, bound from $STATE/nodes/node-i/ (what the host sees)
#   processes   containerd, kubelet (--cgroup-root=/node-i) and kube-proxy, all in the cgroup
#               subtree /node-i of every hierarchy, so stopping the node kills every process
#               of it (daemons, shims, containers) like a power loss
#   identity    a kubelet client certificate system:node:node-i (NodeRestriction applies) and
#               a serving certificate for 10.90.0.i (kubectl logs/exec)

NODE_BRIDGE=sonodes0
NODE_BRIDGE_IP=10.90.0.1
NODES_STATE=$STATE/nodes
NODES_RUN=$RUN/nodes
# Every controller hierarchy of cgroup v1 here, and the unified one.
CGROUP_HIERARCHIES="cpu cpuacct cpuset memory devices freezer blkio pids systemd unified"

node_ip() { echo "10.90.0.$1"; }
node_pod_cidr() { echo "10.89.$1.0/24"; }
node_index() { echo "${1#node-}"; }
# The extra nodes that exist (state made by node_create), by index.
node_names() {
  [ -d "$NODES_STATE" ] || return 0
  for d in "$NODES_STATE"/node-*; do [ -f "$d/index" ] && basename "$d"; done | sort -t- -k2 -n
}
node_sock() { echo "$NODES_RUN/$1/containerd.sock"; }
node_in() { # name, command...: run in the node's namespaces
  local n=$1; shift
  nsenter --net="$NODES_RUN/$n/ns/net" --mount="$NODES_RUN/$n/ns/mnt" --uts="$NODES_RUN/$n/ns/uts" -- "$@"
}

# Host side, once: the bridge the nodes' veths join, and a private mount for namespace pins.
nodes_host_setup() {
  mkdir -p "$NODES_RUN" "$NODES_STATE"
  if ! mountpoint -q "$NODES_RUN"; then
    mount --bind "$NODES_RUN" "$NODES_RUN"
    mount --make-private "$NODES_RUN"
  fi
  if ! ip link show "$NODE_BRIDGE" >/dev/null 2>&1; then
    ip link add "$NODE_BRIDGE" type bridge
    ip addr add "$NODE_BRIDGE_IP/24" dev "$NODE_BRIDGE"
    ip link set "$NODE_BRIDGE" up
  fi
  sysctl -qw net.ipv4.ip_forward=1
}

node_cgroup_make() { # name
  local n=$1 h
  for h in $CGROUP_HIERARCHIES; do
    [ -d "/sys/fs/cgroup/$h" ] || continue
    mkdir -p "/sys/fs/cgroup/$h/$n/system"
    if [ "$h" = cpuset ]; then
      for d in "/sys/fs/cgroup/cpuset/$n" "/sys/fs/cgroup/cpuset/$n/system"; do
        cat /sys/fs/cgroup/cpuset/cpuset.cpus >"$d/cpuset.cpus"
        cat /sys/fs/cgroup/cpuset/cpuset.mems >"$d/cpuset.mems"
      done
    fi
  done
}

# Every PID in the node's cgroup subtree.
node_pids() {
  local n=$1
  [ -d "/sys/fs/cgroup/pids/$n" ] || return 0
  # Cgroups vanish while they are walked (containers exit as they are killed): find's complaint
  # about a directory that is gone must not fail the caller under `set -e -o pipefail`.
  { find "/sys/fs/cgroup/pids/$n" -name cgroup.procs -exec cat {} + 2>/dev/null || true; } | sort -u
}

# Kill every process of the node (daemons, shims, containers), as a power loss would.
node_kill_all() {
  local n=$1 pids
  for _ in $(seq 50); do
    pids=$(node_pids "$n")
    [ -z "$pids" ] && return 0
    # Some may exit between the listing and the kill (a shim after its container).
    # shellcheck disable=SC2086
    kill -KILL $pids 2>/dev/null || true
    sleep 0.2
  done
  echo "node $n: processes still alive: $(node_pids "$n" | tr '\n' ' ')" >&2
  return 1
}

node_cgroup_remove() {
  local n=$1 h
  for h in $CGROUP_HIERARCHIES; do
    [ -d "/sys/fs/cgroup/$h/$n" ] || continue
    find "/sys/fs/cgroup/$h/$n" -depth -type d -exec rmdir {} \; 2>/dev/null || true
  done
}

# State, certificates, configuration and namespaces of node-i (idempotent).
node_create() { # index
  local i=$1 n="node-$1"
  local ip pods sdir rdir
  ip=$(node_ip "$i")
  pods=$(node_pod_cidr "$i")
  sdir=$NODES_STATE/$n
  rdir=$NODES_RUN/$n
  mkdir -p "$sdir"/{kubelet,containerd,cni/net.d,cni/ipam,var-lib-cni,log-pods,log-containers} "$rdir"/{ns,containerd,run-containerd} "$LOGS"
  echo "$i" >"$sdir/index"
  mkdir -p /var/lib/cni /var/log/pods /var/log/containers /run/containerd

  # Certificates: system:node:<name> (NodeRestriction), serving cert for its IP.
  NODE_CERT_NAME=$n NODE_CERT_IP=$ip "$REPO/hack/lib/cluster-pki.sh" node

  # containerd: own root, state, socket, CNI config; pod netns under its state dir.
  "$REPO/hack/lib/cluster-containerd-config.sh" "$sdir/containerd.toml" "$sdir/containerd" \
    "$rdir/containerd" "$rdir/containerd.sock" "$sdir/cni/net.d" "$pods" "$sdir/cni/ipam"
  local seccomp_default=false
  case " $SECCOMP_DEFAULT_NODES " in *" $n "*) seccomp_default=true ;; esac
  SECCOMP_DEFAULT=$seccomp_default "$REPO/hack/lib/cluster-kubelet-config.sh" "$sdir/kubelet-config.yaml" \
    "kubelet-$n" "unix://$rdir/containerd.sock" "/$n"

  node_cgroup_make "$n"

  # Namespaces, pinned, once.
  if [ ! -e "$rdir/ns/net" ] || ! mountpoint -q "$rdir/ns/net"; then
    touch "$rdir/ns/net" "$rdir/ns/mnt" "$rdir/ns/uts"
    unshare --net="$rdir/ns/net" --mount="$rdir/ns/mnt" --uts="$rdir/ns/uts" --propagation private \
      sh -c "hostname $n"
    # Network: veth into the host bridge.
    local hv="so$n" # host side, e.g. sonode-2
    ip link del "$hv" 2>/dev/null || true
    ip link add "$hv" type veth peer name "eth0-$i"
    ip link set "$hv" master "$NODE_BRIDGE" up
    ip link set "eth0-$i" netns "$rdir/ns/net"
    node_in "$n" sh -ec "
      ip link set lo up
      ip link set eth0-$i name eth0
      ip addr add $ip/24 dev eth0
      ip link set eth0 up
      ip route add default via $NODE_BRIDGE_IP
      sysctl -qw net.ipv4.ip_forward=1
      sysctl -qw net.bridge.bridge-nf-call-iptables=1 2>/dev/null || true
    "
    ip route replace "$pods" via "$ip"
    # Mounts: the node's own directories where a machine has them.
    node_in "$n" sh -ec "
      mount --bind '$sdir/kubelet' /var/lib/kubelet
      mount --bind '$rdir/run-containerd' /run/containerd
      mount --bind '$sdir/var-lib-cni' /var/lib/cni
      mount --bind '$sdir/log-pods' /var/log/pods
      mount --bind '$sdir/log-containers' /var/log/containers
      mount -t bpf bpf /sys/fs/bpf
    "
  fi
  ip route replace "$pods" via "$ip"
}

node_alive() { # name, component
  local f=$NODES_RUN/$1/$2.pid
  [ -f "$f" ] && kill -0 "$(cat "$f")" 2>/dev/null
}

node_start_one() { # name, component, command...
  local n=$1 c=$2; shift 2
  node_alive "$n" "$c" && return 0
  local cg="" h
  for h in $CGROUP_HIERARCHIES; do
    [ -d "/sys/fs/cgroup/$h/$n/system" ] && cg="$cg /sys/fs/cgroup/$h/$n/system/cgroup.procs"
  done
  # The launcher joins the node's cgroups, then becomes the component inside its namespaces.
  setsid sh -c 'for f in $0; do echo $$ > "$f"; done; exec "$@"' "$cg" \
    nsenter --net="$NODES_RUN/$n/ns/net" --mount="$NODES_RUN/$n/ns/mnt" --uts="$NODES_RUN/$n/ns/uts" -- "$@" \
    >"$LOGS/$n-$c.log" 2>&1 </dev/null &
  echo $! >"$NODES_RUN/$n/$c.pid"
}

# Start (or restart after a stop) the node's containerd, images, kube-proxy and kubelet.
node_start() { # name
  local n=$1 i ip sdir
  i=$(node_index "$n")
  ip=$(node_ip "$i")
  sdir=$NODES_STATE/$n
  node_start_one "$n" containerd containerd --config "$sdir/containerd.toml"
  for _ in $(seq 150); do ctr --address "$(node_sock "$n")" version >/dev/null 2>&1 && break; sleep 0.2; done
  ctr --address "$(node_sock "$n")" version >/dev/null 2>&1 || { echo "node $n: containerd did not start; see $LOGS/$n-containerd.log" >&2; return 1; }
  node_images "$n"
  node_start_one "$n" kubelet "$K8S_BIN/kubelet" \
    --kubeconfig="$STATE/kubelet-$n.kubeconfig" --config="$sdir/kubelet-config.yaml" \
    --hostname-override="$n" --node-ip="$ip" --root-dir=/var/lib/kubelet \
    --register-with-taints="$AGENT_TAINT" --v=1
  # kube-proxy once the kubelet has registered the Node (see hack/cluster-up.sh).
  for _ in $(seq 150); do "$KUBECTL" get node "$n" >/dev/null 2>&1 && break; sleep 0.2; done
  node_start_one "$n" kube-proxy "$K8S_BIN/kube-proxy" \
    --kubeconfig="$STATE/kube-proxy.kubeconfig" --proxy-mode=iptables \
    --hostname-override="$n" --cluster-cidr="$CLUSTER_CIDR" \
    --conntrack-max-per-core=0 --conntrack-tcp-timeout-established=0 --conntrack-tcp-timeout-close-wait=0 \
    --metrics-bind-address=127.0.0.1:10249 --healthz-bind-address=127.0.0.1:10256 --v=1
}

# Every image node 1 has under localhost/ that this node lacks, moved with export/import.
node_images() { # name
  local n=$1 want have missing=() tmp
  want=$(ctr --address "$CONTAINERD_SOCK" -n k8s.io images ls -q 2>/dev/null | grep '^localhost/' || true)
  have=$(ctr --address "$(node_sock "$n")" -n k8s.io images ls -q 2>/dev/null || true)
  for img in $want; do
    if ! grep -qx "$img" <<<"$have"; then missing+=("$img"); fi
  done
  [ "${#missing[@]}" -eq 0 ] && return 0
  tmp=$(mktemp -d)
  # A fresh node's containerd has been seen to fail an import now and then ("failed to ingest
  # index.json: short read"): export and import again, a few times, before giving up.
  local try
  for try in 1 2 3; do
    if ctr --address "$CONTAINERD_SOCK" -n k8s.io images export "$tmp/images.tar" "${missing[@]}" &&
       ctr --address "$(node_sock "$n")" -n k8s.io images import "$tmp/images.tar" >/dev/null; then
      rm -rf "$tmp"
      return 0
    fi
    echo "node $n: moving images failed (attempt $try of 3)" >&2
    sleep 2
  done
  rm -rf "$tmp"
  return 1
}

node_ready() { # name
  "$KUBECTL" get node "$1" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null | grep -q True
}

# Stop every process of the node (kubelet, containerd, kube-proxy, shims, containers).
node_stop() { # name
  local n=$1
  node_kill_all "$n"
  rm -f "$NODES_RUN/$n"/*.pid
}

# Tear a node down: processes, mounts, namespaces, network, cgroups; `--wipe` also its state.
node_destroy() { # name, [--wipe]
  local n=$1 i rdir
  i=$(node_index "$n")
  rdir=$NODES_RUN/$n
  # Every step is best effort (this runs under `set -e` in cluster-ctl.sh): what is already
  # gone is fine.
  node_stop "$n" 2>/dev/null || true
  # CNI leaves iptables rules in the node's netns, which goes with it; so does the veth.
  for f in net mnt uts; do
    if mountpoint -q "$rdir/ns/$f" 2>/dev/null; then umount "$rdir/ns/$f" 2>/dev/null || true; fi
  done
  ip link del "so$n" 2>/dev/null || true
  ip route del "$(node_pod_cidr "$i")" 2>/dev/null || true
  node_cgroup_remove "$n" || true
  rm -rf "$rdir"
  if [ "${2:-}" = --wipe ]; then rm -rf "${NODES_STATE:?}/$n"; fi
}
