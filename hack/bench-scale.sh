#!/usr/bin/env bash
# Scale benchmark on the real local cluster (brought up and deployed if needed):
#
#   hack/bench-scale.sh [--nodes N] [--profiles P]      (defaults: 100 nodes, 10000 profiles)
#
# N counts every node: the cluster's real Nodes (R, those without the label
# seccomp-operator.dev/simulated) and N-R simulated ones (seccomp-sim-nodes, the bench/sim-nodes
# crate: registered Nodes kept Ready, each running the agent's install loop, status writer and
# heartbeat with its kubelet root on a tmpfs). Once a probe profile is Installed N/N, it takes the
# API server's write ceiling on the idle cluster (16 threads merge-patching 200 ConfigMaps for
# 15 s). Then the burst: P SeccompProfiles created over 50 namespaces with 8 client threads,
# while, from a fifth of the creates on, 20 single profiles are applied 3 s apart. 30 of the
# burst's profiles and the 20 singles each get a busybox pod on a real node, which the scheduling
# gate holds until the operator lets the profile be used.
#
# It measures: seconds from the last create until every file is on every node and until every
# profile is Installed N/N; the p99 of create -> Installed N/N; the p99 of create -> admissible
# from the operator's seccomp_operator_profile_admissible_seconds histogram (its delta over the
# burst); create -> pod ungated for the 30 sampled burst pods and the 20 singles; the status
# writes per profile over the burst (and, printed only, the finalizer/metadata and Event
# writes); the operator's status writes per second while at least 50 final statuses waited for
# its writers (seccomp_operator_profile_status_writes_waiting{kind="final"}: profiles that wait
# only for their status write), after a restart with every status cleared, against the API
# server's ceiling for that same write (a plain client's 16 threads server-side-applying
# Installed statuses for 60 s while the operator is stopped); peak RSS of the operator and of the real node's
# agent; the largest SeccompNodeStatus; and the project's API writes per second in the steady
# state (SeccompProfile/SeccompNodeStatus/... writes from the API server's metrics, plus the
# operator namespace's Lease writes seen by a watch).
#
# Prints figures and a last line:
#   scale: nodes=N profiles=P all_files_s=... all_installed_s=... p99_apply_to_installed_ms=...
#          operator_rss_mib=... agent_rss_mib=... node_status_max_kib=... apiserver_writes_per_s=...
#          p99_apply_to_admissible_ms=... p99_single_apply_during_burst_ms=...
#          status_writes_per_profile=... operator_writes_per_s=... apiserver_ceiling_writes_per_s=...
#          apiserver_status_ceiling_writes_per_s=...
# ("nan" for a figure that could not be taken; p99_apply_to_admissible_ms=>900000 when the p99
# lies past the histogram's last bound). Asserts nothing. Cleans up after itself: the
# benchmark's namespaces (with their pods and ConfigMaps), the simulated Nodes (their reports
# and Leases go with them), the simulator process (by PID), the tmpfs, and the agent
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
# --nodes counts the real Nodes too (whatever the simulator did not register): count them
# before it starts.
real_nodes=$("$KUBECTL" get nodes -l '!seccomp-operator.dev/simulated' -o name | wc -l)
[ "$real_nodes" -ge 1 ] || { echo "bench-scale: the cluster has no real Node" >&2; exit 1; }
[ "$nodes" -ge "$real_nodes" ] || {
  echo "bench-scale: --nodes $nodes is below the cluster's $real_nodes real nodes (--nodes is the total, real ones included)" >&2
  exit 2
}
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
  # The benchmark stops the operator once (its write rate after a restart): never leave it stopped.
  [ -n "$OP_REPLICAS" ] && "$KUBECTL" -n seccomp-operator scale deployment seccomp-operator --replicas="$OP_REPLICAS" >/dev/null
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
OP_REPLICAS=$("$KUBECTL" -n seccomp-operator get deployment seccomp-operator -o jsonpath='{.spec.replicas}')
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

sim_nodes=$((nodes - real_nodes))
if [ "$sim_nodes" -gt 0 ]; then
  KUBECONFIG=$KUBECONFIG_PATH "$SIM" --nodes "$sim_nodes" --root "$WORK/roots" \
    --progress "$WORK/progress.json" 2>"$WORK/sim.log" &
  SIM_PID=$!
else
  echo '{"nodes":0,"files_min":1e12,"rss_peak_kib":0}' >"$WORK/progress.json"
fi

python3 - "$KUBECONFIG_PATH" "$nodes" "$real_nodes" "$profiles" "$WORK/progress.json" "$SIM_PID" "$AFFINITY" <<'PY'
import json, os, sys, threading, time, http.client
sys.path.insert(0, "hack/lib")
from bench import api, histogram_quantile, parse_metrics, peak_rss_mib as rss, start_parallel

kubeconfig, nodes, real, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
progress_file, sim_pid, affinity = sys.argv[5], sys.argv[6], json.loads(sys.argv[7])
host, port, ctx = api(kubeconfig)
local = threading.local()

def conn():
    return http.client.HTTPSConnection(host, port, context=ctx, timeout=120)

def req(method, path, body=None, raw=False, ok=(200, 201), content_type="application/json"):
    for attempt in range(5):
        try:
            if not hasattr(local, "c"):
                local.c = conn()
            local.c.request(method, path, body=json.dumps(body) if body is not None else None,
                            headers={"Content-Type": content_type})
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

def num(v, digits=0):
    """A figure for the output: "nan" when it could not be taken."""
    return "nan" if v is None or v != v else f"{v:.{digits}f}"

def pct(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))] if xs else None

GROUP = "/apis/seccomp-operator.dev/v1alpha1"
NAMESPACES = [f"bench-scale-{i:02d}" for i in range(50)]
GATE = "seccomp-operator.dev/profile"
ADMISSIBLE = "seccomp_operator_profile_admissible_seconds"
WRITE_VERBS = {"POST", "PUT", "PATCH", "APPLY", "DELETE", "DELETECOLLECTION", "CREATE", "UPDATE"}
SINGLES = 20
total = n + SINGLES
for ns in NAMESPACES:
    req("POST", "/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace",
        "metadata": {"name": ns, "labels": {"seccomp-operator.dev/bench": "scale"}}}, ok=(201, 409))

pool = ["read", "write", "openat", "close", "mmap", "munmap", "brk", "futex", "clone", "execve", "exit_group",
        "getpid", "fstat", "newfstatat", "lseek", "ioctl", "pread64", "readv", "writev", "access", "pipe2",
        "nanosleep", "socket", "connect", "accept4", "sendto", "recvfrom", "bind", "listen", "epoll_wait"]
def profile(name, i, runnable=False):
    # A sampled pod's profile must let busybox run: allow everything but mkdir.
    if runnable:
        spec = {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
            {"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": (i % 100) + 2}]}
    else:
        names = sorted({pool[(i * 7 + k) % len(pool)] for k in range(20)})
        spec = {"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
            {"names": names, "action": "SCMP_ACT_ALLOW"},
            {"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": (i % 100) + 2}]}
    return {"apiVersion": "seccomp-operator.dev/v1alpha1", "kind": "SeccompProfile",
            "metadata": {"name": name, "labels": {"seccomp-operator.dev/bench": "scale"}}, "spec": spec}

def pod(ns, name):
    """A pod using profile ns/name, kept on real nodes (the simulated ones run no pods)."""
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "labels": {"seccomp-operator.dev/bench": "scale-pod"}},
            "spec": {"affinity": affinity, "terminationGracePeriodSeconds": 0,
                     "automountServiceAccountToken": False,
                     "securityContext": {"seccompProfile": {"type": "Localhost",
                                                            "localhostProfile": f"operator/{ns}/{name}.json"}},
                     "containers": [{"name": "c", "image": "localhost/busybox:1", "imagePullPolicy": "IfNotPresent",
                                     "command": ["sleep", "3600"]}]}}

def installed_everywhere(p):
    c = (p.get("status") or {}).get("nodes") or {}
    return c.get("total") == nodes and c.get("installed") == nodes

def gated(p):
    return any(g.get("name") == GATE for g in (p.get("spec") or {}).get("schedulingGates") or [])

def key_of(obj):
    return obj["metadata"]["namespace"], obj["metadata"]["name"]

def progress():
    try:
        return json.load(open(progress_file))
    except (OSError, ValueError):
        return {"files_min": 0, "rss_peak_kib": 0}

# Metrics: the API server's write counters and the operator pods' own.
def api_counters():
    """Write counts from the API server's apiserver_request_total: the project's resources, the
    profiles' status, their finalizer/metadata (not the client's POSTs) and Events (any group)."""
    c = {"project": 0.0, "status": 0.0, "meta": 0.0, "events": 0.0}
    for _, l, v in parse_metrics(req("GET", "/metrics", raw=True), "apiserver_request_total{"):
        if l.get("verb") not in WRITE_VERBS:
            continue
        if l.get("resource") == "events":
            c["events"] += v
        if l.get("group") != "seccomp-operator.dev":
            continue
        c["project"] += v
        if l.get("resource") == "seccompprofiles" and l.get("subresource") == "status":
            c["status"] += v
        elif l.get("resource") == "seccompprofiles" and not l.get("subresource") \
                and l["verb"] in ("PATCH", "PUT", "APPLY"):  # server-side apply counts as APPLY
            c["meta"] += v
    return c

def operator_sums(key):
    """Sums over the operator's pods of their metric samples, by key(name, labels) (None: skip)."""
    sums = {}
    pods = req("GET", "/api/v1/namespaces/seccomp-operator/pods?labelSelector=app.kubernetes.io%2Fname%3Dseccomp-operator")["items"]
    for p in pods:
        try:
            m = req("GET", f"/api/v1/namespaces/seccomp-operator/pods/{p['metadata']['name']}:8080/proxy/metrics", raw=True)
        except RuntimeError:
            continue
        for name, labels, v in parse_metrics(m):
            k = key(name, labels)
            if k is not None:
                sums[k] = sums.get(k, 0.0) + v
    return sums

def operator_reconciles():
    return operator_sums(lambda name, l: "r" if name.endswith("reconciles_total") and l.get("kind") == "SeccompProfile"
                         else None).get("r", 0.0)

def admissible_histogram():
    """The operator's create -> admissible histogram: {upper bound: cumulative count, "count": count}."""
    def key(name, l):
        if name == f"{ADMISSIBLE}_bucket":
            return float(l["le"])
        return "count" if name == f"{ADMISSIBLE}_count" else None
    return operator_sums(key)

def delta(after, before):
    return {k: v - before.get(k, 0.0) for k, v in after.items()}

def admissible_p99_ms(hist):
    buckets = {k: v for k, v in hist.items() if k != "count"}
    q = histogram_quantile(buckets, 0.99)
    if q == float("inf"):
        return f">{max((b for b in buckets if b != q), default=0) * 1000:.0f}"
    return num(None if q is None else q * 1000)

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

# 2. The API server's write ceiling on the idle cluster: what the operator's writes compare with.
CEILING_NS = "bench-scale-ceiling"
def apiserver_ceiling(seconds=15, threads=16, objects=200):
    req("POST", "/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace",
        "metadata": {"name": CEILING_NS, "labels": {"seccomp-operator.dev/bench": "scale"}}}, ok=(201, 409))
    cms = f"/api/v1/namespaces/{CEILING_NS}/configmaps"
    def make(k):
        req("POST", cms, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": f"cm-{k:03d}"}}, ok=(201, 409))
    for t in start_parallel(objects, make): t.join()
    done = [0] * threads
    def patch(t):
        k = t  # thread t writes t, t + threads, ...: every counter value once
        while time.time() < deadline:
            try:
                req("PATCH", f"{cms}/cm-{k % objects:03d}", {"metadata": {"annotations": {"bench": str(k)}}},
                    ok=(200,), content_type="application/merge-patch+json")
                done[t] += 1
            except RuntimeError:
                pass  # refused (429, conflict...): not accepted, not counted
            k += threads
    started = [threading.Thread(target=patch, args=(t,)) for t in range(threads)]
    begin = time.time()
    deadline = begin + seconds
    for t in started: t.start()
    for t in started: t.join()
    return sum(done) / (time.time() - begin)
say("measuring the API server's write ceiling (16 threads merge-patching 200 ConfigMaps for 15 s)")
ceiling = apiserver_ceiling()
say(f"API server write ceiling {ceiling:.0f} writes/s")

# 3. Watch every profile and every sampled pod from now on: when is each profile Installed N/N,
# when is each pod's scheduling gate gone?
done_at, applied_at, ungated_at, lock = {}, {}, {}, threading.Lock()
stop = threading.Event()
def watch(path, rv, handle):
    """Follows path's watch from rv until stop, reconnecting when the server ends it (60 s)."""
    while not stop.is_set():
        c = conn()
        try:
            c.request("GET", f"{path}&watch=1&allowWatchBookmarks=true&timeoutSeconds=60&resourceVersion={rv}")
            for line in c.getresponse():
                ev = json.loads(line)
                rv = (ev["object"].get("metadata") or {}).get("resourceVersion", rv)
                if ev["type"] in ("ADDED", "MODIFIED"):
                    handle(ev["object"])
                if stop.is_set():
                    break
        except (OSError, http.client.HTTPException, ValueError):
            time.sleep(0.2)
        finally:
            c.close()
def on_profile(obj):
    if installed_everywhere(obj):
        with lock:
            done_at.setdefault(key_of(obj), time.time())
def on_pod(obj):
    if not gated(obj):
        with lock:
            ungated_at.setdefault(key_of(obj), time.time())
profiles_path = f"{GROUP}/seccompprofiles?labelSelector=seccomp-operator.dev%2Fbench%3Dscale"
pods_path = "/api/v1/pods?labelSelector=seccomp-operator.dev%2Fbench%3Dscale-pod"
start_rv = req("GET", f"{GROUP}/seccompprofiles?limit=1")["metadata"]["resourceVersion"]
pods_rv = req("GET", f"{pods_path}&limit=1")["metadata"]["resourceVersion"]
threading.Thread(target=watch, args=(profiles_path, start_rv, on_profile), daemon=True).start()
threading.Thread(target=watch, args=(pods_path, pods_rv, on_pod), daemon=True).start()

def installed_count():
    return sum(1 for k in done_at if k != (NAMESPACES[0], "probe"))

# 4. The burst: P profiles over 50 namespaces with 8 client threads; every (P // 30)th of them
# (the first 30) with a pod. From a fifth of the creates on, 20 single applies, 3 s apart, each
# with a pod: how long a user's one profile waits behind the burst.
step = max(1, n // 30)
sampled = set(range(0, n, step)[:30])
burst_keys = [(NAMESPACES[i % 50], f"p{i:05d}") for i in sorted(sampled)]
single_keys = [(NAMESPACES[k % 50], f"single-{k:02d}") for k in range(SINGLES)]
burst_done = threading.Event()

def create(ns, name, body, with_pod):
    req("POST", f"{GROUP}/namespaces/{ns}/seccompprofiles", body)
    with lock:
        applied_at[(ns, name)] = time.time()
    if with_pod:
        p = req("POST", f"/api/v1/namespaces/{ns}/pods", pod(ns, name))
        if not gated(p):  # the operator let it run at once
            with lock:
                ungated_at.setdefault((ns, name), time.time())

def create_burst(i):
    create(NAMESPACES[i % 50], f"p{i:05d}", profile(f"p{i:05d}", i, i in sampled), i in sampled)

def apply_singles():
    while 5 * len(applied_at) < n and not burst_done.is_set():
        time.sleep(0.05)
    begin = time.time()
    for k, (ns, name) in enumerate(single_keys):
        time.sleep(max(0.0, begin + 3 * k - time.time()))
        create(ns, name, profile(name, k, runnable=True), True)

# Every 2 s until all are Installed N/N: status writes (counted from the burst's start) and the
# final statuses waiting for the operator's writers.
samples = []
sampling_done = threading.Event()
def sample_backlog(base):
    while not sampling_done.is_set():
        t = time.time()
        try:
            status = api_counters()["status"] - base["status"]
            waiting = final_waiting()
        except RuntimeError:
            status = None  # a missed sample only widens the interval
        with lock:
            installed = installed_count()
        if status is not None:
            samples.append((t, status, waiting))
        if installed >= total:
            return
        sampling_done.wait(max(0.0, t + 2 - time.time()))

def final_waiting():
    return operator_sums(lambda name, l: "w" if name == "seccomp_operator_profile_status_writes_waiting"
                         and l.get("kind") == "final" else None).get("w", 0.0)

def backlog(depth=50):
    """Seconds during which at least `depth` final statuses waited for the operator's writers
    (profiles waiting only for their status write), and the status writes made in them."""
    secs = writes = 0.0
    for (t0, s0, w0), (t1, s1, w1) in zip(samples, samples[1:]):
        # A backlog at both ends: the writers had work all interval long.
        if w0 >= depth and w1 >= depth:
            secs += t1 - t0
            writes += s1 - s0
    return secs, writes

api_before, hist_before = api_counters(), admissible_histogram()
sampler = threading.Thread(target=sample_backlog, daemon=True, args=({"status": api_before["status"]},))
singles = threading.Thread(target=apply_singles, daemon=True)
say(f"creating {n} profiles ({len(sampled)} with a pod), and {SINGLES} single applies with a pod from a fifth of the way")
t_start = time.time()
sampler.start()
singles.start()
for t in start_parallel(n, create_burst): t.join()
burst_done.set()
t_burst = max(v for (ns, name), v in applied_at.items() if not name.startswith("single-"))
say(f"created {n} profiles in {t_burst - t_start:.1f} s")

# 5. Every file on every node; every profile Installed N/N; every sampled pod ungated.
real_dir = "/var/lib/kubelet/seccomp/operator"
def real_files():
    count = 0
    for ns in NAMESPACES:
        try:
            count += sum(1 for e in os.scandir(f"{real_dir}/{ns}") if e.name.endswith(".json"))
        except OSError:
            pass
    return count
want_files = total + 1  # and the probe's
files_at = installed_at = pods_at = None
while files_at is None or installed_at is None or pods_at is None:
    now = time.time()
    if files_at is None and real_files() >= want_files and progress()["files_min"] >= want_files:
        files_at = now
    with lock:
        if installed_at is None and sum(1 for k in applied_at if k in done_at) >= total:
            installed_at = max(done_at[k] for k in applied_at)
        if pods_at is None and all(k in ungated_at for k in burst_keys + single_keys):
            pods_at = now
    if now - t_burst > 1800:
        break
    time.sleep(0.2)
api_after, hist_after = api_counters(), admissible_histogram()
sampling_done.set()
sampler.join()
singles.join()
# The last create may be a single apply's.
t_last = max(applied_at.values())
def ungate_ms(keys):
    """create -> pod ungated (ms) of the pods of these profiles that got there."""
    return [(ungated_at[k] - applied_at[k]) * 1000 for k in keys if k in ungated_at and k in applied_at]
files_s = None if files_at is None else files_at - t_last
installed_s = None if installed_at is None else installed_at - t_last
with lock:
    lat = sorted((done_at[k] - applied_at[k]) * 1000 for k in applied_at if k in done_at)
    burst_pods, single_pods = ungate_ms(burst_keys), ungate_ms(single_keys)
p99 = pct(lat, 0.99)
say(f"files everywhere {num(files_s, 1)} s, Installed everywhere {num(installed_s, 1)} s after the last create; "
    f"p99 create->Installed {num(p99)} ms; {len(burst_pods) + len(single_pods)}/{len(burst_keys) + len(single_keys)} pods ungated")

hist = delta(hist_after, hist_before)
writes_during = delta(api_after, api_before)
status_per_profile = writes_during["status"] / len(applied_at) if applied_at else None
backlog_s, backlog_writes = backlog()
operator_rate = backlog_writes / backlog_s if backlog_s >= 6 else None

# 5b. The operator's writers when every profile waits only for its status write: the operator
# stopped, this client clears every profile's status (16 threads), and the operator started
# again finds each profile installed on every node with no status: each waits only for its
# write. operator_writes_per_s is the API server's count of profile status writes per second
# while at least 50 final statuses waited for the writers (a 1 s sampler).
operator_rss = rss("/operator")  # the burst's peak, before the restart
SCALE = "/apis/apps/v1/namespaces/seccomp-operator/deployments/seccomp-operator/scale"
OPERATOR_PODS = "/api/v1/namespaces/seccomp-operator/pods?labelSelector=app.kubernetes.io%2Fname%3Dseccomp-operator"
def scale_operator(replicas):
    req("PATCH", SCALE, {"spec": {"replicas": replicas}}, ok=(200,), content_type="application/merge-patch+json")
def restart_throughput(timeout=600):
    replicas = req("GET", SCALE)["spec"]["replicas"]
    scale_operator(0)
    t0 = time.time()
    while req("GET", OPERATOR_PODS)["items"] and time.time() - t0 < 120:
        time.sleep(1)
    keys = list(applied_at)
    def clear(i):
        ns, name = keys[i]
        req("PATCH", f"{GROUP}/namespaces/{ns}/seccompprofiles/{name}/status", {"status": None},
            ok=(200,), content_type="application/merge-patch+json")
    for t in start_parallel(len(keys), clear, threads=16): t.join()
    status_ceiling, written = status_write_ceiling(keys)
    # What the ceiling wrote is cleared again: every profile waits for the operator's write.
    for t in start_parallel(len(written), lambda i: clear(written[i]), threads=16): t.join()
    base = api_counters()["status"]
    scale_operator(replicas)
    points, t0 = [], time.time()
    while time.time() - t0 < timeout:
        t = time.time()
        try:
            written, waiting = api_counters()["status"] - base, final_waiting()
        except RuntimeError:
            time.sleep(1)
            continue
        points.append((t, written, waiting))
        if written >= len(keys):
            break
        time.sleep(max(0.0, t + 1 - time.time()))
    secs = writes = 0.0
    for (t0, s0, w0), (t1, s1, w1) in zip(points, points[1:]):
        if w0 >= 50 and w1 >= 50:
            secs += t1 - t0
            writes += s1 - s0
    most = max((w for _, _, w in points), default=0)
    return (writes / secs if secs >= 3 else None), secs, most, (points[-1][1] if points else 0), status_ceiling
def status_write_ceiling(keys, seconds=60, threads=16):
    """The API server's ceiling for the operator's own write, the operator stopped: a plain
    client's 16 threads server-side-applying an Installed status (the operator's field manager,
    conflicts forced) to one cleared profile after another, for 60 s or until every profile was
    written (60 s: the simulated nodes' periodic resyncs, which come once a minute, weigh on it
    as they weigh on the operator's writes). Returns writes/s and the indexes of the profiles
    written."""
    lock, nxt, done = threading.Lock(), [0], []
    def status(ns, name):
        cond = lambda t, reason, msg: {"type": t, "status": "True", "reason": reason, "message": msg,
                                        "observedGeneration": 1, "lastTransitionTime": "2026-01-01T00:00:00Z"}
        return {"apiVersion": "seccomp-operator.dev/v1alpha1", "kind": "SeccompProfile",
                "metadata": {"name": name, "namespace": ns},
                "status": {"phase": "Installed", "observedGeneration": 1, "installedNodes": f"{nodes}/{nodes}",
                           "nodes": {"installed": nodes, "total": nodes}, "podsOnOlderVersion": 0,
                           "contentHash": "sha256:" + "0" * 64, "installedAt": "2026-01-01T00:00:00Z",
                           "localhostProfile": f"operator/{ns}/{name}.json",
                           "conditions": [cond("Valid", "Valid", "spec and base profiles are valid"),
                                          cond("Ready", "Installed", f"installed on all {nodes} node(s)"),
                                          cond("NodesReporting", "AllNodesCounted", f"every node counts ({nodes})")]}}
    def apply():
        while time.time() < deadline:
            with lock:
                i = nxt[0]
                nxt[0] += 1
            if i >= len(keys):
                return
            ns, name = keys[i]
            try:
                req("PATCH", f"{GROUP}/namespaces/{ns}/seccompprofiles/{name}/status?fieldManager=seccomp-operator&force=true",
                    status(ns, name), ok=(200,), content_type="application/apply-patch+yaml")
                with lock:
                    done.append(i)
            except RuntimeError:
                pass  # refused: not accepted, not counted
    started = [threading.Thread(target=apply) for _ in range(threads)]
    begin = time.time()
    deadline = begin + seconds
    for t in started: t.start()
    for t in started: t.join()
    return len(done) / (time.time() - begin), done
say("restarting the operator with every profile's status cleared: its write rate when profiles wait only for their status write")
restart_rate, restart_s, restart_most, restart_written, status_ceiling = restart_throughput()
say(f"API server ceiling for the operator's status write {status_ceiling:.0f} writes/s")
say(f"operator status writes {num(restart_rate, 1)}/s over {restart_s:.0f} s with >= 50 waiting (at most {restart_most:.0f} waited)")

# 6. The steady state: after 20 s to settle, the project's writes over 60 s.
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
w0, r0 = api_counters()["project"], operator_reconciles()
lw = threading.Thread(target=watch_leases, args=(window,))
lw.start()
time.sleep(window)
lw.join()
w1, r1 = api_counters()["project"], operator_reconciles()
crd_writes = (w1 - w0) / window
lease_rate = lease_writes[0] / window
writes = crd_writes + lease_rate
stop.set()

# 7. Sizes and memory.
sizes = [len(json.dumps(o)) for o in req("GET", f"{GROUP}/seccompnodestatuses")["items"]]
agent_rss = rss("/node-agent", "--record=false")
sim_rss = progress().get("rss_peak_kib", 0) / 1024
fmt = lambda v: num(v, 1)
p99_admissible = admissible_p99_ms(hist)
p99_single = pct(single_pods, 0.99)
def share(rate, of):
    """`rate` as a percentage of the ceiling `of` (None when either is missing or zero)."""
    return None if rate is None or not of else 100 * rate / of

print(f"\nscale benchmark ({os.cpu_count()} CPUs, {nodes} nodes: {real} real + {nodes - real} simulated, Kubernetes {req('GET', '/version')['gitVersion']})\n")
print(f"API server write ceiling on the idle cluster: {ceiling:.2f} writes/s (16 threads merge-patching 200 ConfigMaps for 15 s)")
print(f"{n} profiles in 50 namespaces created with 8 client threads in {t_burst - t_start:.1f} s, "
      f"and {SINGLES} single applies 3 s apart during it; the last create {t_last - t_start:.1f} s after the first")
print(f"  every file on every node:       {fmt(files_s):>7} s after the last create   (goal <= 60 s at 100 x 10000)")
print(f"  every profile Installed {nodes}/{nodes}: {fmt(installed_s):>7} s after the last create   (goal <= 90 s)")
print(f"  create -> Installed {nodes}/{nodes}:       p50 {num(pct(lat, 0.5))} ms, p99 {num(p99)} ms over {len(lat)} profiles")
print(f"  create -> admissible (the operator's histogram): p99 {p99_admissible} ms over the {hist.get('count', 0.0):.0f} "
      f"profiles it saw (goal <= 60 s)")
print(f"  create -> pod ungated: {len(burst_pods)} burst pods p50 {num(pct(burst_pods, 0.5))} ms, p99 {num(pct(burst_pods, 0.99))} ms; "
      f"{len(single_pods)} single applies p50 {num(pct(single_pods, 0.5))} ms, p99 {num(p99_single)} ms (goal <= 10 s)")
print(f"  writes from just before the burst to all Installed: {writes_during['status']:.0f} profile status writes = "
      f"{num(status_per_profile, 2)} per profile (goal <= 1.5); {writes_during['meta']:.0f} finalizer/metadata writes "
      f"(PATCH/PUT/APPLY); {writes_during['events']:.0f} Event writes (cluster-wide, the kubelets' included)")
if operator_rate is None:
    most = max((w for _, _, w in samples), default=0)
    print(f"  during the burst the writers kept up: never 50 final statuses waiting for 2 s (at most {most:.0f} at once)")
else:
    print(f"  during the burst, {operator_rate:.2f} status writes/s over {backlog_s:.0f} s with >= 50 waiting")
print(f"  operator restarted with every status cleared ({restart_written:.0f} written): {num(restart_rate, 2)} status writes/s "
      f"over {restart_s:.0f} s with >= 50 waiting (at most {restart_most:.0f}) = "
      f"{num(share(restart_rate, status_ceiling))}% of the API server's ceiling for that write, "
      f"{status_ceiling:.2f}/s: a plain client's 16 threads server-side-applying Installed statuses with the operator stopped "
      f"(goal >= 80%); {num(share(restart_rate, ceiling))}% of the ConfigMap ceiling")
print(f"peak RSS: operator {operator_rss:.1f} MiB (goal <= 150), real node's agent {agent_rss:.1f} MiB (goal <= 40), "
      f"simulator ({nodes - real} nodes, one process) {sim_rss:.1f} MiB")
print(f"largest SeccompNodeStatus: {max(sizes) / 1024 if sizes else 0:.1f} KiB over {len(sizes)} objects (goal <= 256 KiB)")
print(f"steady state over {window} s: {crd_writes:.2f} writes/s to the project's resources + {lease_rate:.2f} Lease "
      f"writes/s (heartbeats: {nodes} agents / {10} s = {nodes / 10:.1f}/s expected); "
      f"{(r1 - r0) / window:.2f} SeccompProfile reconciles/s")
print(f"scale: nodes={nodes} profiles={n} all_files_s={fmt(files_s)} all_installed_s={fmt(installed_s)} "
      f"p99_apply_to_installed_ms={num(p99)} operator_rss_mib={operator_rss:.1f} agent_rss_mib={agent_rss:.1f} "
      f"node_status_max_kib={max(sizes) / 1024 if sizes else 0:.1f} apiserver_writes_per_s={writes:.2f} "
      f"p99_apply_to_admissible_ms={p99_admissible} p99_single_apply_during_burst_ms={num(p99_single)} "
      f"status_writes_per_profile={num(status_per_profile, 2)} operator_writes_per_s={num(restart_rate, 2)} "
      f"apiserver_ceiling_writes_per_s={ceiling:.2f} apiserver_status_ceiling_writes_per_s={status_ceiling:.2f}")
PY
