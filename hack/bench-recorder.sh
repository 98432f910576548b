#!/usr/bin/env bash
# Recorder overhead, measured on this machine in one run: nanoseconds added per syscall on a
# tight getppid() loop (best of N runs), and ratios of each overhead to the empty program's.
# Prints a table; asserts nothing. Needs root.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" -eq 0 ] || { echo "hack/bench-recorder.sh needs root" >&2; exit 1; }
hack/deps.sh bench
RUNS=${RUNS:-5}
N=${N:-3000000}

cargo build --release --quiet -p node-agent --bin seccompctl --example bench_attach
ctl=target/release/seccompctl
attach=target/release/examples/bench_attach
loop=target/bench-getppid-loop
gcc -O2 -o "$loop" hack/bench/getppid_loop.c

best() { # best (lowest) ns/call of RUNS runs of "$@ N"
  local b=""
  for _ in $(seq "$RUNS"); do
    v=$("$@" "$N" | tail -1)
    if [ -z "$b" ] || awk "BEGIN{exit !($v < $b)}"; then b=$v; fi
  done
  echo "$b"
}
# The loop runs in its own mount namespace, like a container.
in_ns() { unshare -m "$@"; }

with_attached() { # mode, then the measuring command
  local mode=$1; shift
  coproc HOLD { exec "$attach" "$mode"; }
  read -r line <&"${HOLD[0]}"
  [ "$line" = ready ] || { echo "bench_attach $mode failed" >&2; exit 1; }
  "$@"
  kill "$HOLD_PID" 2>/dev/null; wait "$HOLD_PID" 2>/dev/null || true
}

declare -A ns
ns[none]=$(best in_ns "$loop")
ns[empty]=$(with_attached empty best in_ns "$loop")
ns[idle]=$(with_attached recorder best in_ns "$loop")
ns[attached]=$(with_attached recorder-other best in_ns "$loop")
ns[armed_ignored]=$(with_attached recorder-armed best in_ns "$loop")
# Recording the loop's own namespace: seccompctl record prints the loop's figure.
rec_best=""
for _ in $(seq "$RUNS"); do
  v=$("$ctl" record -o /dev/null -- "$loop" "$N" 2>/dev/null | tail -1)
  if [ -z "$rec_best" ] || awk "BEGIN{exit !($v < $rec_best)}"; then rec_best=$v; fi
done
ns[recording]=$rec_best
# bpftrace counting raw_syscalls:sys_enter per cgroup (a peer).
bt_log=$(mktemp)
bpftrace -e 'tracepoint:raw_syscalls:sys_enter { @[cgroup] = count(); }' >"$bt_log" 2>&1 &
bt=$!
for _ in $(seq 50); do grep -q Attaching "$bt_log" && break; sleep 0.2; done
sleep 1
ns[bpftrace]=$(best in_ns "$loop")
grep -q Attaching "$bt_log" || { echo "bpftrace did not attach:" >&2; cat "$bt_log" >&2; }
kill -TERM "$bt" 2>/dev/null; wait "$bt" 2>/dev/null || true; rm -f "$bt_log"
# strace -f -c (ptrace): far slower, so fewer calls.
st=$(strace -f -c -o /dev/null "$loop" $((N / 100)) | tail -1)
ns[strace]=$st

base=${ns[none]}
floor=$(awk "BEGIN{print ${ns[empty]} - $base}")
printf '\nrecorder overhead on getppid(), best of %s runs of %s calls (kernel %s, %s CPUs)\n\n' "$RUNS" "$N" "$(uname -r)" "$(nproc)"
printf '%-44s %10s %12s %14s\n' "configuration" "ns/call" "added ns" "x empty prog"
for k in none empty idle attached armed_ignored recording bpftrace strace; do
  v=${ns[$k]}
  add=$(awk "BEGIN{printf \"%.1f\", $v - $base}")
  ratio=$(awk "BEGIN{ if ($floor > 0) printf \"%.2f\", ($v - $base) / $floor; else print \"-\" }")
  case $k in
    none) label="no BPF" ;;
    empty) label="empty tp_btf program (floor)" ;;
    idle) label="recorder attached, recording nothing" ;;
    attached) label="recorder recording another ns, not this" ;;
    armed_ignored) label="recorder armed, this ns marked ignored" ;;
    recording) label="recorder recording this ns" ;;
    bpftrace) label="bpftrace count per cgroup" ;;
    strace) label="strace -f -c" ;;
  esac
  printf '%-44s %10s %12s %14s\n' "$label" "$v" "$add" "$ratio"
done
rec_add=$(awk "BEGIN{print ${ns[recording]} - $base}")
bt_add=$(awk "BEGIN{print ${ns[bpftrace]} - $base}")
printf '\ngoals: recording <= 1.5x empty: %s; attached <= 1.25x empty: %s; recording <= 1/4 of bpftrace: %s\n' \
  "$(awk "BEGIN{print ($rec_add <= 1.5*$floor) ? \"met\" : \"missed\"}")" \
  "$(awk "BEGIN{print (${ns[attached]} - $base <= 1.25*$floor) ? \"met\" : \"missed\"}")" \
  "$(awk "BEGIN{print ($rec_add <= $bt_add/4) ? \"met\" : \"missed\"}")"
