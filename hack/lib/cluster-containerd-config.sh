#!/usr/bin/env bash
# containerd configuration of a local cluster node: its own root, state and socket, a local
# pause image, Debian's CNI plugins with a bridge for the node's pod range, and
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
containerd config default > "$out.default"
python3 - "$out.default" "$out.tmp" "$root" "$state" "$sock" "$cni" "$netns_under_state" <<'PY'
import re, sys
src, dst, root, state, sock, cni, netns = sys.argv[1:]
t = open(src).read()
def sub(pattern, repl):
    global t
    new, n = re.subn(pattern, repl, t, count=1, flags=re.M)
    if n == 0:
        sys.exit(f"containerd config: no match for {pattern!r}")
    t = new
sub(r'^root = .*$', f'root = "{root}"')
sub(r'^state = .*$', f'state = "{state}"')
sub(r'^(\s*)address = "/run/containerd/containerd.sock"', rf'\1address = "{sock}"')
sub(r'^(\s*)sandbox_image = .*$', r'\1sandbox_image = "localhost/pause:1"')
sub(r'^(\s*)restrict_oom_score_adj = .*$', r'\1restrict_oom_score_adj = true')
sub(r'^(\s*)bin_dir = .*$', r'\1bin_dir = "/usr/lib/cni"')
sub(r'^(\s*)conf_dir = .*$', rf'\1conf_dir = "{cni}"')
sub(r'^(\s*)netns_mounts_under_state_dir = .*$', rf'\1netns_mounts_under_state_dir = {netns}')
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
