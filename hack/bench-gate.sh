#!/usr/bin/env bash
# How soon pods waiting at the scheduling gate start once their profile is Installed, on the
# local cluster (hack/cluster-up.sh --nodes 3 && hack/deploy.sh first). A Deployment of N
# replicas (default 20) that uses a profile is applied before the profile; the script then
# applies the profile and watches, from this machine, when the profile is first seen Installed
# and when each pod is first seen scheduled and running. Then it scales to 2N and times the new
# pods from their creation to their scheduling (the profile already Installed). Ends with
#   gate: pods=N scheduled_after_installed_p50_s=… p99_s=… running_after_installed_p50_s=… p99_s=… installed_profile_ungated_p50_s=… p99_s=…
#
#   hack/bench-gate.sh [N]
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
. hack/lib/cluster-env.sh
n=${1:-20}
[[ "$n" =~ ^[1-9][0-9]*$ ]] || { echo "usage: hack/bench-gate.sh [N]" >&2; exit 2; }
export KUBECONFIG=$KUBECONFIG_PATH KUBECTL
ns=bench-gate-$(date +%s)
"$KUBECTL" create namespace "$ns" >/dev/null
trap '"$KUBECTL" delete namespace "$ns" --wait=false >/dev/null 2>&1 || true' EXIT
exec python3 - "$ns" "$n" <<'PY'
import calendar, json, os, subprocess, sys, time
ns, n = sys.argv[1], int(sys.argv[2])
kubectl = os.environ["KUBECTL"]

def k(*args, stdin=None):
    r = subprocess.run([kubectl, *args], input=stdin, capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"kubectl {' '.join(args)}: {r.stderr.strip()}")
    return r.stdout

def pods():
    return json.loads(k("-n", ns, "get", "pods", "-l", "app=bench", "-o", "json"))["items"]

def cond(p, t):
    for c in (p.get("status") or {}).get("conditions") or []:
        if c["type"] == t and c["status"] == "True":
            return c
    return None

def running(p):
    return any("running" in (s.get("state") or {}) for s in (p.get("status") or {}).get("containerStatuses") or [])

def pct(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))] if xs else float("nan")

def ts(s):
    return calendar.timegm(time.strptime(s, "%Y-%m-%dT%H:%M:%SZ"))

path = f"operator/{ns}/bench.json"
deploy = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "bench", "namespace": ns},
    "spec": {"replicas": n, "selector": {"matchLabels": {"app": "bench"}},
        "template": {"metadata": {"labels": {"app": "bench"}}, "spec": {
            "terminationGracePeriodSeconds": 1,
            "containers": [{"name": "app", "image": "localhost/busybox:1", "imagePullPolicy": "IfNotPresent",
                "command": ["sh", "-c", "while true; do sleep 5; done"],
                "securityContext": {"seccompProfile": {"type": "Localhost", "localhostProfile": path}}}]}}}}
k("apply", "-f", "-", stdin=json.dumps(deploy))
deadline = time.time() + 120
while True:
    ps = pods()
    gated = [p for p in ps if any(g["name"] == "seccomp-operator.dev/profile" for g in p["spec"].get("schedulingGates") or [])]
    if len(ps) == n and len(gated) == n:
        break
    if time.time() > deadline:
        raise SystemExit(f"{len(gated)}/{n} pods gated after 120 s")
    time.sleep(0.5)
print(f"{n} pods created and gated; applying the profile", flush=True)
profile = {"apiVersion": "seccomp-operator.dev/v1alpha1", "kind": "SeccompProfile",
    "metadata": {"name": "bench", "namespace": ns}, "spec": {"defaultAction": "SCMP_ACT_ALLOW"}}
k("apply", "-f", "-", stdin=json.dumps(profile))
installed = scheduled = None
sched, run = {}, {}
deadline = time.time() + 300
while len(run) < n:
    now = time.time()
    if installed is None:
        p = json.loads(k("-n", ns, "get", "seccompprofile", "bench", "-o", "json"))
        if (p.get("status") or {}).get("phase") == "Installed":
            installed = now
    for p in pods():
        name = p["metadata"]["name"]
        if cond(p, "PodScheduled") and name not in sched:
            sched[name] = now
        if running(p) and name not in run:
            run[name] = now
    if now > deadline:
        raise SystemExit(f"only {len(run)}/{n} pods running after 300 s")
    time.sleep(0.2)
if installed is None:
    raise SystemExit("pods ran before the profile was seen Installed")
s = [max(0.0, t - installed) for t in sched.values()]
r = [max(0.0, t - installed) for t in run.values()]
print(f"profile Installed; scheduled after it (s): p50 {pct(s, .5):.2f} max {max(s):.2f}; running: p50 {pct(r, .5):.2f} max {max(r):.2f}", flush=True)

# The profile is Installed already: new pods are ungated at once (server timestamps, 1 s).
before = {p["metadata"]["name"] for p in pods()}
k("-n", ns, "scale", "deployment/bench", f"--replicas={2 * n}")
deadline = time.time() + 300
while True:
    new = [p for p in pods() if p["metadata"]["name"] not in before]
    done = [p for p in new if cond(p, "PodScheduled")]
    if len(new) == n and len(done) == n:
        break
    if time.time() > deadline:
        raise SystemExit(f"only {len(done)}/{n} new pods scheduled after 300 s")
    time.sleep(0.5)
u = [ts(cond(p, "PodScheduled")["lastTransitionTime"]) - ts(p["metadata"]["creationTimestamp"]) for p in done]
print(f"gate: pods={n} scheduled_after_installed_p50_s={pct(s, .5):.2f} p99_s={pct(s, .99):.2f} "
      f"running_after_installed_p50_s={pct(r, .5):.2f} p99_s={pct(r, .99):.2f} "
      f"installed_profile_ungated_p50_s={pct(u, .5):.0f} p99_s={pct(u, .99):.0f}")
PY
