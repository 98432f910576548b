#!/usr/bin/env bash
# Cluster benchmark on the local cluster (brought up and deployed if needed): apply 1000
# SeccompProfiles at once -> seconds until every file is on disk and until all are Installed;
# apply->file latency p50/p99 over 100 single applies; peak RSS of the node agent and the
# operator; then 200 profiles at the size limit (4096 names each, a tenant's worst case:
# LARGE=N for another count) -> seconds until Installed and peak RSS again. Prints figures;
# asserts nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
. hack/lib/cluster-env.sh
"$KUBECTL" get --raw /readyz >/dev/null 2>&1 || hack/cluster-up.sh
"$KUBECTL" -n seccomp-operator get daemonset seccomp-node-agent >/dev/null 2>&1 || hack/deploy.sh
"$KUBECTL" delete namespace bench --ignore-not-found --wait=true >/dev/null
"$KUBECTL" create namespace bench >/dev/null
python3 - "$KUBECONFIG_PATH" "${N:-1000}" "${SINGLE:-100}" "${LARGE:-200}" <<'PY'
import json, os, statistics, sys, threading, time, http.client
sys.path.insert(0, "hack/lib")
from bench import api, peak_rss_mib as rss, start_parallel

kubeconfig, n, singles, large = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
host, port, ctx = api(kubeconfig)
local = threading.local()

def req(method, path, body=None, ctype="application/json"):
    if not hasattr(local, "c"):
        local.c = http.client.HTTPSConnection(host, int(port), context=ctx)
    local.c.request(method, path, body=json.dumps(body) if body is not None else None, headers={"Content-Type": ctype})
    r = local.c.getresponse()
    data = r.read()
    if r.status >= 300:
        raise RuntimeError(f"{method} {path}: {r.status} {data[:300]}")
    return json.loads(data) if data else None

base = "/apis/seccomp-operator.dev/v1alpha1/namespaces/bench/seccompprofiles"
pool = ["read", "write", "openat", "close", "mmap", "munmap", "brk", "futex", "clone", "execve", "exit_group",
        "getpid", "fstat", "newfstatat", "lseek", "ioctl", "pread64", "readv", "writev", "access", "pipe2",
        "nanosleep", "socket", "connect", "accept4", "sendto", "recvfrom", "bind", "listen", "epoll_wait"]
def profile(name, i):
    names = [pool[(i * 7 + k) % len(pool)] for k in range(20)]
    return {"apiVersion": "seccomp-operator.dev/v1alpha1", "kind": "SeccompProfile", "metadata": {"name": name},
            "spec": {"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": sorted(set(names)), "action": "SCMP_ACT_ALLOW"},
                                                                    {"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": (i % 100) + 2}]}}

d = "/var/lib/kubelet/seccomp/operator/bench"
count_files = lambda: len([f for f in os.listdir(d) if f.endswith(".json")]) if os.path.isdir(d) else 0

# 1. n profiles at once (8 client threads)
t0 = time.time()
threads = start_parallel(n, lambda i: req("POST", base, profile(f"p{i:04d}", i)))
files_done = installed_done = None
while files_done is None or installed_done is None:
    now = time.time() - t0
    if files_done is None and count_files() >= n:
        files_done = now
    if installed_done is None and int(now * 2) != int((now - 0.05) * 2):
        items = req("GET", base)["items"]
        if sum(1 for p in items if (p.get("status") or {}).get("phase") == "Installed") >= n:
            installed_done = time.time() - t0
    if now > 600:
        break
    time.sleep(0.05)
for t in threads: t.join()
created = time.time() - t0

# 2. apply -> file latency, single profiles, one at a time
lat = []
for i in range(singles):
    name = f"single{i:03d}"
    path = f"{d}/{name}.json"
    s = time.time()
    req("POST", base, profile(name, i + 5000))
    while not os.path.exists(path):
        time.sleep(0.002)
        if time.time() - s > 30:
            break
    lat.append((time.time() - s) * 1000)
lat.sort()
p = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))]

print(f"\ncluster benchmark ({os.cpu_count()} CPUs, 1 node, Kubernetes {req('GET', '/version')['gitVersion']})\n")
print(f"{n} profiles created with 8 client threads:      {created:6.2f} s to create")
print(f"  all {n} files on disk:                     {files_done if files_done is not None else float('nan'):6.2f} s   (goal <= 10 s)")
print(f"  all {n} Installed (status):               {installed_done if installed_done is not None else float('nan'):6.2f} s")
print(f"apply -> file latency over {singles} single applies: p50 {p(0.5):6.1f} ms   p99 {p(0.99):6.1f} ms   (goal p99 <= 200 ms)")
print(f"peak RSS: node agent {rss('/node-agent', '--record=false'):5.1f} MiB (goal <= 30 MiB), recorder {rss('/node-agent', '--install=false'):5.1f} MiB, operator {rss('/operator'):5.1f} MiB")

# 3. a tenant's worst case: profiles at the size limit (1024 names per rule, 4096 in all;
# the same name repeated, which the canonical rendering folds into one)
def largest(name):
    return {"apiVersion": "seccomp-operator.dev/v1alpha1", "kind": "SeccompProfile", "metadata": {"name": name},
            "spec": {"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read"] * 1024, "action": "SCMP_ACT_ALLOW"} for _ in range(4)]}}
base_l = "/apis/seccomp-operator.dev/v1alpha1/namespaces/bench/seccompprofiles"
t0 = time.time()
for i in range(large):
    req("POST", base_l, largest(f"large{i:03d}"))
created_l = time.time() - t0
done_l = None
while done_l is None and time.time() - t0 < 600:
    items = req("GET", base_l + "?labelSelector=")["items"]
    if sum(1 for p in items if p["metadata"]["name"].startswith("large") and (p.get("status") or {}).get("phase") == "Installed") >= large:
        done_l = time.time() - t0
    time.sleep(0.5)
size = len(json.dumps(largest("x")))
print(f"{large} profiles at the size limit ({size // 1024} KiB of JSON each): created in {created_l:6.2f} s, all Installed {done_l if done_l is not None else float('nan'):6.2f} s")
print(f"peak RSS after them: node agent {rss('/node-agent', '--record=false'):5.1f} MiB (limit 128 MiB), operator {rss('/operator'):5.1f} MiB (limit 512 MiB)")
PY
"$KUBECTL" delete namespace bench --wait=false >/dev/null
