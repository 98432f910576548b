#!/usr/bin/env bash
# Builds the local cluster's upstream parts from their published Go modules, once per machine
# and per version, into /var/cache/seccomp-operator/ (a no-op when they are there):
#   Kubernetes  kube-apiserver, kube-controller-manager, kube-scheduler, kubelet, kube-proxy,
#               kubectl                                  -> k8s-$K8S_VERSION/bin
#   etcd        etcd (go.etcd.io/etcd/server/v3)          -> etcd-$ETCD_VERSION/bin
#   containerd  containerd, containerd-shim-runc-v2, ctr  -> containerd-$CONTAINERD_VERSION/bin
#   runc        runc (cgo, libseccomp, tag seccomp)        -> runc-$RUNC_VERSION/bin
#   CNI         bridge, host-local, loopback, portmap     -> cni-$CNI_VERSION/bin
#   helm        helm (helm.sh/helm/v4; the chart's tests)  -> helm-$HELM_VERSION/bin
#   oras        oras (oras.land/oras; OCI artifact tests
#               against hack/registry.sh's registries)    -> oras-$ORAS_VERSION/bin
#
# Product code is Rust; Go is only the build tool of this test bed. Versions come from the
# environment (K8S_VERSION=v1.34.4 hack/k8s-build.sh) or the defaults below; the Kubernetes
# staging modules (k8s.io/api, ...) are taken at the matching v0.X.Y. About 25 minutes on two
# cores the first time (mostly Kubernetes; oras alone under a minute), then nothing.
#
#   hack/k8s-build.sh            build what is missing
#   hack/k8s-build.sh PART...    only these parts (kubernetes, etcd, containerd, runc, cni, helm,
#                                oras): hack/demo.sh needs runc alone, hack/registry.sh oras
#   hack/k8s-build.sh --print    print the cache directories (sourced by cluster-env.sh)
set -euo pipefail

K8S_VERSION=${K8S_VERSION:-v1.37.2}
ETCD_VERSION=${ETCD_VERSION:-v3.6.16}
CONTAINERD_VERSION=${CONTAINERD_VERSION:-v2.2.9}
RUNC_VERSION=${RUNC_VERSION:-v1.5.3}
CNI_VERSION=${CNI_VERSION:-v1.10.0}
HELM_VERSION=${HELM_VERSION:-v4.3.2}
ORAS_VERSION=${ORAS_VERSION:-v1.3.6}
ROOT=${STACK_CACHE:-/var/cache/seccomp-operator}
# A minor such as 1.34 or v1.34.x means its newest patch the module proxy serves (looked up
# once, then remembered in $ROOT).
K8S_VERSION=v${K8S_VERSION#v}
if [[ "$K8S_VERSION" =~ ^v1\.([0-9]+)(\.x)?$ ]]; then
  minor=${BASH_REMATCH[1]}
  pin=$ROOT/k8s-1.$minor.x
  if [ ! -s "$pin" ]; then
    newest=$(GOTOOLCHAIN=local go list -m -versions k8s.io/kubernetes 2>/dev/null | tr ' ' '\n' \
      | grep -E "^v1\.$minor\.[0-9]+$" | sort -t. -k3 -n | tail -1)
    [ -n "$newest" ] || { echo "hack/k8s-build.sh: the module proxy serves no k8s.io/kubernetes v1.$minor.x" >&2; exit 1; }
    mkdir -p "$ROOT" && echo "$newest" > "$pin"
  fi
  K8S_VERSION=$(cat "$pin")
fi

K8S_DIR=$ROOT/k8s-$K8S_VERSION
ETCD_DIR=$ROOT/etcd-$ETCD_VERSION
CONTAINERD_DIR=$ROOT/containerd-$CONTAINERD_VERSION
RUNC_DIR=$ROOT/runc-$RUNC_VERSION
CNI_DIR=$ROOT/cni-$CNI_VERSION
HELM_DIR=$ROOT/helm-$HELM_VERSION
ORAS_DIR=$ROOT/oras-$ORAS_VERSION
K8S_COMPONENTS="kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl"

if [ "${1:-}" = --print ]; then
  printf 'K8S_BIN=%s/bin\nETCD_BIN=%s/bin\nCONTAINERD_BIN=%s/bin\nRUNC_BIN=%s/bin\nCNI_BIN=%s/bin\nHELM_BIN=%s/bin\nORAS_BIN=%s/bin\n' \
    "$K8S_DIR" "$ETCD_DIR" "$CONTAINERD_DIR" "$RUNC_DIR" "$CNI_DIR" "$HELM_DIR" "$ORAS_DIR"
  exit 0
fi

have() { local dir=$1; shift; for c in "$@"; do [ -x "$dir/bin/$c" ] || return 1; done; }
need_k8s=true need_etcd=true need_containerd=true need_runc=true need_cni=true need_helm=true need_oras=true
have "$K8S_DIR" $K8S_COMPONENTS && need_k8s=false
have "$ETCD_DIR" etcd && need_etcd=false
have "$CONTAINERD_DIR" containerd containerd-shim-runc-v2 ctr && need_containerd=false
have "$RUNC_DIR" runc && need_runc=false
have "$CNI_DIR" bridge host-local loopback portmap && need_cni=false
have "$HELM_DIR" helm && need_helm=false
have "$ORAS_DIR" oras && need_oras=false
if [ $# -gt 0 ]; then
  want=" $* "
  for part in $want; do
    case "$part" in kubernetes|etcd|containerd|runc|cni|helm|oras) ;; *)
      echo "hack/k8s-build.sh: unknown part '$part' (kubernetes, etcd, containerd, runc, cni, helm, oras)" >&2; exit 2 ;;
    esac
  done
  [[ "$want" == *" kubernetes "* ]] || need_k8s=false
  [[ "$want" == *" etcd "* ]] || need_etcd=false
  [[ "$want" == *" containerd "* ]] || need_containerd=false
  [[ "$want" == *" runc "* ]] || need_runc=false
  [[ "$want" == *" cni "* ]] || need_cni=false
  [[ "$want" == *" helm "* ]] || need_helm=false
  [[ "$want" == *" oras "* ]] || need_oras=false
fi
if ! $need_k8s && ! $need_etcd && ! $need_containerd && ! $need_runc && ! $need_cni && ! $need_helm && ! $need_oras; then
  exit 0
fi
[ "$(id -u)" -eq 0 ] || { echo "hack/k8s-build.sh needs root (it writes $ROOT)" >&2; exit 1; }
command -v go >/dev/null || { echo "hack/k8s-build.sh: Go is not installed (the test bed is built with it)" >&2; exit 1; }
REPO=$(cd "$(dirname "$0")/.." && pwd)
"$REPO/hack/deps.sh" build   # libseccomp-dev and pkg-config for runc

export GOTOOLCHAIN=local GOFLAGS=-mod=mod GOPROXY=${GOPROXY:-https://proxy.golang.org}
mkdir -p "$ROOT"
started=$(date +%s)
step() { echo "hack/k8s-build.sh: $*"; }
fail() { echo "hack/k8s-build.sh: $1 failed; the last lines of $2:" >&2; tail -25 "$2" >&2; exit 1; }

# A module whose go.mod replaces its siblings with local paths cannot be `go install`ed: a small
# wrapper module requires it (and, for Kubernetes, maps each staging module to its published
# version) and builds its commands from there.
wrapper() { # dir, go directive of the wrapped module, godebug line or ""
  rm -rf "$1"; mkdir -p "$1"
  { echo "module seccomp-operator.dev/test-bed"; echo; echo "go $2"; [ -z "$3" ] || echo "$3"; } > "$1/go.mod"
}

if $need_k8s; then
  step "Kubernetes $K8S_VERSION ($K8S_COMPONENTS), once: about 20 minutes"
  log=$K8S_DIR/build.log; mkdir -p "$K8S_DIR"; : > "$log"
  modinfo=$(go mod download -json "k8s.io/kubernetes@$K8S_VERSION") || { echo "hack/k8s-build.sh: the module proxy does not serve k8s.io/kubernetes@$K8S_VERSION" >&2; exit 1; }
  gomod=$(printf '%s' "$modinfo" | python3 -c 'import json,sys; print(json.load(sys.stdin)["GoMod"])')
  staging=v0.${K8S_VERSION#v1.}
  w=$K8S_DIR/wrapper
  wrapper "$w" "$(awk '$1=="go"{print $2; exit}' "$gomod")" "$(grep -m1 '^godebug ' "$gomod" || true)"
  {
    echo "require k8s.io/kubernetes $K8S_VERSION"
    echo "replace ("
    grep -Eo '^\s*k8s\.io/[a-z0-9-]+ => \./staging/' "$gomod" | awk -v v="$staging" '{print "\t" $1 " => " $1 " " v}'
    echo ")"
  } >> "$w/go.mod"
  pkgs=""; for c in $K8S_COMPONENTS; do pkgs="$pkgs k8s.io/kubernetes/cmd/$c"; done
  major=${K8S_VERSION#v}; major=${major%%.*}; minor=${K8S_VERSION#v*.}; minor=${minor%%.*}
  ld="-s -w"
  for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ld="$ld -X $p.gitVersion=$K8S_VERSION -X $p.gitMajor=$major -X $p.gitMinor=$minor -X $p.gitTreeState=clean -X $p.buildDate=1970-01-01T00:00:00Z"
  done
  # Each at the version asked for: a bare `go get PKG` would upgrade to the newest release.
  (cd "$w" && go get $(for p in $pkgs; do printf '%s@%s ' "$p" "$K8S_VERSION"; done)) >>"$log" 2>&1 \
    || fail "resolving the Kubernetes modules" "$log"
  mkdir -p "$K8S_DIR/bin.tmp"
  (cd "$w" && CGO_ENABLED=0 go build -trimpath -ldflags "$ld" -o "$K8S_DIR/bin.tmp/" $pkgs) >>"$log" 2>&1 || fail "building Kubernetes" "$log"
  rm -rf "$K8S_DIR/bin"; mv "$K8S_DIR/bin.tmp" "$K8S_DIR/bin"
  "$K8S_DIR/bin/kubectl" version --client 2>/dev/null | head -1
fi

if $need_etcd; then
  step "etcd $ETCD_VERSION"
  log=$ETCD_DIR/build.log; mkdir -p "$ETCD_DIR"; : > "$log"
  w=$ETCD_DIR/wrapper
  gomod=$(go mod download -json "go.etcd.io/etcd/server/v3@$ETCD_VERSION" | python3 -c 'import json,sys; print(json.load(sys.stdin)["GoMod"])')
  wrapper "$w" "$(awk '$1=="go"{print $2; exit}' "$gomod")" ""
  echo "require go.etcd.io/etcd/server/v3 $ETCD_VERSION" >> "$w/go.mod"
  mkdir -p "$ETCD_DIR/bin"
  (cd "$w" && go get "go.etcd.io/etcd/server/v3@$ETCD_VERSION" && \
    CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$ETCD_DIR/bin/etcd.tmp" go.etcd.io/etcd/server/v3) >>"$log" 2>&1 || fail "building etcd" "$log"
  mv "$ETCD_DIR/bin/etcd.tmp" "$ETCD_DIR/bin/etcd"
  "$ETCD_DIR/bin/etcd" --version | head -1
fi

if $need_containerd; then
  step "containerd $CONTAINERD_VERSION"
  log=$CONTAINERD_DIR/build.log; mkdir -p "$CONTAINERD_DIR/bin"; : > "$log"
  for c in containerd containerd-shim-runc-v2 ctr; do
    GOBIN=$CONTAINERD_DIR/bin CGO_ENABLED=0 go install -trimpath -tags "no_btrfs no_devmapper no_zfs" \
      -ldflags "-s -w -X github.com/containerd/containerd/v2/version.Version=$CONTAINERD_VERSION" \
      "github.com/containerd/containerd/v2/cmd/$c@$CONTAINERD_VERSION" >>"$log" 2>&1 || fail "building $c" "$log"
  done
  "$CONTAINERD_DIR/bin/containerd" --version
fi

if $need_runc; then
  step "runc $RUNC_VERSION (cgo, libseccomp)"
  log=$RUNC_DIR/build.log; mkdir -p "$RUNC_DIR/bin"; : > "$log"
  GOBIN=$RUNC_DIR/bin CGO_ENABLED=1 go install -trimpath -tags seccomp \
    -ldflags "-X main.version=${RUNC_VERSION#v}" \
    "github.com/opencontainers/runc@$RUNC_VERSION" >>"$log" 2>&1 || fail "building runc" "$log"
  "$RUNC_DIR/bin/runc" --version | head -3
fi

if $need_cni; then
  step "CNI plugins $CNI_VERSION"
  log=$CNI_DIR/build.log; mkdir -p "$CNI_DIR/bin"; : > "$log"
  for p in main/bridge ipam/host-local main/loopback meta/portmap; do
    GOBIN=$CNI_DIR/bin CGO_ENABLED=0 go install -trimpath -ldflags "-s -w" \
      "github.com/containernetworking/plugins/plugins/$p@$CNI_VERSION" >>"$log" 2>&1 || fail "building the CNI plugin $p" "$log"
  done
fi
if $need_helm; then
  step "helm $HELM_VERSION"
  log=$HELM_DIR/build.log; mkdir -p "$HELM_DIR/bin"; : > "$log"
  GOBIN=$HELM_DIR/bin CGO_ENABLED=0 go install -trimpath -ldflags "-s -w" \
    "helm.sh/helm/v4/cmd/helm@$HELM_VERSION" >>"$log" 2>&1 || fail "building helm" "$log"
fi
if $need_oras; then
  step "oras $ORAS_VERSION"
  log=$ORAS_DIR/build.log; mkdir -p "$ORAS_DIR/bin"; : > "$log"
  GOBIN=$ORAS_DIR/bin CGO_ENABLED=0 go install -trimpath -ldflags "-s -w -X oras.land/oras/internal/version.GitTreeState=clean" \
    "oras.land/oras/cmd/oras@$ORAS_VERSION" >>"$log" 2>&1 || fail "building oras" "$log"
  "$ORAS_DIR/bin/oras" version | head -1
fi
step "done in $(( $(date +%s) - started )) s"
