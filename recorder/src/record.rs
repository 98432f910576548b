//! Decoding a namespace's record: syscall numbers per phase and ABI, and their names.

use crate::layout::{
    NsRecord, ARG_PRESENT, ARG_VALUES, CGROUP_NAME_LEN, FLAG_EXECED, NR_CLASSES, NR_WORDS,
    X32_SYSCALL_BIT,
};
use seccomp_profile::{Arch, ArgClasses, ArgKind};
use std::collections::{BTreeMap, BTreeSet};

/// Which part of a namespace's life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Before its first exec: the container runtime's set-up.
    BeforeExec,
    /// From its first exec on: the container's own program.
    AfterExec,
}

impl NsRecord {
    /// Whether a process of the namespace has exec'd.
    pub fn execed(&self) -> bool {
        self.flags & FLAG_EXECED != 0
    }

    /// The name of the cgroup the namespace's program exec'd in (a container ID for the
    /// common runtimes), once it has exec'd.
    pub fn cgroup_name(&self) -> Option<String> {
        let end = self
            .cgroup
            .iter()
            .position(|b| *b == 0)
            .unwrap_or(CGROUP_NAME_LEN);
        (end > 0).then(|| String::from_utf8_lossy(&self.cgroup[..end]).into_owned())
    }

    /// The never-reused id of the namespace the record belongs to (0 where the kernel has
    /// none).
    pub fn generation(&self) -> u64 {
        self.gen
    }

    /// Union of two records (bits and flags).
    pub fn union(&mut self, other: &NsRecord) {
        self.flags |= other.flags & FLAG_EXECED;
        if self.cgroup[0] == 0 {
            self.cgroup = other.cgroup;
        }
        for (a, b) in self
            .bits
            .iter_mut()
            .flatten()
            .flatten()
            .zip(other.bits.iter().flatten().flatten())
        {
            *a |= *b;
        }
        for (mine, theirs) in self.args.iter_mut().zip(other.args.iter()) {
            mine.overflow |= theirs.overflow;
            for v in theirs.vals.iter().filter(|v| **v & ARG_PRESENT != 0) {
                if mine.vals.contains(v) {
                    continue;
                }
                match mine.vals.iter_mut().find(|s| **s == 0) {
                    Some(free) => *free = *v,
                    None => mine.overflow = 1,
                }
            }
        }
    }

    /// The argument classes of the program's calls (from its exec on). A tracked syscall that
    /// was also called through a compat ABI (whose arguments are not captured) is "any".
    pub fn arguments(&self) -> ArgClasses {
        let mut out = ArgClasses::default();
        for (kind, set) in ArgKind::ALL.iter().zip(self.args.iter()) {
            if set.overflow != 0 {
                out.set_any(*kind);
                continue;
            }
            for v in set.vals.iter().filter(|v| **v & ARG_PRESENT != 0) {
                out.add(*kind, v & !ARG_PRESENT);
            }
        }
        let native = Arch::native();
        for (arch, names) in self.names(Phase::AfterExec) {
            if arch == native {
                continue;
            }
            for kind in names.iter().filter_map(|n| ArgKind::of(n)) {
                out.set_any(kind);
            }
        }
        out
    }

    /// Add a captured argument value (for tests).
    pub fn add_argument(&mut self, kind: ArgKind, v: u64) {
        let k = ArgKind::ALL.iter().position(|x| *x == kind).unwrap_or(0);
        let set = &mut self.args[k];
        let v = v | ARG_PRESENT;
        if !set.vals.contains(&v) {
            match set.vals.iter_mut().take(ARG_VALUES).find(|s| **s == 0) {
                Some(free) => *free = v,
                None => set.overflow = 1,
            }
        }
    }

    /// Raw syscall numbers recorded in `phase`, per class (0 native, 1 ia32, 2 x32).
    pub fn numbers(&self, phase: Phase) -> [Vec<i32>; NR_CLASSES] {
        let p = match phase {
            Phase::BeforeExec => 0,
            Phase::AfterExec => 1,
        };
        std::array::from_fn(|class| {
            let mut v = Vec::new();
            for (w, word) in self.bits[p][class].iter().enumerate() {
                for bit in 0..64 {
                    if word & (1u64 << bit) != 0 {
                        v.push((w * 64 + bit) as i32);
                    }
                }
            }
            v
        })
    }

    /// Set a bit (for tests and for merging userspace knowledge).
    pub fn set(&mut self, phase: Phase, class: usize, nr: i32) {
        let p = usize::from(phase == Phase::AfterExec);
        let nr = nr as usize;
        self.bits[p][class][(nr / 64) % NR_WORDS] |= 1u64 << (nr % 64);
    }

    /// Syscall names per architecture, resolved by libseccomp: native numbers on the native
    /// architecture, compat numbers on the compat one (so ia32's 5 is `open`, not `fstat`).
    pub fn names(&self, phase: Phase) -> BTreeMap<Arch, BTreeSet<String>> {
        let native = Arch::native();
        let classes: [Option<(Arch, i32)>; NR_CLASSES] = match native {
            Arch::X86_64 => [
                Some((Arch::X86_64, 0)),
                Some((Arch::X86, 0)),
                Some((Arch::X32, X32_SYSCALL_BIT)),
            ],
            Arch::Aarch64 => [Some((Arch::Aarch64, 0)), Some((Arch::Arm, 0)), None],
            other => [Some((other, 0)), None, None],
        };
        let mut out: BTreeMap<Arch, BTreeSet<String>> = BTreeMap::new();
        for (class, nrs) in self.numbers(phase).into_iter().enumerate() {
            let Some((arch, offset)) = classes[class] else {
                continue;
            };
            for nr in nrs {
                let name = seccomp_filter::syscall_name(arch, nr | offset)
                    .unwrap_or_else(|| format!("__unknown_{}_{nr}", arch.as_str().to_lowercase()));
                out.entry(arch).or_default().insert(name);
            }
        }
        out
    }

    /// All names of `phase`, any architecture.
    pub fn all_names(&self, phase: Phase) -> BTreeSet<String> {
        self.names(phase).into_values().flatten().collect()
    }
}
