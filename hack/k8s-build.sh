#!/usr/bin/env bash
# Builds Kubernetes v1.20.2 (kube-apiserver, kube-controller-manager, kube-scheduler, kubelet,
# kube-proxy, kubectl) from Debian's `kubernetes` source package, once per machine, into
# $K8S_CACHE (default /var/cache/seccomp-operator/k8s-v1.20.2/bin). About 5 minutes on 2 cores
# the first time; a no-op afterwards.
set -euo pipefail
K8S_VERSION=v1.20.2
CACHE=${K8S_CACHE:-/var/cache/seccomp-operator/k8s-$K8S_VERSION}
BIN=$CACHE/bin
COMPONENTS="kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl"

have_all() { for c in $COMPONENTS; do [ -x "$BIN/$c" ] || return 1; done; }
if have_all; then
  exit 0
fi
[ "$(id -u)" -eq 0 ] || { echo "hack/k8s-build.sh needs root (apt-get, $CACHE)" >&2; exit 1; }

# A deb-src entry for the same Debian mirror and release the machine already uses.
src_list=/etc/apt/sources.list.d/seccomp-operator-src.sources
if ! apt-get indextargets 2>/dev/null | grep -q 'Identifier: Sources'; then
  uri=$(grep -h '^URIs:' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -1 | awk '{print $2}')
  [ -n "$uri" ] || uri=$(grep -h '^deb ' /etc/apt/sources.list 2>/dev/null | grep -v security | head -1 | awk '{print $2}')
  [ -n "$uri" ] || { echo "hack/k8s-build.sh: no Debian mirror configured in apt" >&2; exit 1; }
  codename=$(. /etc/os-release && echo "$VERSION_CODENAME")
  printf 'Types: deb-src\nURIs: %s\nSuites: %s\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
    "$uri" "$codename" > "$src_list"
  apt-get update -qq
fi
export DEBIAN_FRONTEND=noninteractive
apt-get install -y -qq --no-install-recommends golang-go rsync dpkg-dev golang-github-modern-go-reflect2-dev >/dev/null

mkdir -p "$CACHE/src"
cd "$CACHE/src"
tree=$(find . -maxdepth 1 -type d -name 'kubernetes-1.20*' | head -1)
if [ -z "$tree" ]; then
  apt-get source -qq kubernetes >/dev/null 2>&1 || apt-get source kubernetes
  tree=$(find . -maxdepth 1 -type d -name 'kubernetes-1.20*' | head -1)
fi
[ -n "$tree" ] || { echo "hack/k8s-build.sh: kubernetes 1.20.2 source not found" >&2; exit 1; }
tree=$(cd "$tree" && pwd)

# Go 1.19 with the vendored reflect2 1.0.1 segfaults kube-apiserver on the first JSON Pod;
# Debian's reflect2 1.0.2 works.
r2=/usr/share/gocode/src/github.com/modern-go/reflect2
if [ -d "$r2" ]; then
  rm -f "$tree"/vendor/github.com/modern-go/reflect2/*.go "$tree"/vendor/github.com/modern-go/reflect2/*.s
  cp "$r2"/*.go "$tree"/vendor/github.com/modern-go/reflect2/
  cp "$r2"/*.s "$tree"/vendor/github.com/modern-go/reflect2/ 2>/dev/null || true
  rm -f "$tree"/vendor/github.com/modern-go/reflect2/*_test.go
fi

gopath=$tree/.go
mkdir -p "$gopath/src/k8s.io"
ln -sfn "$tree" "$gopath/src/k8s.io/kubernetes"
cd "$gopath/src/k8s.io/kubernetes"
what=""
for c in $COMPONENTS; do what="$what cmd/$c"; done
echo "hack/k8s-build.sh: building Kubernetes $K8S_VERSION ($COMPONENTS); this takes a few minutes once"
GOPATH=$gopath GO111MODULE=off GOFLAGS=-mod=vendor CGO_ENABLED=0 make WHAT="${what# }" >"$CACHE/build.log" 2>&1 || {
  echo "hack/k8s-build.sh: build failed; see $CACHE/build.log" >&2; tail -20 "$CACHE/build.log" >&2; exit 1; }
mkdir -p "$BIN"
for c in $COMPONENTS; do
  install -m 0755 "$tree/_output/bin/$c" "$BIN/$c"
done
"$BIN/kube-apiserver" --version
