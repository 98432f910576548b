#!/usr/bin/env bash
# containerd 2 configuration (config version 3) of a local cluster node: its own root, state
# and socket, the local pause image pinned as the sandbox image (the kubelet no longer names
# it), the runc and CNI plugins hack/k8s-build.sh built, a bridge for the node's pod range, and
# restrict_oom_score_adj (these VMs lack CAP_SYS_RESOURCE).
#
#   cluster-containerd-config.sh                 node 1 (paths from cluster-env.sh)
#   cluster-containerd-config.sh OUT ROOT STATE SOCKET CNI_DIR SUBNET IPAM_DIR
#                                                an extra node; its pod network namespaces
#                                                go under its state dir
set -euo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
. "$REPO/hack/lib/cluster-env.sh"
if [ $# -eq 0 ]; then
  set -- "$STATE/containerd.toml" "$STATE/containerd" "$RUN/containerd" "$CONTAINERD_SOCK" "$CNI_CONF" "$POD_CIDR" "$STATE/cni/ipam" false
else
  [ $# -eq 7 ] || { echo "usage: cluster-containerd-config.sh [OUT ROOT STATE SOCKET CNI_DIR SUBNET IPAM_DIR]" >&2; exit 2; }
  set -- "$@" true
fi
out=$1 root=$2 state=$3 sock=$4 cni=$5 subnet=$6 ipam=$7 netns_under_state=$8
mkdir -p "$cni" "$root" "$state" "$(dirname "$out")"
"$CONTAINERD_BIN/containerd" config default > "$out.default"
python3 - "$out.default" "$out.tmp" "$root" "$state" "$sock" "$cni" "$netns_under_state" "$RUNC_BIN/runc" "$CNI_BIN" <<'PY'
import re, sys
src, dst, root, state, sock, cni, netns, runc, cni_bin = sys.argv[1:]
t = open(src).read()
if not re.search(r"^version = 3$", t, flags=re.M):
    sys.exit("containerd config: expected config version 3 (containerd 2.x)")
def sub(pattern, repl):
    global t
    new, n = re.subn(pattern, repl, t, count=1, flags=re.M)
    if n == 0:
        sys.exit(f"containerd config: no match for {pattern!r}")
    t = new
sub(r"^root = .*$", f"root = '{root}'")
sub(r"^state = .*$", f"state = '{state}'")
sub(r"^(\s*)address = '/run/containerd/containerd.sock'", rf"\1address = '{sock}'")
sub(r"^(\s*)sandbox = .*$", r"\1sandbox = 'localhost/pause:1'")
sub(r"^(\s*)restrict_oom_score_adj = .*$", r"\1restrict_oom_score_adj = true")
sub(r"^(\s*)netns_mounts_under_state_dir = .*$", rf"\1netns_mounts_under_state_dir = {netns}")
sub(r"^(\s*)BinaryName = .*$", rf"\1BinaryName = '{runc}'")
sub(r"^(\s*)bin_dirs = .*$", rf"\1bin_dirs = ['{cni_bin}']")
sub(r"^(\s*)conf_dir = '/etc/cni/net.d'", rf"\1conf_dir = '{cni}'")
open(dst, "w").write(t)
PY
mv "$out.tmp" "$out"
cat > "$cni/10-local.conflist.tmp" <<JSON
{
  "cniVersion": "0.4.0",
  "name": "local",
  "plugins": [
    {"type": "bridge", "bridge": "cni0", "isGateway": true, "ipMasq": true, "hairpinMode": true,
     "ipam": {"type": "host-local", "ranges": [[{"subnet": "$subnet"}]], "routes": [{"dst": "0.0.0.0/0"}],
              "dataDir": "$ipam"}},
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
JSON
mv "$cni/10-local.conflist.tmp" "$cni/10-local.conflist"
