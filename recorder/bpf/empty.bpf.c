// SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
//
// An empty program on the same hook as the recorder: the floor of what any eBPF program on
// sys_enter costs, for hack/bench-recorder.sh.

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

SEC("tp_btf/sys_enter")
int sys_enter(unsigned long long *ctx)
{
	return 0;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
