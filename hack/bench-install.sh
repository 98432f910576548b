#!/usr/bin/env bash
# Installer benchmark: 1000 distinct profiles -> seconds until every file is on disk, the
# installer's peak RSS, then a no-change resync and a one-profile change. Uses the agent's
# installer through `seccompctl install` (the same code the DaemonSet runs, without the API
# server). Prints figures; asserts nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
hack/deps.sh bench
N=${N:-1000}
cargo build --release --quiet -p seccompctl --bin seccompctl
ctl=$(realpath "${CARGO_TARGET_DIR:-target}")/release/seccompctl
work=$(mktemp -d /tmp/bench-install.XXXXXX)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/profiles"
python3 - "$work/profiles" "$N" <<'PY'
import json, sys, random
out, n = sys.argv[1], int(sys.argv[2])
pool = ["read", "write", "openat", "close", "mmap", "munmap", "brk", "futex", "clone", "execve",
        "exit_group", "getpid", "getppid", "fstat", "newfstatat", "lseek", "ioctl", "pread64",
        "pwrite64", "readv", "writev", "access", "pipe2", "select", "sched_yield", "mremap",
        "madvise", "dup", "dup2", "nanosleep", "socket", "connect", "accept4", "sendto",
        "recvfrom", "bind", "listen", "epoll_wait", "epoll_ctl", "epoll_create1", "getrandom"]
rnd = random.Random(1)
for i in range(n):
    names = rnd.sample(pool, 25)
    doc = {"apiVersion": "seccomp-operator.dev/v1alpha1", "kind": "SeccompProfile",
           "metadata": {"name": f"p{i:04d}", "namespace": f"ns{i % 20}"},
           "spec": {"defaultAction": "SCMP_ACT_ERRNO",
                    "syscalls": [{"names": names, "action": "SCMP_ACT_ALLOW"},
                                 {"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13}]}}
    json.dump(doc, open(f"{out}/p{i:04d}.json", "w"))
PY
measure() { # label, then the command; prints seconds and peak RSS
  local label=$1; shift
  local t0 t1 rss
  t0=$(date +%s.%N)
  rss=$( { /usr/bin/time -f '%M' "$@" >/dev/null; } 2>&1 | tail -1)
  t1=$(date +%s.%N)
  printf '%-44s %8.3f s   peak RSS %6.1f MiB\n' "$label" "$(echo "$t1 - $t0" | bc -l)" "$(echo "$rss / 1024" | bc -l)"
}
command -v bc >/dev/null || { apt-get install -y -qq bc >/dev/null; }
echo "installer benchmark: $N profiles, 20 namespaces ($(nproc) CPUs, $(uname -r))"
measure "first install of $N profiles" "$ctl" install --kubelet-root "$work/kubelet" "$work"/profiles/*.json
count=$(find "$work/kubelet/seccomp/operator" -name '*.json' | wc -l)
echo "files on disk: $count"
measure "resync, nothing changed (0 writes)" "$ctl" install --kubelet-root "$work/kubelet" "$work"/profiles/*.json
sed -i 's/"errnoRet": 13/"errnoRet": 14/' "$work/profiles/p0007.json"
measure "resync, one profile changed" "$ctl" install --kubelet-root "$work/kubelet" "$work"/profiles/*.json
