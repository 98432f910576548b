//! The layouts shared with `bpf/recorder.bpf.c`: constants and the Rust mirrors of its
//! structs. Each mirror's size and field offsets are checked at compile time against the C
//! definitions (the numbers below are the C compiler's: clang -target bpf lays out these
//! structs without padding).

use aya::Pod;
use std::mem::{offset_of, size_of};

pub(crate) const NR_WORDS: usize = 16;
pub(crate) const NR_CLASSES: usize = 3;
pub(crate) const FLAG_EXECED: u64 = 1;
pub(crate) const FLAG_IGNORED: u64 = 2;
pub(crate) const X32_SYSCALL_BIT: i32 = 0x4000_0000;
/// `BPF_NOEXIST` flag of bpf_map_update_elem.
pub(crate) const BPF_NOEXIST: u64 = 1;

pub(crate) const CGROUP_NAME_LEN: usize = 72;

/// Argument-class kinds (`ARG_KINDS`; the order of `seccomp_profile::ArgKind::ALL`).
pub(crate) const ARG_KINDS: usize = 7;
/// Values kept per kind (`ARG_VALUES`; the model's `MAX_VALUES`).
pub(crate) const ARG_VALUES: usize = 8;
/// Marks a used value slot (`ARG_PRESENT`).
pub(crate) const ARG_PRESENT: u64 = 1 << 63;

/// Mirror of `struct arg_set`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ArgSet {
    pub(crate) overflow: u64,
    pub(crate) vals: [u64; ARG_VALUES],
}

/// Mirror of `struct ns_record`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NsRecord {
    pub(crate) flags: u64,
    pub(crate) gen: u64,
    pub(crate) cgroup: [u8; CGROUP_NAME_LEN],
    pub(crate) bits: [[[u64; NR_WORDS]; NR_CLASSES]; 2],
    pub(crate) args: [ArgSet; ARG_KINDS],
}

// SAFETY: plain old data, `repr(C)`, no padding, any bit pattern valid.
unsafe impl Pod for NsRecord {}

impl Default for NsRecord {
    fn default() -> Self {
        NsRecord {
            flags: 0,
            gen: 0,
            cgroup: [0; CGROUP_NAME_LEN],
            bits: [[[0; NR_WORDS]; NR_CLASSES]; 2],
            args: [ArgSet::default(); ARG_KINDS],
        }
    }
}

pub(crate) const MAX_SLOTS: usize = 256;
pub(crate) const SLOT_BUCKETS: u64 = 1024;

/// Mirror of `struct config`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub(crate) struct Config {
    pub(crate) host_mntns: u64,
    pub(crate) armed: u32,
    pub(crate) watched: u32,
    pub(crate) hashed: u32,
    pub(crate) pad: u32,
    pub(crate) slot_ns: [u64; MAX_SLOTS],
    pub(crate) slot_of: [u16; SLOT_BUCKETS as usize],
    /// (namespace, generation) per bucket.
    pub(crate) ignored: [[u64; 2]; SLOT_BUCKETS as usize],
    /// Bitmap of the syscall numbers in `arg_nr`.
    pub(crate) arg_mask: [u64; NR_WORDS],
    /// Native syscall number per argument kind, -1 where none (8 for alignment; the last unused).
    pub(crate) arg_nr: [i32; 8],
}

// SAFETY: plain old data, `repr(C)`, no padding (u64, 4 x u32, u64 array, u16 array of
// 2 KiB, which keeps the u64 pairs after it aligned).
unsafe impl Pod for Config {}

pub(crate) const NOTE_LEN: usize = 1020;

/// Mirror of `struct note`.
#[repr(C)]
#[derive(Clone, Copy)]
pub(crate) struct Note {
    pub(crate) len: u32,
    pub(crate) data: [u8; NOTE_LEN],
}

// SAFETY: plain old data, `repr(C)`, no padding (u32 + 1020 bytes), any bit pattern valid.
unsafe impl Pod for Note {}

// Compile-time checks against `struct ns_record`, `struct config` and `struct note`.
const _: () = {
    assert!(size_of::<ArgSet>() == 8 + ARG_VALUES * 8);
    assert!(
        size_of::<NsRecord>()
            == 8 + 8 + CGROUP_NAME_LEN + 2 * NR_CLASSES * NR_WORDS * 8 + ARG_KINDS * 72
    );
    assert!(size_of::<NsRecord>() == 1360);
    assert!(offset_of!(NsRecord, args) == 856);
    assert!(offset_of!(NsRecord, gen) == 8);
    assert!(offset_of!(NsRecord, cgroup) == 16);
    assert!(offset_of!(NsRecord, bits) == 88);
    assert!(size_of::<Config>() == 20504 + NR_WORDS * 8 + 32);
    assert!(offset_of!(Config, arg_mask) == 20504);
    assert!(offset_of!(Config, arg_nr) == 20504 + NR_WORDS * 8);
    assert!(offset_of!(Config, armed) == 8);
    assert!(offset_of!(Config, watched) == 12);
    assert!(offset_of!(Config, hashed) == 16);
    assert!(offset_of!(Config, slot_ns) == 24);
    assert!(offset_of!(Config, slot_of) == 24 + MAX_SLOTS * 8);
    assert!(offset_of!(Config, ignored) == 24 + MAX_SLOTS * 8 + SLOT_BUCKETS as usize * 2);
    assert!(size_of::<Note>() == 1024);
    assert!(offset_of!(Note, data) == 4);
};
