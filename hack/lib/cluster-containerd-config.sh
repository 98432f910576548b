#!/usr/bin/env bash
# containerd configuration of the local cluster: its own root, state and socket, a local pause
# image, Debian's CNI plugins, and restrict_oom_score_adj (these VMs lack CAP_SYS_RESOURCE).
set -euo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
. "$REPO/hack/lib/cluster-env.sh"
mkdir -p "$CNI_CONF" "$STATE/containerd" "$RUN/containerd"
containerd config default > "$STATE/containerd.toml.default"
python3 - "$STATE/containerd.toml.default" "$STATE/containerd.toml" <<PY
import re, sys
src, dst = sys.argv[1:]
t = open(src).read()
def sub(pattern, repl, count=1):
    global t
    new, n = re.subn(pattern, repl, t, count=count, flags=re.M)
    if n == 0:
        sys.exit(f"containerd config: no match for {pattern!r}")
    t = new
sub(r'^root = .*$', 'root = "$STATE/containerd"')
sub(r'^state = .*$', 'state = "$RUN/containerd"')
sub(r'^(\s*)address = "/run/containerd/containerd.sock"', r'\1address = "$CONTAINERD_SOCK"')
sub(r'^(\s*)sandbox_image = .*$', r'\1sandbox_image = "localhost/pause:1"')
sub(r'^(\s*)restrict_oom_score_adj = .*$', r'\1restrict_oom_score_adj = true')
sub(r'^(\s*)bin_dir = .*$', r'\1bin_dir = "/usr/lib/cni"')
sub(r'^(\s*)conf_dir = .*$', r'\1conf_dir = "$CNI_CONF"')
open(dst, "w").write(t)
PY
cat > "$CNI_CONF/10-local.conflist" <<JSON
{
  "cniVersion": "0.4.0",
  "name": "local",
  "plugins": [
    {"type": "bridge", "bridge": "cni0", "isGateway": true, "ipMasq": true, "hairpinMode": true,
     "ipam": {"type": "host-local", "ranges": [[{"subnet": "$POD_CIDR"}]], "routes": [{"dst": "0.0.0.0/0"}],
              "dataDir": "$STATE/cni/ipam"}},
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
JSON
