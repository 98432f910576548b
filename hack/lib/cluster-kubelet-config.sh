#!/usr/bin/env bash
# Kubelet configuration of a local cluster node.
#
#   cluster-kubelet-config.sh OUT CERT [CGROUP_ROOT]
#
# CERT names the serving certificate and key in the cluster's PKI ($PKI/CERT.crt, .key);
# CGROUP_ROOT (extra nodes) puts the node's pods under that cgroup in every hierarchy.
set -euo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
. "$REPO/hack/lib/cluster-env.sh"
[ $# -ge 2 ] || { echo "usage: cluster-kubelet-config.sh OUT CERT [CGROUP_ROOT]" >&2; exit 2; }
out=$1 cert=$2 cgroup_root=${3:-}
{
  cat <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: false}
  x509: {clientCAFile: "$PKI/ca.crt"}
authorization: {mode: AlwaysAllow}
cgroupDriver: cgroupfs
failSwapOn: false
tlsCertFile: "$PKI/$cert.crt"
tlsPrivateKeyFile: "$PKI/$cert.key"
clusterDomain: cluster.local
resolvConf: /etc/resolv.conf
serializeImagePulls: false
imageGCHighThresholdPercent: 100
evictionHard: {memory.available: "100Mi", nodefs.available: "1%", nodefs.inodesFree: "1%", imagefs.available: "1%"}
enforceNodeAllocatable: []
EOF
  [ -z "$cgroup_root" ] || echo "cgroupRoot: $cgroup_root"
} >"$out.tmp"
mv "$out.tmp" "$out"
