#!/usr/bin/env bash
# Kubelet configuration of a local cluster node.
#
#   cluster-kubelet-config.sh OUT CERT RUNTIME_ENDPOINT [CGROUP_ROOT]
#
# CERT names the serving certificate and key in the cluster's PKI ($PKI/CERT.crt, .key);
# RUNTIME_ENDPOINT is the node's containerd socket (unix://...); CGROUP_ROOT (extra nodes) puts
# the node's pods under that cgroup in every hierarchy. SECCOMP_DEFAULT=true runs unset
# containers under RuntimeDefault (the kubelet's seccompDefault).
#
# As on a real cluster, the kubelet authenticates API requests with the cluster CA (x509) and
# ServiceAccount tokens (webhook: TokenReview) and authorises them with SubjectAccessReview
# (webhook), so what the project needs from a kubelet is granted only by the RBAC it ships.
# failCgroupV1: false because this machine's cgroup hierarchy is hybrid (v1 controllers) and
# cannot be switched; production nodes run cgroup v2.
set -euo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
. "$REPO/hack/lib/cluster-env.sh"
[ $# -ge 3 ] || { echo "usage: cluster-kubelet-config.sh OUT CERT RUNTIME_ENDPOINT [CGROUP_ROOT]" >&2; exit 2; }
out=$1 cert=$2 endpoint=$3 cgroup_root=${4:-}
{
  cat <<YAML
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
containerRuntimeEndpoint: "$endpoint"
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true, cacheTTL: 30s}
  x509: {clientCAFile: "$PKI/ca.crt"}
authorization:
  mode: Webhook
  webhook: {cacheAuthorizedTTL: 30s, cacheUnauthorizedTTL: 10s}
cgroupDriver: cgroupfs
failCgroupV1: false
failSwapOn: false
seccompDefault: ${SECCOMP_DEFAULT:-false}
tlsCertFile: "$PKI/$cert.crt"
tlsPrivateKeyFile: "$PKI/$cert.key"
clusterDomain: cluster.local
resolvConf: /etc/resolv.conf
serializeImagePulls: false
imageGCHighThresholdPercent: 100
evictionHard: {memory.available: "100Mi", nodefs.available: "1%", nodefs.inodesFree: "1%", imagefs.available: "1%"}
enforceNodeAllocatable: []
YAML
  [ -z "$cgroup_root" ] || echo "cgroupRoot: $cgroup_root"
} >"$out.tmp"
mv "$out.tmp" "$out"
