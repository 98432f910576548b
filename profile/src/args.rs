//! Argument classes: for the few syscalls whose arguments decide between an everyday call and
//! a privilege boundary (new namespaces, raw and packet sockets, execution domains), the values
//! a recorded program passed, and the rules that allow exactly those.
//!
//! The recorder captures one value per call of a tracked syscall (see [`ArgKind`] for what the
//! value is), at most [`MAX_VALUES`] distinct ones per container; more, or a call it could not
//! read, makes the set "any". [`recorded_document`] turns recorded names and values into a
//! profile:
//! - a tracked syscall with a known value set gets one ALLOW rule per value, comparing the
//!   argument the value came from (`SCMP_CMP_MASKED_EQ` on the namespace bits of `clone` and
//!   `unshare`, `SCMP_CMP_EQ` on `setns`'s type and `personality`'s persona, the socket domain
//!   and type for `socket`/`socketpair`); any other value then fails with the profile's default
//!   action (EPERM);
//! - `clone3` passes its flags in memory, which seccomp cannot read. Where every recorded
//!   `clone3` left the namespace bits clear it answers ENOSYS, as the runtime default profiles
//!   do, and libc falls back to `clone`, which gets the same values; a `clone3` that created a
//!   namespace stays allowed as recorded;
//! - a tracked syscall with no value set (the Logs recorder, an ABI other than the native one,
//!   an overflow) is allowed with any arguments, as before argument classes existed.

use crate::document::{ArgCondition, SeccompDocument, SyscallRule};
use crate::types::{Action, Op};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// The namespace bits of `clone` flags (`CLONE_NEWNS`, `CLONE_NEWCGROUP`, `CLONE_NEWUTS`,
/// `CLONE_NEWIPC`, `CLONE_NEWUSER`, `CLONE_NEWPID`, `CLONE_NEWNET`): the mask the runtime
/// default profiles compare.
pub const CLONE_NS_FLAGS: u64 = 0x7E02_0000;
/// `CLONE_NEWTIME`: a namespace bit for `clone3` and `unshare` only (in `clone`'s flags the
/// same bit is part of the exit signal).
pub const CLONE_NEWTIME: u64 = 0x80;
/// The namespace bits of `clone3` and `unshare` flags.
pub const UNSHARE_NS_FLAGS: u64 = CLONE_NS_FLAGS | CLONE_NEWTIME;
/// `SOCK_TYPE_MASK`: the socket type without `SOCK_NONBLOCK`/`SOCK_CLOEXEC`.
pub const SOCK_TYPE_MASK: u64 = 0xf;
/// Distinct values kept per syscall and container; one more makes the set "any".
pub const MAX_VALUES: usize = 8;
/// ENOSYS, what `clone3` answers when libc is to fall back to `clone`.
pub const ENOSYS: u32 = 38;

/// A syscall whose argument class the recorder captures. The order of [`ArgKind::ALL`] is the
/// index the eBPF program uses (`ARG_*` in `recorder.bpf.c`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ArgKind {
    /// `clone`: the namespace bits of the flags (argument 0).
    Clone,
    /// `clone3`: the namespace bits of `clone_args.flags`, read from the caller's memory.
    Clone3,
    /// `unshare`: the namespace bits of the flags (argument 0).
    Unshare,
    /// `setns`: the namespace type (argument 1; 0 accepts any type).
    Setns,
    /// `socket`: `domain << 16 | type & SOCK_TYPE_MASK` (arguments 0 and 1).
    Socket,
    /// `socketpair`: as `socket`.
    Socketpair,
    /// `personality`: the persona (argument 0; 0xffffffff only queries).
    Personality,
}

impl ArgKind {
    /// Every kind, in the eBPF program's order.
    pub const ALL: [ArgKind; 7] = [
        ArgKind::Clone,
        ArgKind::Clone3,
        ArgKind::Unshare,
        ArgKind::Setns,
        ArgKind::Socket,
        ArgKind::Socketpair,
        ArgKind::Personality,
    ];

    /// The syscall's name.
    pub fn syscall(self) -> &'static str {
        match self {
            ArgKind::Clone => "clone",
            ArgKind::Clone3 => "clone3",
            ArgKind::Unshare => "unshare",
            ArgKind::Setns => "setns",
            ArgKind::Socket => "socket",
            ArgKind::Socketpair => "socketpair",
            ArgKind::Personality => "personality",
        }
    }

    /// The kind of a syscall name, if it is tracked.
    pub fn of(name: &str) -> Option<ArgKind> {
        ArgKind::ALL.into_iter().find(|k| k.syscall() == name)
    }

    /// The conditions that match exactly the calls whose captured value is `v`; `None` for
    /// `clone3` (its flags are not in a register).
    pub fn conditions(self, v: u64) -> Option<Vec<ArgCondition>> {
        let masked = |index, mask, value| ArgCondition {
            index,
            value: mask,
            value_two: value & mask,
            op: Op::MaskedEq,
        };
        let eq = |index, value| ArgCondition {
            index,
            value,
            value_two: 0,
            op: Op::Eq,
        };
        Some(match self {
            ArgKind::Clone => vec![masked(0, CLONE_NS_FLAGS, v)],
            ArgKind::Clone3 => return None,
            ArgKind::Unshare => vec![masked(0, UNSHARE_NS_FLAGS, v)],
            ArgKind::Setns => vec![eq(1, v & 0xffff_ffff)],
            ArgKind::Socket | ArgKind::Socketpair => vec![
                eq(0, (v >> 16) & 0xffff),
                masked(1, SOCK_TYPE_MASK, v & SOCK_TYPE_MASK),
            ],
            ArgKind::Personality => vec![eq(0, v & 0xffff_ffff)],
        })
    }

    /// A human reading of a captured value, for reports (`CLONE_NEWUSER|CLONE_NEWNET`,
    /// `AF_PACKET/SOCK_RAW`, `0x8`).
    pub fn describe(self, v: u64) -> String {
        match self {
            ArgKind::Clone | ArgKind::Clone3 | ArgKind::Unshare | ArgKind::Setns => {
                let names = ns_flag_names(v);
                if names.is_empty() {
                    "no namespace".into()
                } else {
                    names.join("|")
                }
            }
            ArgKind::Socket | ArgKind::Socketpair => {
                let domain = (v >> 16) & 0xffff;
                let ty = v & SOCK_TYPE_MASK;
                format!("{}/{}", family_name(domain), socket_type_name(ty))
            }
            ArgKind::Personality => format!("{v:#x}"),
        }
    }
}

const NS_FLAG_NAMES: [(u64, &str); 8] = [
    (0x0002_0000, "CLONE_NEWNS"),
    (0x0200_0000, "CLONE_NEWCGROUP"),
    (0x0400_0000, "CLONE_NEWUTS"),
    (0x0800_0000, "CLONE_NEWIPC"),
    (0x1000_0000, "CLONE_NEWUSER"),
    (0x2000_0000, "CLONE_NEWPID"),
    (0x4000_0000, "CLONE_NEWNET"),
    (CLONE_NEWTIME, "CLONE_NEWTIME"),
];

fn ns_flag_names(v: u64) -> Vec<&'static str> {
    NS_FLAG_NAMES
        .iter()
        .filter(|(bit, _)| v & bit != 0)
        .map(|(_, n)| *n)
        .collect()
}

fn family_name(domain: u64) -> String {
    match domain {
        0 => "AF_UNSPEC".into(),
        1 => "AF_UNIX".into(),
        2 => "AF_INET".into(),
        10 => "AF_INET6".into(),
        16 => "AF_NETLINK".into(),
        17 => "AF_PACKET".into(),
        40 => "AF_VSOCK".into(),
        d => format!("family {d}"),
    }
}

fn socket_type_name(ty: u64) -> String {
    match ty {
        1 => "SOCK_STREAM".into(),
        2 => "SOCK_DGRAM".into(),
        3 => "SOCK_RAW".into(),
        5 => "SOCK_SEQPACKET".into(),
        10 => "SOCK_PACKET".into(),
        t => format!("type {t}"),
    }
}

/// What the recorder saw of one tracked syscall's argument class in one container.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RecordedArgs {
    /// The syscall (`clone`, `clone3`, `unshare`, `setns`, `socket`, `socketpair`,
    /// `personality`).
    #[schemars(length(max = 32))]
    pub syscall: String,
    /// The distinct values seen (what each syscall's value is: the architecture page's "argument
    /// rules").
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = MAX_VALUES))]
    pub values: Vec<u64>,
    /// More distinct values than are kept, or a call whose value could not be read: any value
    /// is allowed.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub any: bool,
}

/// A set of argument classes, by syscall.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ArgClasses(BTreeMap<ArgKind, Option<BTreeSet<u64>>>);

impl ArgClasses {
    /// Read recorded classes; entries for untracked syscalls are ignored, a set over
    /// [`MAX_VALUES`] becomes "any".
    pub fn from_recorded(recorded: &[RecordedArgs]) -> Self {
        let mut out = ArgClasses::default();
        for r in recorded {
            let Some(kind) = ArgKind::of(&r.syscall) else {
                continue;
            };
            if r.any {
                out.set_any(kind);
            } else {
                for v in &r.values {
                    out.add(kind, *v);
                }
            }
        }
        out
    }

    /// Add one value; past [`MAX_VALUES`] the set becomes "any".
    pub fn add(&mut self, kind: ArgKind, v: u64) {
        let slot = self.0.entry(kind).or_insert_with(|| Some(BTreeSet::new()));
        if let Some(set) = slot {
            set.insert(v);
            if set.len() > MAX_VALUES {
                *slot = None;
            }
        }
    }

    /// Mark a syscall's class "any".
    pub fn set_any(&mut self, kind: ArgKind) {
        self.0.insert(kind, None);
    }

    /// The union with `other`.
    pub fn union(&mut self, other: &ArgClasses) {
        for (kind, set) in &other.0 {
            match set {
                None => self.set_any(*kind),
                Some(vs) => {
                    self.0.entry(*kind).or_insert_with(|| Some(BTreeSet::new()));
                    for v in vs {
                        self.add(*kind, *v);
                    }
                }
            }
        }
    }

    /// The values of `kind`: `None` when unknown, empty or "any".
    pub fn values(&self, kind: ArgKind) -> Option<&BTreeSet<u64>> {
        self.0
            .get(&kind)
            .and_then(Option::as_ref)
            .filter(|s| !s.is_empty())
    }

    /// Back to the serialised form, ordered by kind.
    pub fn to_recorded(&self) -> Vec<RecordedArgs> {
        self.0
            .iter()
            .map(|(kind, set)| RecordedArgs {
                syscall: kind.syscall().to_owned(),
                values: set.iter().flatten().copied().collect(),
                any: set.is_none(),
            })
            .collect()
    }
}

/// The union of two recorded lists (see [`ArgClasses::union`]).
pub fn union_recorded(a: &[RecordedArgs], b: &[RecordedArgs]) -> Vec<RecordedArgs> {
    let mut out = ArgClasses::from_recorded(a);
    out.union(&ArgClasses::from_recorded(b));
    out.to_recorded()
}

/// The recorded profile of `names` with argument classes `args`: default `SCMP_ACT_ERRNO`
/// (EPERM), one ALLOW rule for every name whose arguments are not checked, and the argument
/// rules of the module documentation. Not canonical: callers render or merge it.
pub fn recorded_document<I, S>(names: I, args: &ArgClasses) -> SeccompDocument
where
    I: IntoIterator<Item = S>,
    S: Into<String>,
{
    let mut names: BTreeSet<String> = names.into_iter().map(Into::into).collect();
    let mut rules: Vec<SyscallRule> = Vec::new();
    let allow = |name: &str, args: Vec<ArgCondition>| SyscallRule {
        names: vec![name.to_owned()],
        action: Action::Allow,
        errno_ret: None,
        args,
    };

    // clone3 with the namespace bits clear everywhere: ENOSYS, and libc's fallback `clone`
    // gets the same values.
    let mut clone_values = args.values(ArgKind::Clone).cloned();
    if names.contains("clone3") {
        if let Some(v3) = args.values(ArgKind::Clone3) {
            if v3.iter().all(|v| v & UNSHARE_NS_FLAGS == 0) {
                names.remove("clone3");
                rules.push(SyscallRule {
                    names: vec!["clone3".into()],
                    action: Action::Errno,
                    errno_ret: Some(ENOSYS),
                    args: Vec::new(),
                });
                let plain_clone = names.contains("clone") && clone_values.is_none();
                if !plain_clone {
                    let set = clone_values.get_or_insert_with(BTreeSet::new);
                    set.extend(v3.iter().map(|v| v & CLONE_NS_FLAGS));
                    names.insert("clone".into());
                }
            }
        }
    }

    for kind in ArgKind::ALL {
        let name = kind.syscall();
        if !names.contains(name) {
            continue;
        }
        let values = match kind {
            ArgKind::Clone => clone_values.as_ref(),
            k => args.values(k),
        };
        let Some(values) = values else {
            continue;
        };
        let conds: Option<Vec<Vec<ArgCondition>>> =
            values.iter().map(|v| kind.conditions(*v)).collect();
        if let Some(conds) = conds {
            names.remove(name);
            rules.extend(conds.into_iter().map(|c| allow(name, c)));
        }
    }
    let mut doc = SeccompDocument::allowlist(names);
    doc.syscalls.extend(rules);
    doc
}
