// SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
//
// seccomp-operator syscall recorder.
//
// One program on the raw sys_enter tracepoint (tp_btf: BTF-typed, no probe reads) sets a bit
// per syscall in a per-mount-namespace record. A second one on sched_process_exec marks the
// moment a recorded namespace first execs a program (a runtime re-executing itself as
// /proc/self/exe does not count): bits before it are the container runtime's set-up
// (mount, pivot_root, ...), bits after it are the container's own program. Userspace builds
// profiles from the "after" bits plus what the runtime needs once the filter is applied.
//
// Which namespaces are recorded:
// - `slots` / `recording` (ARRAY / HASH, never evict): namespaces userspace chose, e.g. the
//   fresh namespace `seccompctl record` makes before it execs the command;
// - `pending` (LRU_HASH, bounded): while `config.armed` is set, every other non-host namespace
//   the program meets is recorded here from its first syscall, so a container that starts
//   before userspace learns about it loses nothing. Userspace moves the namespaces it wants to
//   `recording` and marks the rest IGNORED (one lookup, then return).
// When nothing is armed and nothing is watched, the program costs one (inlined) array lookup.
//
// Argument classes: for a short list of syscalls (clone, clone3, unshare, setns, socket,
// socketpair, personality; native ABI, after the first exec) the program also keeps the
// distinct values of the argument that decides what the call does (namespace bits, socket
// domain and type, persona), at most ARG_VALUES per syscall and namespace. Userspace writes
// the syscall numbers into the config (their bitmap is one load and test for a recorded
// namespace's other syscalls); the kinds' order and the values' meaning are the document
// model's `ArgKind` (profile/src/args.rs).
// A watched namespace, and one ignored while armed, is found without hashing (see struct
// config).

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

typedef unsigned int u32;
typedef unsigned long long u64;

// Only the fields used, relocated against the running kernel's BTF (CO-RE).
struct ns_common {
	unsigned int inum;
	u64 ns_id;
} __attribute__((preserve_access_index));

struct mnt_namespace {
	struct ns_common ns;
	u64 seq;
} __attribute__((preserve_access_index));

struct nsproxy {
	struct mnt_namespace *mnt_ns;
} __attribute__((preserve_access_index));

struct thread_info {
	u32 status;
} __attribute__((preserve_access_index));

struct kernfs_node {
	const char *name;
} __attribute__((preserve_access_index));

struct cgroup {
	struct kernfs_node *kn;
} __attribute__((preserve_access_index));

struct css_set {
	struct cgroup *dfl_cgrp;
} __attribute__((preserve_access_index));

// x86_64's syscall argument registers (CO-RE: on other architectures the fields do not exist
// and argument capture is compiled out at load time).
struct pt_regs {
	unsigned long di;
	unsigned long si;
} __attribute__((preserve_access_index));

struct task_struct {
	struct thread_info thread_info;
	struct nsproxy *nsproxy;
	struct css_set *cgroups;
} __attribute__((preserve_access_index));

struct linux_binprm {
	const char *filename;
} __attribute__((preserve_access_index));

#define NR_WORDS 16                  // 1024 syscall numbers per class
#define NR_CLASSES 3                 // 0 native, 1 ia32 compat, 2 x32
#define X32_SYSCALL_BIT 0x40000000
#define TS_COMPAT 0x0002

#define FLAG_EXECED 1ULL               // the namespace has exec'd its program
#define FLAG_IGNORED 2ULL              // userspace does not want this namespace

#define CGROUP_NAME_LEN 72

// Argument classes (the order of ArgKind::ALL in profile/src/args.rs).
#define ARG_CLONE 0
#define ARG_CLONE3 1
#define ARG_UNSHARE 2
#define ARG_SETNS 3
#define ARG_SOCKET 4
#define ARG_SOCKETPAIR 5
#define ARG_PERSONALITY 6
#define ARG_KINDS 7
#define ARG_VALUES 8
#define ARG_PRESENT (1ULL << 63)
#define CLONE_NS_FLAGS 0x7E020000ULL
#define UNSHARE_NS_FLAGS (CLONE_NS_FLAGS | 0x80ULL)
#define SOCK_TYPE_MASK 0xfULL

struct arg_set {
	u64 overflow;
	u64 vals[ARG_VALUES];
};

struct ns_record {
	u64 flags;
	// the namespace's unique id (inode numbers are reused once a namespace is gone): an entry
	// whose id differs from the namespace's is a dead namespace's, and is started afresh
	u64 gen;
	// name of the unified-hierarchy cgroup the namespace's program exec'd in (the container
	// ID for containerd, CRI-O and runc): identifies the container even after it exited
	char cgroup[CGROUP_NAME_LEN];
	// [phase][class][word]; phase 0 before the first exec, 1 after it
	u64 bits[2][NR_CLASSES][NR_WORDS];
	// per ARG_* kind: distinct values (ARG_PRESENT set; 0 is a free slot) and whether one did
	// not fit or could not be read
	struct arg_set args[ARG_KINDS];
};

#define MAX_SLOTS 256
#define SLOT_BUCKETS 1024

// Watched namespaces live in `slots` (an array: its lookup is inlined, no hashing), found
// through a direct-mapped table in the config: bucket (inum % SLOT_BUCKETS) holds slot + 1 and
// slot_ns confirms the namespace. A namespace whose bucket is taken goes to the `recording`
// hash map instead (rare: mount namespace inums are allocated close together).
struct config {
	u64 host_mntns;
	u32 armed;
	// watched namespaces (slots and hash); 0 and not armed: nothing to do
	u32 watched;
	// watched namespaces in the `recording` hash map
	u32 hashed;
	u32 pad;
	u64 slot_ns[MAX_SLOTS];
	unsigned short slot_of[SLOT_BUCKETS];
	// namespaces userspace ignores while armed, direct-mapped like slot_of (a colliding one
	// falls back to its IGNORED entry in `pending`): the armed recorder skips them without
	// hashing. The generation tells a reused inode number apart.
	struct {
		u64 ns;
		u64 gen;
	} ignored[SLOT_BUCKETS];
	// bitmap of the native syscall numbers in arg_nr (all zero: no argument capture)
	u64 arg_mask[NR_WORDS];
	// native syscall number per ARG_* kind, -1 where the architecture has none
	int arg_nr[8];
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, struct config);
} config SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, MAX_SLOTS);
	__type(key, u32);
	__type(value, struct ns_record);
} slots SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, u64);
	__type(value, struct ns_record);
} recording SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 8192);
	__type(key, u64);
	__type(value, struct ns_record);
} pending SEC(".maps");

// Userspace's note about a watched namespace (the in-cluster agent keeps which container it
// is), pinned with the other maps so that a restarted agent finds it. Never used by the
// programs; allocated per entry.
#define NOTE_LEN 1020
struct note {
	u32 len;
	char data[NOTE_LEN];
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 4096);
	__type(key, u64);
	__type(value, struct note);
} notes SEC(".maps");

// Counters: 0 namespaces newly seen while armed, 1 pending inserts that failed.
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 2);
	__type(key, u32);
	__type(value, u64);
} stats SEC(".maps");

static const struct ns_record zero_record;

static __always_inline void count(u32 idx)
{
	u64 *v = bpf_map_lookup_elem(&stats, &idx);
	if (v)
		*v += 1;
}

static __always_inline void set_bit(struct ns_record *r, u32 class, long nr)
{
	u32 phase = (r->flags & FLAG_EXECED) ? 1 : 0;
	u32 word = ((u64)nr >> 6) & (NR_WORDS - 1);
	u64 mask = 1ULL << (nr & 63);
	u64 *w = &r->bits[phase][class][word];
	// Read first: the common case (bit already set) takes no atomic and dirties no line.
	if (!(*w & mask))
		__sync_fetch_and_or(w, mask);
}

// A never-reused id of the task's mount namespace: ns_common.ns_id on recent kernels,
// mnt_namespace.seq on older ones.
static __always_inline u64 ns_generation(struct task_struct *task)
{
	struct mnt_namespace *mnt = task->nsproxy->mnt_ns;
	if (bpf_core_field_exists(mnt->ns.ns_id))
		return mnt->ns.ns_id;
	if (bpf_core_field_exists(mnt->seq))
		return mnt->seq;
	return 0;
}

// The pending entry of a namespace, created (or restarted, for a reused inode number) when
// needed.
static __always_inline struct ns_record *pending_entry(u64 mntns, u64 gen)
{
	struct ns_record *r = bpf_map_lookup_elem(&pending, &mntns);
	if (r && r->gen == gen)
		return r;
	count(0);
	if (bpf_map_update_elem(&pending, &mntns, &zero_record, BPF_ANY)) {
		count(1);
		return 0;
	}
	r = bpf_map_lookup_elem(&pending, &mntns);
	if (r)
		r->gen = gen;
	return r;
}

// Each map lookup must stay a call site of its own: where the compiler merges lookups of two
// maps into one call, the verifier cannot inline it and every syscall pays an indirect call
// into the map's ops (measured: +40 ns per syscall with retpolines). Hence the slot lookup is
// inlined here and the rarer paths are subprograms of their own.
static __always_inline struct ns_record *slot_lookup(struct config *cfg, u64 mntns)
{
	unsigned short s = cfg->slot_of[mntns & (SLOT_BUCKETS - 1)];
	if (!s)
		return 0;
	u32 idx = (s - 1) & (MAX_SLOTS - 1);
	if (cfg->slot_ns[idx] != mntns)
		return 0;
	return bpf_map_lookup_elem(&slots, &idx);
}

static __noinline struct ns_record *hashed_lookup(u64 mntns)
{
	return bpf_map_lookup_elem(&recording, &mntns);
}

static __always_inline struct ns_record *watched(struct config *cfg, u64 mntns)
{
	struct ns_record *r = slot_lookup(cfg, mntns);
	if (!r && cfg->hashed)
		r = hashed_lookup(mntns);
	return r;
}

// The syscall's class and number within it (x32 numbers carry a marker bit, ia32 ones are
// told by the task's TS_COMPAT status); false for numbers outside the bitmap.
static __always_inline int classify(struct task_struct *task, long *nr, u32 *class)
{
	*class = 0;
	if (*nr & X32_SYSCALL_BIT) {
		*class = 2;
		*nr &= ~X32_SYSCALL_BIT;
	} else if (bpf_core_field_exists(task->thread_info.status) &&
		   (task->thread_info.status & TS_COMPAT)) {
		*class = 1;
	}
	return *nr >= 0 && *nr < NR_WORDS * 64;
}

// Add v to a value set: each slot is claimed with a compare-and-swap, so two CPUs never lose
// or duplicate a value; a set that is full overflows.
static __always_inline void add_value(struct arg_set *set, u64 v)
{
	v |= ARG_PRESENT;
#pragma unroll
	for (int i = 0; i < ARG_VALUES; i++) {
		u64 cur = set->vals[i];
		if (cur == v)
			return;
		if (cur == 0) {
			cur = __sync_val_compare_and_swap(&set->vals[i], 0, v);
			if (cur == 0 || cur == v)
				return;
		}
	}
	if (!set->overflow)
		__sync_fetch_and_or(&set->overflow, 1);
}

// The argument class of a tracked syscall (nr is native and in the bitmap).
static __noinline void record_args(struct config *cfg, struct ns_record *r, struct pt_regs *regs,
				   long nr)
{
	if (!bpf_core_field_exists(regs->di))
		return;
	u32 kind = ARG_KINDS;
#pragma unroll
	for (u32 k = 0; k < ARG_KINDS; k++)
		if (cfg->arg_nr[k] == nr)
			kind = k;
	if (kind >= ARG_KINDS)
		return;
	struct arg_set *set = &r->args[kind];
	u64 a0 = regs->di, a1 = regs->si, v = 0;
	switch (kind) {
	case ARG_CLONE:
		v = a0 & CLONE_NS_FLAGS;
		break;
	case ARG_CLONE3:
		// struct clone_args starts with its u64 flags
		if (bpf_probe_read_user(&v, sizeof(v), (void *)a0)) {
			if (!set->overflow)
				__sync_fetch_and_or(&set->overflow, 1);
			return;
		}
		v &= UNSHARE_NS_FLAGS;
		break;
	case ARG_UNSHARE:
		v = a0 & UNSHARE_NS_FLAGS;
		break;
	case ARG_SETNS:
	case ARG_PERSONALITY:
		v = (kind == ARG_SETNS ? a1 : a0) & 0xffffffffULL;
		break;
	default: // socket, socketpair
		v = ((a0 & 0xffff) << 16) | (a1 & SOCK_TYPE_MASK);
	}
	add_value(set, v);
}

// Whether a syscall of a namespace's program (not the runtime's set-up) has its arguments
// captured: one load and test of the config's bitmap.
static __always_inline int tracks_args(struct config *cfg, struct ns_record *r, u32 class, long nr)
{
	return class == 0 && (r->flags & FLAG_EXECED) &&
	       (cfg->arg_mask[((u64)nr >> 6) & (NR_WORDS - 1)] & (1ULL << (nr & 63)));
}

// A namespace nobody watches, met while armed: record it in `pending`.
static __always_inline int record_pending(struct config *cfg, struct task_struct *task,
					  struct pt_regs *regs, u64 mntns, long nr)
{
	u32 class;
	if (!classify(task, &nr, &class))
		return 0;
	struct ns_record *r = pending_entry(mntns, ns_generation(task));
	if (!r || r->flags & FLAG_IGNORED)
		return 0;
	set_bit(r, class, nr);
	if (tracks_args(cfg, r, class, nr))
		record_args(cfg, r, regs, nr);
	return 0;
}

SEC("tp_btf/sys_enter")
int sys_enter(u64 *ctx)
{
	long nr = (long)ctx[1];
	u32 zero = 0;
	struct config *cfg = bpf_map_lookup_elem(&config, &zero);
	if (!cfg || (!cfg->watched && !cfg->armed))
		return 0;

	struct task_struct *task = (struct task_struct *)bpf_get_current_task_btf();
	u64 mntns = task->nsproxy->mnt_ns->ns.inum;
	if (mntns == cfg->host_mntns)
		return 0;
	struct pt_regs *regs = (struct pt_regs *)ctx[0];
	struct ns_record *r = watched(cfg, mntns);
	if (r) {
		u32 class;
		if (classify(task, &nr, &class)) {
			set_bit(r, class, nr);
			if (tracks_args(cfg, r, class, nr))
				record_args(cfg, r, regs, nr);
		}
		return 0;
	}
	if (!cfg->armed)
		return 0;
	u32 b = mntns & (SLOT_BUCKETS - 1);
	if (cfg->ignored[b].ns == mntns && cfg->ignored[b].gen == ns_generation(task))
		return 0;
	return record_pending(cfg, task, regs, mntns, nr);
}

// Whether an exec is of "/proc/self/exe", how a runtime re-executes itself (runc, crun); no
// container's program is started by that name.
static __always_inline int runtime_reexec(struct linux_binprm *bprm)
{
	// one byte more than the name and its NUL: a longer name reads as 16 bytes
	char p[16] = {};
	if (!bprm || bpf_probe_read_kernel_str(p, sizeof(p), bprm->filename) != 15)
		return 0;
	return p[0] == '/' && p[1] == 'p' && p[2] == 'r' && p[3] == 'o' && p[4] == 'c' &&
	       p[5] == '/' && p[6] == 's' && p[7] == 'e' && p[8] == 'l' && p[9] == 'f' &&
	       p[10] == '/' && p[11] == 'e' && p[12] == 'x' && p[13] == 'e';
}

SEC("tp_btf/sched_process_exec")
int sched_process_exec(u64 *ctx)
{
	u32 zero = 0;
	struct config *cfg = bpf_map_lookup_elem(&config, &zero);
	if (!cfg || (!cfg->watched && !cfg->armed))
		return 0;
	struct task_struct *task = (struct task_struct *)bpf_get_current_task_btf();
	u64 mntns = task->nsproxy->mnt_ns->ns.inum;
	struct ns_record *r = watched(cfg, mntns);
	if (!r && cfg->armed)
		r = pending_entry(mntns, ns_generation(task));
	if (r && !(r->flags & FLAG_EXECED)) {
		// A runtime that re-executes itself inside the new namespace is not the program: runc
		// 1.2+ does so for a user-namespaced container (a helper for its idmapped mounts), before
		// the process joins the container's cgroup. Its exec would take the phase and a wrong
		// cgroup name, and the container would never be matched.
		if (runtime_reexec((struct linux_binprm *)ctx[2]))
			return 0;
		// By its program's exec the runtime has moved the process into the container's cgroup.
		const char *name = task->cgroups->dfl_cgrp->kn->name;
		bpf_probe_read_kernel_str(r->cgroup, sizeof(r->cgroup), name);
		__sync_fetch_and_or(&r->flags, FLAG_EXECED);
	}
	return 0;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
