#!/usr/bin/env bash
# Installs the Debian packages seccomp-operator needs, idempotently. Sourced or run:
#   hack/deps.sh build    clang, libbpf headers, libseccomp (to build)
#   hack/deps.sh test     build + crun, busybox-static, git, redis-server (kernel and
#                         runtime tests; git and redis are real programs recorded there; runc
#                         is the cluster's own, built by hack/k8s-build.sh), docker-registry,
#                         apache2-utils, openssl, curl (hack/registry.sh's OCI registries)
#   hack/deps.sh bench    test + bpftrace, strace, time (benchmarks)
# Several groups may be given. Only missing packages are installed; apt-get update runs once,
# only when something is missing.
set -euo pipefail

want=()
for group in "${@:-build}"; do
  case "$group" in
    build) want+=(clang libbpf-dev libseccomp-dev pkg-config) ;;
    test)  want+=(clang libbpf-dev libseccomp-dev pkg-config crun busybox-static git redis-server
                  docker-registry apache2-utils openssl curl ca-certificates) ;;
    bench) want+=(clang libbpf-dev libseccomp-dev pkg-config runc busybox-static bpftrace bpftool strace time gcc) ;;
    *) echo "hack/deps.sh: unknown group '$group' (build, test, bench)" >&2; exit 2 ;;
  esac
done

missing=()
for p in "${want[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
# de-duplicate
mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u | sed '/^$/d')

if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "hack/deps.sh: missing packages: ${missing[*]} (run as root, or install them)" >&2
    exit 1
  fi
  echo "hack/deps.sh: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# bpffs (the recorder's pinned maps) and tracefs (tracepoints for bpftrace), when missing.
if [ "$(id -u)" -eq 0 ]; then
  mountpoint -q /sys/fs/bpf 2>/dev/null || mount -t bpf bpf /sys/fs/bpf 2>/dev/null || true
  mountpoint -q /sys/kernel/tracing 2>/dev/null || mount -t tracefs nodev /sys/kernel/tracing 2>/dev/null || true
fi
