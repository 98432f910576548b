#!/usr/bin/env bash
# The main job, with no cluster: record a real busybox container under runc with the eBPF
# recorder, show the profile it learned, run the container enforced under that profile, and
# show that a syscall outside the profile is denied with EPERM. Installs what it needs.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" -ne 0 ]; then
  echo "hack/demo.sh needs root (it loads an eBPF program and runs runc containers)." >&2
  exit 1
fi
hack/deps.sh test
# runc 1.5, the one the local cluster runs, built once from the Go module proxy (about a minute).
hack/k8s-build.sh runc
eval "$(hack/k8s-build.sh --print)"
export PATH=$RUNC_BIN:$PATH
echo "== building seccompctl (release)"
cargo build --release --quiet -p seccompctl --bin seccompctl
ctl=$(realpath "${CARGO_TARGET_DIR:-target}")/release/seccompctl

work=$(mktemp -d /tmp/seccomp-demo.XXXXXX)
trap 'runc delete --force demo-rec >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
mkdir -p "$work/bundle/rootfs/bin" "$work/bundle/rootfs/tmp"
cp /bin/busybox "$work/bundle/rootfs/bin/"
for a in sh echo ls mkdir cat grep; do ln -s busybox "$work/bundle/rootfs/bin/$a"; done

bundle_config() { # $1: shell command, $2: seccomp JSON file or ""
  python3 - "$1" "$2" > "$work/bundle/config.json" <<'PY'
import json, sys
cmd, seccomp = sys.argv[1], sys.argv[2]
linux = {"namespaces": [{"type": t} for t in ("pid", "ipc", "uts", "mount")],
         "maskedPaths": ["/proc/kcore"], "readonlyPaths": ["/proc/sys"]}
if seccomp:
    linux["seccomp"] = json.load(open(seccomp))
caps = ["CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_SETUID", "CAP_SETGID"]
print(json.dumps({
    "ociVersion": "1.0.2",
    "process": {"terminal": False, "user": {"uid": 0, "gid": 0}, "args": ["sh", "-c", cmd],
                "env": ["PATH=/bin"], "cwd": "/", "noNewPrivileges": True,
                "capabilities": {k: caps for k in ("bounding", "effective", "permitted")}},
    "root": {"path": "rootfs", "readonly": False}, "hostname": "demo",
    # /dev on a tmpfs: runc puts its /dev symlinks there, not into the rootfs on disk (runc
    # 1.5 refuses to run a second container over the symlinks a first one left)
    "mounts": [{"destination": "/proc", "type": "proc", "source": "proc"},
               {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
                "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]}],
    "linux": linux}, indent=1))
PY
}

workload='echo "hello from a busybox container"; ls /bin | head -2; grep Seccomp: /proc/self/status'
echo
echo "== 1. record: run the container under runc, recorded with eBPF (no filter on it)"
bundle_config "$workload" ""
"$ctl" record --runc-bundle "$work/bundle" --id demo-rec --format oci -o "$work/learned.json"

echo
echo "== 2. the learned profile (plain OCI seccomp JSON, what the kubelet hands to runc)"
python3 - "$work/learned.json" <<'PY'
import json, sys, textwrap
d = json.load(open(sys.argv[1]))
plain = [r for r in d["syscalls"] if r["action"] == "SCMP_ACT_ALLOW" and not r.get("args")]
names = plain[0]["names"] if plain else []
print(f"defaultAction: {d['defaultAction']}   architectures: {', '.join(d['architectures'])}")
print(f"allowed with any arguments ({len(names)}):")
print(textwrap.indent(textwrap.fill(", ".join(names), 96), "  "))
def cond(a):
    v = lambda x: hex(x) if x > 255 else str(x)
    two = f" == {v(a.get('valueTwo', 0))}" if a["op"] == "SCMP_CMP_MASKED_EQ" else ""
    return f"arg{a['index']} {a['op'][9:]} {v(a['value'])}{two}"
others = [r for r in d["syscalls"] if r not in plain]
if others:
    print("argument rules (learned from the values the container passed; anything else is EPERM):")
    for r in others:
        what = " and ".join(cond(a) for a in r.get("args", []))
        act = r["action"] + (f"({r['errnoRet']})" if "errnoRet" in r else "")
        print(f"  {', '.join(r['names'])}: {act}{' if ' + what if what else ''}")
    print("  (clone MASKED_EQ 0x7e020000 == 0: forks and threads only, no new namespaces)")
PY

echo
echo "== 3. enforce: the same container under the learned profile"
bundle_config "$workload" "$work/learned.json"
runc run --bundle "$work/bundle" demo-enforced
echo "(exit status $?; \"Seccomp: 2\" is the kernel saying a filter is on)"

echo
echo "== 4. outside the profile: mkdir was never recorded, so it is denied"
bundle_config 'echo "trying mkdir /tmp/x"; mkdir /tmp/x' "$work/learned.json"
set +e
runc run --bundle "$work/bundle" demo-denied
rc=$?
set -e
echo "(exit status $rc: the kernel answered mkdir with EPERM)"
echo
cp "$work/learned.json" target/demo-learned.json
echo "Done. The learned profile is in target/demo-learned.json; as a SeccompProfile resource:"
echo "  $ctl convert --to cr --name demo target/demo-learned.json"
