#!/usr/bin/env bash
# The images pods use on the local cluster, built without a registry: a static pause, and
# busybox from Debian's busybox-static as localhost/busybox:1. Imported into containerd.
set -euo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
. "$REPO/hack/lib/cluster-env.sh"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
ctr_() { ctr --address "$CONTAINERD_SOCK" -n k8s.io "$@"; }
have() { ctr_ images ls -q 2>/dev/null | grep -qx "$1"; }

if ! have localhost/pause:1; then
  mkdir -p "$work/pause"
  cat > "$work/pause.c" <<'C'
#include <signal.h>
#include <unistd.h>
static void bye(int s) { (void)s; _exit(0); }
int main(void) { signal(SIGINT, bye); signal(SIGTERM, bye); for (;;) pause(); }
C
  gcc -static -O2 -o "$work/pause/pause" "$work/pause.c"
  python3 "$REPO/hack/lib/oci-image.py" --rootfs "$work/pause" --name localhost/pause:1 --entrypoint '["/pause"]' --out "$work/pause.tar"
  ctr_ images import "$work/pause.tar" >/dev/null
fi
if ! have localhost/busybox:1; then
  mkdir -p "$work/bb/bin" "$work/bb/tmp" "$work/bb/etc"
  cp /bin/busybox "$work/bb/bin/busybox"
  for a in $("$work/bb/bin/busybox" --list); do [ "$a" = busybox ] || ln -sf busybox "$work/bb/bin/$a"; done
  chmod 1777 "$work/bb/tmp"
  python3 "$REPO/hack/lib/oci-image.py" --rootfs "$work/bb" --name localhost/busybox:1 --cmd '["sh"]' --out "$work/bb.tar"
  ctr_ images import "$work/bb.tar" >/dev/null
fi
ctr_ images ls -q | grep '^localhost/' | sed 's/^/image: /'
