#!/usr/bin/env bash
# Certificates and kubeconfigs of the local cluster, made once with openssl.
set -euo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
. "$REPO/hack/lib/cluster-env.sh"
mkdir -p "$PKI" "$LOCAL"
cd "$PKI"
if [ ! -f ca.crt ]; then
  openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 3650 -subj "/CN=seccomp-operator-local-ca" 2>/dev/null
fi
[ -f sa.key ] || { openssl genrsa -out sa.key 2048 2>/dev/null; openssl rsa -in sa.key -pubout -out sa.pub 2>/dev/null; }

cert() { # name, subject, [SANs]
  local name=$1 subj=$2 san=${3:-}
  [ -f "$name.crt" ] && return
  openssl req -newkey rsa:2048 -nodes -keyout "$name.key" -out "$name.csr" -subj "$subj" 2>/dev/null
  local ext
  ext=$(mktemp)
  {
    echo "basicConstraints=CA:FALSE"
    echo "keyUsage=digitalSignature,keyEncipherment"
    echo "extendedKeyUsage=serverAuth,clientAuth"
    [ -n "$san" ] && echo "subjectAltName=$san"
  } >"$ext"
  openssl x509 -req -in "$name.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -out "$name.crt" -days 3650 -extfile "$ext" 2>/dev/null
  rm -f "$ext" "$name.csr"
}
if [ "${1:-}" != node ]; then
cert apiserver "/CN=kube-apiserver" "IP:$NODE_IP,IP:$API_SERVICE_IP,IP:127.0.0.1,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local,DNS:localhost"
cert apiserver-kubelet-client "/O=system:masters/CN=kube-apiserver-kubelet-client"
cert admin "/O=system:masters/CN=admin"
cert controller-manager "/CN=system:kube-controller-manager"
cert scheduler "/CN=system:kube-scheduler"
cert kube-proxy "/CN=system:kube-proxy"
cert kubelet-client "/O=system:nodes/CN=system:node:$NODE_NAME"
cert kubelet "/CN=$NODE_NAME" "IP:$NODE_IP,IP:127.0.0.1,DNS:$NODE_NAME,DNS:localhost"
fi

kubeconfig() { # file, cert name
  local file=$1 name=$2
  python3 - "$file" "$name" "$PKI" "$NODE_IP" <<'PY'
import base64, sys
file, name, pki, ip = sys.argv[1:]
b64 = lambda p: base64.b64encode(open(p, "rb").read()).decode()
open(file, "w").write(f"""apiVersion: v1
kind: Config
clusters:
- name: local
  cluster:
    server: https://{ip}:6443
    certificate-authority-data: {b64(pki + '/ca.crt')}
users:
- name: {name}
  user:
    client-certificate-data: {b64(f'{pki}/{name}.crt')}
    client-key-data: {b64(f'{pki}/{name}.key')}
contexts:
- name: local
  context: {{cluster: local, user: {name}}}
current-context: local
""")
PY
  chmod 600 "$file"
}
if [ "${1:-}" = node ]; then
  # An extra node: NODE_CERT_NAME, NODE_CERT_IP.
  cert "kubelet-client-$NODE_CERT_NAME" "/O=system:nodes/CN=system:node:$NODE_CERT_NAME"
  cert "kubelet-$NODE_CERT_NAME" "/CN=$NODE_CERT_NAME" "IP:$NODE_CERT_IP,IP:127.0.0.1,DNS:$NODE_CERT_NAME,DNS:localhost"
fi
if [ "${1:-}" = node ]; then
  kubeconfig "$STATE/kubelet-$NODE_CERT_NAME.kubeconfig" "kubelet-client-$NODE_CERT_NAME"
  exit 0
fi
kubeconfig "$KUBECONFIG_PATH" admin
kubeconfig "$STATE/controller-manager.kubeconfig" controller-manager
kubeconfig "$STATE/scheduler.kubeconfig" scheduler
kubeconfig "$STATE/kube-proxy.kubeconfig" kube-proxy
kubeconfig "$STATE/kubelet.kubeconfig" kubelet-client
