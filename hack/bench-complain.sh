#!/usr/bin/env bash
# What complain mode costs the workload: a program calls mkdir(2) N times (default 200,000) in
# a tight loop — a syscall the profile refuses — under no filter, under a profile that allows
# it, enforced (refused with EPERM), and under the complain rendering (`seccompctl run
# --complain`: allowed and logged, every call an audit record). The kernel does not rate-limit
# SCMP_ACT_LOG records; each costs the calling task the record's formatting and queueing, and
# with the audit backlog full (auditd slow or absent with a backlog limit) logging tasks can
# wait. Needs root (audit records). Ends with
#   complain: calls=N unfiltered_ns=… allowed_ns=… enforced_ns=… complain_ns=… complain_overhead_ns=… records_seen=…
# (nanoseconds per call; complain_overhead_ns = complain_ns - allowed_ns; records_seen: the
# would-be denials seccompctl counted, N when none was lost).
#
#   hack/bench-complain.sh [N]
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-200000}
[[ "$n" =~ ^[1-9][0-9]*$ ]] || { echo "usage: hack/bench-complain.sh [N]" >&2; exit 2; }
[ "$(id -u)" -eq 0 ] || { echo "hack/bench-complain.sh reads audit records: run it as root" >&2; exit 2; }
cargo build --release -q -p seccompctl
ctl=$PWD/target/release/seccompctl
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cc -O2 -o "$work/loop" bench/complain/loop.c
mkdir "$work/existing"
echo '{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir"],"action":"SCMP_ACT_ERRNO"}]}' >"$work/deny.json"
echo '{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdirat"],"action":"SCMP_ACT_ERRNO"}]}' >"$work/allow.json"
unfiltered=$("$work/loop" "$work/existing" "$n")
allowed=$("$ctl" run --profile "$work/allow.json" -- "$work/loop" "$work/existing" "$n")
enforced=$("$ctl" run --profile "$work/deny.json" -- "$work/loop" "$work/existing" "$n")
complain=$("$ctl" run --complain --profile "$work/deny.json" -- "$work/loop" "$work/existing" "$n" 2>"$work/summary")
seen=$(awk '$2 == "mkdir" {print $3}' "$work/summary")
grep -i "lost" "$work/summary" >&2 || true
echo "complain: calls=$n unfiltered_ns=$unfiltered allowed_ns=$allowed enforced_ns=$enforced complain_ns=$complain complain_overhead_ns=$((complain - allowed)) records_seen=${seen:-0}"
