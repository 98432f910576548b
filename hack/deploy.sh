#!/usr/bin/env bash
# Builds the project's images without a registry or a container engine (OCI layout tarballs of
# the release binaries and the shared libraries they need, imported with ctr), applies
# config/local (CRDs, RBAC, operator, node agent, webhooks) and waits until everything is ready.
# Needs a cluster from hack/cluster-up.sh.
#
# The scheduling gate's admission part depends on the server's version: config/gate-policy
# (MutatingAdmissionPolicy) on Kubernetes 1.36 and later, config/gate-webhook (the operator's
# mutating webhook) before. GATE_ADMISSION=policy|webhook picks one (and removes the other),
# e.g. to try the pre-1.36 path on a newer cluster.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
. hack/lib/cluster-env.sh
. hack/lib/cluster-node.sh
[ "$(id -u)" -eq 0 ] || { echo "hack/deploy.sh needs root (ctr)" >&2; exit 1; }
"$KUBECTL" get --raw /readyz >/dev/null 2>&1 || { echo "no cluster: run hack/cluster-up.sh first" >&2; exit 1; }

echo "== building release binaries"
cargo build --release --quiet -p operator --bin operator -p node-agent --bin node-agent -p seccompctl --bin seccompctl
# Where cargo put them: a CARGO_TARGET_DIR in the environment moves them (an image of stale
# binaries from ./target would otherwise deploy silently).
bin=${CARGO_TARGET_DIR:-target}/release

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
image() { # containerfile, image name, binaries...
  local cf=$1 name=$2; shift 2
  local root=$work/$(basename "$(dirname "$cf")")
  mkdir -p "$root/usr/local/bin" "$root/tmp" "$root/etc"
  chmod 1777 "$root/tmp"
  echo "root:x:0:0:root:/:/bin/sh" > "$root/etc/passwd"
  echo "nonroot:x:65532:65532:nonroot:/:/bin/sh" >> "$root/etc/passwd"
  for b in "$@"; do
    install -m 0755 "$bin/$b" "$root/usr/local/bin/$b"
    # the shared libraries the binary loads (libseccomp, libc, libgcc_s, the loader)
    for lib in $(ldd "$bin/$b" | grep -oE '/[^ ]+\.so[^ ]*'); do
      mkdir -p "$root$(dirname "$lib")"
      cp -L "$lib" "$root$lib"
    done
  done
  # Keep in step with the Containerfile: its runtime packages must be what ldd found.
  grep -q 'runtime-packages: libseccomp2' "$cf" || { echo "$cf: runtime packages changed; update hack/deploy.sh" >&2; exit 1; }
  # The public CAs, where the Containerfile installs them (the operator fetches oci:// bases).
  if grep -q 'runtime-packages: .*ca-certificates' "$cf"; then
    mkdir -p "$root/etc/ssl/certs"
    cp -L /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/ca-certificates.crt"
  fi
  ls "$root"/usr/lib/*/libseccomp.so.2 >/dev/null 2>&1 || ls "$root"/lib/*/libseccomp.so.2 >/dev/null || { echo "libseccomp missing from $name" >&2; exit 1; }
  local user entry
  user=$(grep -E '^USER ' "$cf" | tail -1 | awk '{print $2}')
  entry=$(grep -E '^ENTRYPOINT ' "$cf" | tail -1 | sed -E 's/^ENTRYPOINT //')
  python3 hack/lib/oci-image.py --rootfs "$root" --name "$name" --entrypoint "$entry" --user "$user" --out "$work/img.tar"
  # Every node's containerd: node 1's, and each extra node's own.
  local sock
  for sock in "$CONTAINERD_SOCK" $(for n in $(node_names); do node_sock "$n"; done); do
    [ -S "$sock" ] || continue
    ctr --address "$sock" -n k8s.io images import "$work/img.tar" >/dev/null
  done
  echo "image: $name ($(du -sh "$work/img.tar" | cut -f1)), on $((1 + $(node_names | wc -l))) node(s)"
}
echo "== images"
image operator/Containerfile localhost/seccomp-operator/operator:dev operator
image node-agent/Containerfile localhost/seccomp-operator/node-agent:dev node-agent seccompctl

echo "== applying config/local"
"$KUBECTL" kustomize config/local > "$work/all.yaml"
# CRDs first, so the custom resources in the same apply are known.
for f in crds/*.yaml; do [ "$(basename "$f")" = kustomization.yaml ] || "$KUBECTL" apply -f "$f" >/dev/null; done
"$KUBECTL" wait --for=condition=Established crd --all --timeout=60s >/dev/null
"$KUBECTL" apply -f "$work/all.yaml" >/dev/null
minor=$("$KUBECTL" version -o json | python3 -c 'import json,sys,re; print(re.sub(r"[^0-9].*", "", json.load(sys.stdin)["serverVersion"]["minor"]))')
gate_admission=${GATE_ADMISSION:-$([ "$minor" -ge 36 ] && echo policy || echo webhook)}
case "$gate_admission" in
  policy)
    "$KUBECTL" delete mutatingwebhookconfiguration seccomp-operator-profile-gate --ignore-not-found >/dev/null
    "$KUBECTL" apply -k config/gate-policy >/dev/null ;;
  webhook)
    "$KUBECTL" delete mutatingadmissionpolicybinding,mutatingadmissionpolicy seccomp-operator-profile-gate --ignore-not-found >/dev/null 2>&1 || true
    "$KUBECTL" apply -k config/gate-webhook >/dev/null ;;
  *) echo "GATE_ADMISSION must be policy or webhook, not '$gate_admission'" >&2; exit 2 ;;
esac
echo "scheduling gate admission: $gate_admission (Kubernetes 1.$minor)"
# The runtime default recorded profiles are compared with: Docker's, from the shared corpus
# where it is beside the repository (an admin provides their runtime's; see the README).
reference=../shared/corpus/moby-default.json
if [ -f "$reference" ]; then
  "$KUBECTL" -n seccomp-operator create configmap seccomp-operator-runtime-default \
    --from-file=profile.json="$reference" --dry-run=client -o yaml | "$KUBECTL" apply -f - >/dev/null
fi
# New images under the same tag: restart so pods run what was just built.
"$KUBECTL" -n seccomp-operator rollout restart daemonset/seccomp-node-agent daemonset/seccomp-node-recorder deployment/seccomp-operator >/dev/null
"$KUBECTL" -n seccomp-operator rollout status daemonset/seccomp-node-agent --timeout=180s
"$KUBECTL" -n seccomp-operator rollout status daemonset/seccomp-node-recorder --timeout=180s
"$KUBECTL" -n seccomp-operator rollout status deployment/seccomp-operator --timeout=180s
# The webhooks are usable once the operator injected its CA.
for config in seccomp-operator-gate seccomp-operator-isolation seccomp-operator-pod-policy seccomp-operator-profiles seccomp-operator-agents; do
  for _ in $(seq 150); do
    ca=$("$KUBECTL" get validatingwebhookconfiguration "$config" -o jsonpath='{.webhooks[0].clientConfig.caBundle}' 2>/dev/null || true)
    [ -n "$ca" ] && break
    sleep 0.2
  done
  [ -n "$ca" ] || { echo "the operator did not inject its CA bundle into $config" >&2; exit 1; }
done
echo "deployed: operator and node agent ready"
