#!/usr/bin/env bash
# Scale benchmark on the real local cluster (brought up and deployed if needed):
#
#   hack/bench-scale.sh [--nodes N] [--profiles P]      (defaults: 100 nodes, 10000 profiles)
#
# Node 1 is the real node. N-1 simulated nodes (seccomp-sim-nodes, the bench/sim-nodes crate:
# registered Nodes kept Ready, each running the agent's install loop, status writer and
# heartbeat with its kubelet root on a tmpfs) join it. Then P SeccompProfiles are created over 50 namespaces and it
# measures: seconds from the last create until every file is on every node and until every
# profile is Installed N/N, the p99 of create -> Installed N/N, peak RSS of the operator and
# of the real node's agent, the largest SeccompNodeStatus, and the project's API writes per
# second in the steady state (SeccompProfile/SeccompNodeStatus/... writes from the API
# server's metrics, plus the operator namespace's Lease writes seen by a watch).
#
# Prints figures and a last line:
#   scale: nodes=N profiles=P all_files_s=... all_installed_s=... p99_apply_to_installed_ms=...
#          operator_rss_mib=... agent_rss_mib=... node_status_max_kib=... apiserver_writes_per_s=...
# Asserts nothing. Cleans up after itself: the benchmark's namespaces, the simulated Nodes (their
# reports and Leases go with them), the simulator process (by PID), the tmpfs, and the agent
# DaemonSets' node affinity that keeps their pods off simulated nodes.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
. hack/lib/cluster-env.sh

nodes=100
profiles=10000
while [ $# -gt 0 ]; do
  case "$1" in
    --nodes) nodes=${2:?--nodes takes a number}; shift 2 ;;
    --profiles) profiles=${2:?--profiles takes a number}; shift 2 ;;
    *) echo "usage: hack/bench-scale.sh [--nodes N] [--profiles P]" >&2; exit 2 ;;
  esac
done
[[ "$nodes" =~ ^[1-9][0-9]{0,3}$ ]] || { echo "--nodes must be 1..9999, not '$nodes'" >&2; exit 2; }
[[ "$profiles" =~ ^[1-9][0-9]{0,5}$ ]] || { echo "--profiles must be 1..999999, not '$profiles'" >&2; exit 2; }
[ "$(id -u)" -eq 0 ] || { echo "hack/bench-scale.sh needs root (tmpfs, the node's files)" >&2; exit 1; }

"$KUBECTL" get --raw /readyz >/dev/null 2>&1 || hack/cluster-up.sh
"$KUBECTL" -n seccomp-operator get daemonset seccomp-node-agent >/dev/null 2>&1 || hack/deploy.sh
cargo build --release --quiet -p seccomp-sim-nodes --bin seccomp-sim-nodes
SIM=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/release/seccomp-sim-nodes

WORK=$(mktemp -d /run/seccomp-bench-scale.XXXXXX)
mkdir -p "$WORK/roots"
mount -t tmpfs -o size=4g,mode=0700 seccomp-bench-scale "$WORK/roots"
SIM_PID=
AFFINITY='{"nodeAffinity":{"requiredDuringSchedulingIgnoredDuringExecution":{"nodeSelectorTerms":[{"matchExpressions":[{"key":"seccomp-operator.dev/simulated","operator":"DoesNotExist"}]}]}}}'
DAEMONSETS="seccomp-node-agent seccomp-node-recorder"

cleanup() {
  set +e
  echo "bench-scale: cleaning up" >&2
  "$KUBECTL" delete namespace -l seccomp-operator.dev/bench=scale --wait=true --timeout=600s >/dev/null
  if [ -n "$SIM_PID" ]; then kill "$SIM_PID" 2>/dev/null; wait "$SIM_PID" 2>/dev/null; fi
  "$KUBECTL" delete node -l seccomp-operator.dev/simulated=true --wait=true --timeout=300s >/dev/null
  "$KUBECTL" -n kube-node-lease delete lease -l seccomp-operator.dev/simulated=true >/dev/null 2>&1
  for ds in $DAEMONSETS; do
    "$KUBECTL" -n seccomp-operator patch daemonset "$ds" --type=json \
      -p '[{"op":"remove","path":"/spec/template/spec/affinity"}]' >/dev/null 2>&1
  done
  umount "$WORK/roots" 2>/dev/null
  rm -rf "$WORK"
}
trap cleanup EXIT

# Agent pods stay on real nodes (the simulated ones run the agent's code in the simulator).
for ds in $DAEMONSETS; do
  "$KUBECTL" -n seccomp-operator patch daemonset "$ds" --type=merge \
    -p "{\"spec\":{\"template\":{\"spec\":{\"affinity\":$AFFINITY}}}}" >/dev/null
  "$KUBECTL" -n seccomp-operator rollout status daemonset "$ds" --timeout=300s >/dev/null
done

# A fresh operator: its peak RSS is this run's, not an earlier one's.
"$KUBECTL" -n seccomp-operator rollout restart deployment seccomp-operator >/dev/null
"$KUBECTL" -n seccomp-operator rollout status deployment seccomp-operator --timeout=300s >/dev/null

sim_nodes=$((nodes - 1))
if [ "$sim_nodes" -gt 0 ]; then
  KUBECONFIG=$KUBECONFIG_PATH "$SIM" --nodes "$sim_nodes" --root "$WORK/roots" \
    --progress "$WORK/progress.json" 2>"$WORK/sim.log" &
  SIM_PID=$!
else
  echo '{"nodes":0,"files_min":1e12,"rss_peak_kib":0}' >"$WORK/progress.json"
fi

python3 - "$KUBECONFIG_PATH" "$nodes" "$profiles" "$WORK/progress.json" "$SIM_PID" <<'PY'
import json, os, re, sys, threading, time, http.client
sys.path.insert(0, "hack/lib")
from bench import api, peak_rss_mib as rss, start_parallel

kubeconfig, nodes, n, progress_file, sim_pid = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
host, port, ctx = api(kubeconfig)
local = threading.local()

def conn():
    return http.client.HTTPSConnection(host, port, context=ctx, timeout=120)

def req(method, path, body=None, raw=False, ok=(200, 201)):
    for attempt in range(5):
        try:
            if not hasattr(local, "c"):
                local.c = conn()
            local.c.request(method, path, body=json.dumps(body) if body is not None else None,
                            headers={"Content-Type": "application/json"})
            r = local.c.getresponse()
            data = r.read()
            break
        except (OSError, http.client.HTTPException):
            del local.c
            time.sleep(0.5)
    else:
        raise RuntimeError(f"{method} {path}: connection failed")
    if r.status not in ok:
        raise RuntimeError(f"{method} {path}: {r.status} {data[:300]}")
    return data.decode() if raw else (json.loads(data) if data else None)

def say(msg):
    print(f"bench-scale: {msg}", file=sys.stderr, flush=True)

GROUP = "/apis/seccomp-operator.dev/v1alpha1"
NAMESPACES = [f"bench-scale-{i:02d}" for i in range(50)]
for ns in NAMESPACES:
    req("POST", "/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace",
        "metadata": {"name": ns, "labels": {"seccomp-operator.dev/bench": "scale"}}}, ok=(201, 409))

pool = ["read", "write", "openat", "close", "mmap", "munmap", "brk", "futex", "clone", "execve", "exit_group",
        "getpid", "fstat", "newfstatat", "lseek", "ioctl", "pread64", "readv", "writev", "access", "pipe2",
        "nanosleep", "socket", "connect", "accept4", "sendto", "recvfrom", "bind", "listen", "epoll_wait"]
def profile(name, i):
    names = sorted({pool[(i * 7 + k) % len(pool)] for k in range(20)})
    return {"apiVersion": "seccomp-operator.dev/v1alpha1", "kind": "SeccompProfile",
            "metadata": {"name": name, "labels": {"seccomp-operator.dev/bench": "scale"}},
            "spec": {"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
                {"names": names, "action": "SCMP_ACT_ALLOW"},
                {"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": (i % 100) + 2}]}}

def installed_everywhere(p):
    c = (p.get("status") or {}).get("nodes") or {}
    return c.get("total") == nodes and c.get("installed") == nodes

def progress():
    try:
        return json.load(open(progress_file))
    except (OSError, ValueError):
        return {"files_min": 0, "rss_peak_kib": 0}

# 1. Every node counts: a probe profile is Installed on all N.
say(f"waiting for {nodes} nodes to count (a probe profile Installed {nodes}/{nodes})")
probe = f"{GROUP}/namespaces/{NAMESPACES[0]}/seccompprofiles"
req("POST", probe, profile("probe", 0), ok=(201, 409))
t0 = time.time()
while not installed_everywhere(req("GET", f"{probe}/probe")):
    if time.time() - t0 > 600:
        raise SystemExit(f"bench-scale: the probe is not Installed on {nodes} nodes after 600 s: "
                         f"{json.dumps(req('GET', f'{probe}/probe').get('status'))[:600]}")
    time.sleep(1)
say(f"all {nodes} nodes count ({time.time() - t0:.0f} s)")

# 2. Watch every profile from now on: when is each Installed N/N?
start_rv = req("GET", f"{GROUP}/seccompprofiles?limit=1")["metadata"]["resourceVersion"]
done_at, applied_at, lock = {}, {}, threading.Lock()
stop = threading.Event()
def watch():
    rv = start_rv
    while not stop.is_set():
        c = conn()
        try:
            c.request("GET", f"{GROUP}/seccompprofiles?watch=1&allowWatchBookmarks=true&timeoutSeconds=60"
                             f"&labelSelector=seccomp-operator.dev%2Fbench%3Dscale&resourceVersion={rv}")
            r = c.getresponse()
            for line in r:
                ev = json.loads(line)
                obj = ev["object"]
                rv = obj["metadata"].get("resourceVersion", rv)
                if ev["type"] in ("ADDED", "MODIFIED") and installed_everywhere(obj):
                    key = (obj["metadata"]["namespace"], obj["metadata"]["name"])
                    with lock:
                        done_at.setdefault(key, time.time())
                if stop.is_set():
                    break
        except (OSError, http.client.HTTPException, ValueError):
            time.sleep(0.2)
        finally:
            c.close()
threading.Thread(target=watch, daemon=True).start()

# 3. Create P profiles over 50 namespaces with 8 client threads.
def create(i):
    ns, name = NAMESPACES[i % 50], f"p{i:05d}"
    req("POST", f"{GROUP}/namespaces/{ns}/seccompprofiles", profile(name, i))
    with lock:
        applied_at[(ns, name)] = time.time()
say(f"creating {n} profiles")
t_start = time.time()
for t in start_parallel(n, create): t.join()
t_last = max(applied_at.values())
say(f"created {n} profiles in {t_last - t_start:.1f} s")

# 4. Every file on every node; every profile Installed N/N.
real_dir = "/var/lib/kubelet/seccomp/operator"
def real_files():
    total = 0
    for ns in NAMESPACES:
        try:
            total += sum(1 for e in os.scandir(f"{real_dir}/{ns}") if e.name.endswith(".json"))
        except OSError:
            pass
    return total
files_s = installed_s = None
while files_s is None or installed_s is None:
    now = time.time()
    if files_s is None and real_files() >= n + 1 and progress()["files_min"] >= n + 1:
        files_s = now - t_last
    with lock:
        if installed_s is None and sum(1 for k in applied_at if k in done_at) >= n:
            installed_s = max(done_at[k] for k in applied_at) - t_last
    if now - t_last > 1800:
        break
    time.sleep(0.2)
with lock:
    lat = sorted((done_at[k] - applied_at[k]) * 1000 for k in applied_at if k in done_at)
p99 = lat[min(len(lat) - 1, int(0.99 * len(lat)))] if lat else float("nan")
nan = float("nan")
say(f"files everywhere {files_s if files_s is not None else nan:.1f} s, Installed everywhere "
    f"{installed_s if installed_s is not None else nan:.1f} s after the last create; p99 create->Installed {p99:.0f} ms")

# 5. The steady state: after 20 s to settle, the project's writes over 60 s.
def api_writes():
    total = 0
    for line in req("GET", "/metrics", raw=True).splitlines():
        if line.startswith("apiserver_request_total{") and 'group="seccomp-operator.dev"' in line \
                and re.search(r'verb="(POST|PUT|PATCH|APPLY|DELETE|DELETECOLLECTION|CREATE|UPDATE)"', line):
            total += float(line.rsplit(" ", 1)[1])
    return total
def operator_reconciles():
    total = 0
    pods = req("GET", "/api/v1/namespaces/seccomp-operator/pods?labelSelector=app.kubernetes.io%2Fname%3Dseccomp-operator")["items"]
    for p in pods:
        try:
            m = req("GET", f"/api/v1/namespaces/seccomp-operator/pods/{p['metadata']['name']}:8080/proxy/metrics", raw=True)
        except RuntimeError:
            continue
        for line in m.splitlines():
            if "reconciles_total{" in line and 'kind="SeccompProfile"' in line:
                total += float(line.rsplit(" ", 1)[1])
    return total
lease_writes = [0]
def watch_leases(seconds):
    rv = req("GET", "/apis/coordination.k8s.io/v1/namespaces/seccomp-operator/leases?limit=1")["metadata"]["resourceVersion"]
    c = conn()
    c.request("GET", f"/apis/coordination.k8s.io/v1/namespaces/seccomp-operator/leases?watch=1&timeoutSeconds={seconds}&resourceVersion={rv}")
    for line in c.getresponse():
        if json.loads(line)["type"] in ("ADDED", "MODIFIED"):
            lease_writes[0] += 1
time.sleep(20)
window = 60
w0, r0 = api_writes(), operator_reconciles()
lw = threading.Thread(target=watch_leases, args=(window,))
lw.start()
time.sleep(window)
lw.join()
w1, r1 = api_writes(), operator_reconciles()
crd_writes = (w1 - w0) / window
lease_rate = lease_writes[0] / window
writes = crd_writes + lease_rate
stop.set()

# 6. Sizes and memory.
sizes = [len(json.dumps(o)) for o in req("GET", f"{GROUP}/seccompnodestatuses")["items"]]
operator_rss = rss("/operator")
agent_rss = rss("/node-agent", "--record=false")
sim_rss = progress().get("rss_peak_kib", 0) / 1024
fmt = lambda v: "nan" if v is None else f"{v:.1f}"

print(f"\nscale benchmark ({os.cpu_count()} CPUs, {nodes} nodes: 1 real + {nodes - 1} simulated, Kubernetes {req('GET', '/version')['gitVersion']})\n")
print(f"{n} profiles in 50 namespaces created with 8 client threads in {t_last - t_start:.1f} s")
print(f"  every file on every node:       {fmt(files_s):>7} s after the last create   (goal <= 60 s at 100 x 10000)")
print(f"  every profile Installed {nodes}/{nodes}: {fmt(installed_s):>7} s after the last create   (goal <= 90 s)")
print(f"  create -> Installed {nodes}/{nodes}:       p50 {lat[len(lat) // 2] if lat else nan:.0f} ms, p99 {p99:.0f} ms over {len(lat)} profiles")
print(f"peak RSS: operator {operator_rss:.1f} MiB (goal <= 150), real node's agent {agent_rss:.1f} MiB (goal <= 40), "
      f"simulator ({nodes - 1} nodes, one process) {sim_rss:.1f} MiB")
print(f"largest SeccompNodeStatus: {max(sizes) / 1024 if sizes else 0:.1f} KiB over {len(sizes)} objects (goal <= 256 KiB)")
print(f"steady state over {window} s: {crd_writes:.2f} writes/s to the project's resources + {lease_rate:.2f} Lease "
      f"writes/s (heartbeats: {nodes} agents / {10} s = {nodes / 10:.1f}/s expected); "
      f"{(r1 - r0) / window:.2f} SeccompProfile reconciles/s")
print(f"scale: nodes={nodes} profiles={n} all_files_s={fmt(files_s)} all_installed_s={fmt(installed_s)} "
      f"p99_apply_to_installed_ms={p99:.0f} operator_rss_mib={operator_rss:.1f} agent_rss_mib={agent_rss:.1f} "
      f"node_status_max_kib={max(sizes) / 1024 if sizes else 0:.1f} apiserver_writes_per_s={writes:.2f}")
PY
