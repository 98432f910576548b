# Shared settings of the local cluster scripts (sourced).
# The test bed's binaries, built once per version by hack/k8s-build.sh (K8S_VERSION and the
# other versions there select them): K8S_BIN, ETCD_BIN, CONTAINERD_BIN, RUNC_BIN, CNI_BIN.
eval "$("$REPO/hack/k8s-build.sh" --print)"
# containerd finds its shim on PATH; every script's ctr, containerd, etcd and runc are these.
PATH=$CONTAINERD_BIN:$ETCD_BIN:$RUNC_BIN:$PATH
KUBECTL=$K8S_BIN/kubectl
LOCAL=$REPO/.local-cluster
KUBECONFIG_PATH=$LOCAL/kubeconfig
LOGS=$LOCAL/logs
STATE=/var/lib/seccomp-operator-cluster
RUN=/run/seccomp-operator-cluster
# The machine runs one cluster (ports, /var/lib/kubelet): its PIDs live with its machine-wide
# state, so that cluster-down from any checkout stops it.
PIDS=$RUN/pids
PKI=$STATE/pki
CNI_CONF=$STATE/cni/net.d
CONTAINERD_SOCK=$RUN/containerd.sock
NODE_NAME=${NODE_NAME:-$(hostname | tr '[:upper:]_' '[:lower:]-')}
# This machine's own primary address: the API server and the kubelet listen on it.
NODE_IP=${NODE_IP:-$(ip -4 -o addr show scope global | awk '{print $4}' | cut -d/ -f1 | head -1)}
SERVICE_CIDR=10.96.0.0/24
API_SERVICE_IP=10.96.0.1
POD_CIDR=10.88.0.0/16
# All nodes' pods: node 1 10.88.0.0/16, node i 10.89.i.0/24 (hack/lib/cluster-node.sh).
CLUSTER_CIDR=10.88.0.0/15
# Every kubelet registers with the taint the operator lifts once the node's agent has synced.
AGENT_TAINT=seccomp-operator.dev/agent-not-ready=true:NoSchedule
# Extra nodes whose kubelet runs unset containers under RuntimeDefault (seccompDefault: true),
# as more and more real clusters do; the others keep the kubelet's default (unconfined).
SECCOMP_DEFAULT_NODES=${SECCOMP_DEFAULT_NODES:-node-3}
export KUBECONFIG=$KUBECONFIG_PATH
