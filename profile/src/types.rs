//! The closed sets of the OCI runtime-spec `linux.seccomp` section, as Rust enums.
//!
//! Every enum serialises to exactly the string the runtime-spec uses, so a value that parses
//! here is one runc, crun and containerd accept.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::fmt;

/// What the kernel does when a syscall matches a rule (or no rule, for `defaultAction`).
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
pub enum Action {
    /// Kill the calling thread (the legacy name of `SCMP_ACT_KILL_THREAD`).
    #[serde(rename = "SCMP_ACT_KILL")]
    Kill,
    /// Kill the whole process.
    #[serde(rename = "SCMP_ACT_KILL_PROCESS")]
    KillProcess,
    /// Kill the calling thread.
    #[serde(rename = "SCMP_ACT_KILL_THREAD")]
    KillThread,
    /// Send SIGSYS to the calling thread.
    #[serde(rename = "SCMP_ACT_TRAP")]
    Trap,
    /// Fail the syscall with the rule's `errnoRet` (EPERM when unset).
    #[serde(rename = "SCMP_ACT_ERRNO")]
    Errno,
    /// Notify a ptrace tracer, passing `errnoRet` as the message.
    #[serde(rename = "SCMP_ACT_TRACE")]
    Trace,
    /// Let the syscall run.
    #[serde(rename = "SCMP_ACT_ALLOW")]
    Allow,
    /// Let the syscall run and log it to the kernel audit log.
    #[serde(rename = "SCMP_ACT_LOG")]
    Log,
    /// Pass the syscall to the user-space agent listening at `listenerPath`.
    #[serde(rename = "SCMP_ACT_NOTIFY")]
    Notify,
}

impl Action {
    /// All actions, in declaration order.
    pub const ALL: [Action; 9] = [
        Action::Kill,
        Action::KillProcess,
        Action::KillThread,
        Action::Trap,
        Action::Errno,
        Action::Trace,
        Action::Allow,
        Action::Log,
        Action::Notify,
    ];

    /// The runtime-spec spelling, e.g. `SCMP_ACT_ALLOW`.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Kill => "SCMP_ACT_KILL",
            Action::KillProcess => "SCMP_ACT_KILL_PROCESS",
            Action::KillThread => "SCMP_ACT_KILL_THREAD",
            Action::Trap => "SCMP_ACT_TRAP",
            Action::Errno => "SCMP_ACT_ERRNO",
            Action::Trace => "SCMP_ACT_TRACE",
            Action::Allow => "SCMP_ACT_ALLOW",
            Action::Log => "SCMP_ACT_LOG",
            Action::Notify => "SCMP_ACT_NOTIFY",
        }
    }

    /// Whether the action carries a return value (`errnoRet` / `defaultErrnoRet`).
    pub fn takes_errno(self) -> bool {
        matches!(self, Action::Errno | Action::Trace)
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Comparison applied to one syscall argument.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
pub enum Op {
    /// Argument is not equal to `value`.
    #[serde(rename = "SCMP_CMP_NE")]
    Ne,
    /// Argument is less than `value`.
    #[serde(rename = "SCMP_CMP_LT")]
    Lt,
    /// Argument is less than or equal to `value`.
    #[serde(rename = "SCMP_CMP_LE")]
    Le,
    /// Argument equals `value`.
    #[serde(rename = "SCMP_CMP_EQ")]
    Eq,
    /// Argument is greater than or equal to `value`.
    #[serde(rename = "SCMP_CMP_GE")]
    Ge,
    /// Argument is greater than `value`.
    #[serde(rename = "SCMP_CMP_GT")]
    Gt,
    /// Argument masked with `value` equals `valueTwo`.
    #[serde(rename = "SCMP_CMP_MASKED_EQ")]
    MaskedEq,
}

impl Op {
    /// The runtime-spec spelling, e.g. `SCMP_CMP_EQ`.
    pub fn as_str(self) -> &'static str {
        match self {
            Op::Ne => "SCMP_CMP_NE",
            Op::Lt => "SCMP_CMP_LT",
            Op::Le => "SCMP_CMP_LE",
            Op::Eq => "SCMP_CMP_EQ",
            Op::Ge => "SCMP_CMP_GE",
            Op::Gt => "SCMP_CMP_GT",
            Op::MaskedEq => "SCMP_CMP_MASKED_EQ",
        }
    }
}

/// A seccomp architecture (the `AUDIT_ARCH_*` a filter matches), runtime-spec spelling.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[allow(missing_docs)]
pub enum Arch {
    #[serde(rename = "SCMP_ARCH_X86")]
    X86,
    #[serde(rename = "SCMP_ARCH_X86_64")]
    X86_64,
    #[serde(rename = "SCMP_ARCH_X32")]
    X32,
    #[serde(rename = "SCMP_ARCH_ARM")]
    Arm,
    #[serde(rename = "SCMP_ARCH_AARCH64")]
    Aarch64,
    #[serde(rename = "SCMP_ARCH_MIPS")]
    Mips,
    #[serde(rename = "SCMP_ARCH_MIPS64")]
    Mips64,
    #[serde(rename = "SCMP_ARCH_MIPS64N32")]
    Mips64N32,
    #[serde(rename = "SCMP_ARCH_MIPSEL")]
    Mipsel,
    #[serde(rename = "SCMP_ARCH_MIPSEL64")]
    Mipsel64,
    #[serde(rename = "SCMP_ARCH_MIPSEL64N32")]
    Mipsel64N32,
    #[serde(rename = "SCMP_ARCH_PPC")]
    Ppc,
    #[serde(rename = "SCMP_ARCH_PPC64")]
    Ppc64,
    #[serde(rename = "SCMP_ARCH_PPC64LE")]
    Ppc64Le,
    #[serde(rename = "SCMP_ARCH_S390")]
    S390,
    #[serde(rename = "SCMP_ARCH_S390X")]
    S390X,
    #[serde(rename = "SCMP_ARCH_PARISC")]
    Parisc,
    #[serde(rename = "SCMP_ARCH_PARISC64")]
    Parisc64,
    #[serde(rename = "SCMP_ARCH_RISCV64")]
    Riscv64,
    #[serde(rename = "SCMP_ARCH_LOONGARCH64")]
    Loongarch64,
    #[serde(rename = "SCMP_ARCH_M68K")]
    M68k,
    #[serde(rename = "SCMP_ARCH_SH")]
    Sh,
    #[serde(rename = "SCMP_ARCH_SHEB")]
    Sheb,
}

impl Arch {
    /// The architecture this binary was built for.
    pub fn native() -> Arch {
        if cfg!(target_arch = "x86_64") {
            Arch::X86_64
        } else if cfg!(target_arch = "aarch64") {
            Arch::Aarch64
        } else if cfg!(target_arch = "x86") {
            Arch::X86
        } else if cfg!(target_arch = "arm") {
            Arch::Arm
        } else if cfg!(all(target_arch = "powerpc64", target_endian = "little")) {
            Arch::Ppc64Le
        } else if cfg!(target_arch = "powerpc64") {
            Arch::Ppc64
        } else if cfg!(target_arch = "s390x") {
            Arch::S390X
        } else if cfg!(target_arch = "riscv64") {
            Arch::Riscv64
        } else if cfg!(target_arch = "loongarch64") {
            Arch::Loongarch64
        } else {
            Arch::X86_64
        }
    }

    /// The compat architectures whose syscalls a process of this architecture can also make
    /// (the sub-architectures of Docker's `archMap`).
    pub fn compat(self) -> &'static [Arch] {
        match self {
            Arch::X86_64 => &[Arch::X86, Arch::X32],
            Arch::Aarch64 => &[Arch::Arm],
            Arch::Mips64 => &[Arch::Mips, Arch::Mips64N32],
            Arch::Mips64N32 => &[Arch::Mips, Arch::Mips64],
            Arch::Mipsel64 => &[Arch::Mipsel, Arch::Mipsel64N32],
            Arch::Mipsel64N32 => &[Arch::Mipsel, Arch::Mipsel64],
            Arch::S390X => &[Arch::S390],
            Arch::Ppc64 => &[Arch::Ppc],
            Arch::Parisc64 => &[Arch::Parisc],
            _ => &[],
        }
    }

    /// This architecture followed by its compat architectures.
    pub fn with_compat(self) -> Vec<Arch> {
        let mut v = vec![self];
        v.extend_from_slice(self.compat());
        v
    }

    /// The name Docker's `includes.arches` / `excludes.arches` use (Go's `GOARCH`).
    pub fn docker_name(self) -> &'static str {
        match self {
            Arch::X86 => "386",
            Arch::X86_64 => "amd64",
            Arch::X32 => "x32",
            Arch::Arm => "arm",
            Arch::Aarch64 => "arm64",
            Arch::Mips => "mips",
            Arch::Mips64 => "mips64",
            Arch::Mips64N32 => "mips64n32",
            Arch::Mipsel => "mipsle",
            Arch::Mipsel64 => "mips64le",
            Arch::Mipsel64N32 => "mips64len32",
            Arch::Ppc => "ppc",
            Arch::Ppc64 => "ppc64",
            Arch::Ppc64Le => "ppc64le",
            Arch::S390 => "s390",
            Arch::S390X => "s390x",
            Arch::Parisc => "parisc",
            Arch::Parisc64 => "parisc64",
            Arch::Riscv64 => "riscv64",
            Arch::Loongarch64 => "loong64",
            Arch::M68k => "m68k",
            Arch::Sh => "sh",
            Arch::Sheb => "sheb",
        }
    }

    /// The runtime-spec spelling, e.g. `SCMP_ARCH_X86_64`.
    pub fn as_str(self) -> String {
        serde_json::to_value(self)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default()
    }
}

impl fmt::Display for Arch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.as_str())
    }
}

/// A flag passed to `seccomp(SECCOMP_SET_MODE_FILTER, ...)`.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
pub enum Flag {
    /// Synchronise the filter to all threads of the process.
    #[serde(rename = "SECCOMP_FILTER_FLAG_TSYNC")]
    Tsync,
    /// Log every action except `SCMP_ACT_ALLOW`.
    #[serde(rename = "SECCOMP_FILTER_FLAG_LOG")]
    Log,
    /// Do not disable the Speculative Store Bypass mitigation.
    #[serde(rename = "SECCOMP_FILTER_FLAG_SPEC_ALLOW")]
    SpecAllow,
    /// Wait killable while a notifying syscall is being received.
    #[serde(rename = "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV")]
    WaitKillableRecv,
}

impl Flag {
    /// All flags, in declaration order.
    pub const ALL: [Flag; 4] = [
        Flag::Tsync,
        Flag::Log,
        Flag::SpecAllow,
        Flag::WaitKillableRecv,
    ];

    /// The runtime-spec spelling, e.g. `SECCOMP_FILTER_FLAG_LOG`.
    pub fn as_str(self) -> &'static str {
        match self {
            Flag::Tsync => "SECCOMP_FILTER_FLAG_TSYNC",
            Flag::Log => "SECCOMP_FILTER_FLAG_LOG",
            Flag::SpecAllow => "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
            Flag::WaitKillableRecv => "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV",
        }
    }
}

/// The largest value `errnoRet` can carry (`SECCOMP_RET_DATA` is 16 bits wide).
pub const MAX_RET_DATA: u32 = 0xffff;

/// The largest errno an SCMP_ACT_ERRNO rule can return: the kernel caps the value at its
/// `MAX_ERRNO` (4095), and libseccomp refuses 4095 and above.
pub const MAX_ERRNO: u32 = 4094;

/// The largest return value `action` can carry: [`MAX_ERRNO`] for SCMP_ACT_ERRNO,
/// [`MAX_RET_DATA`] for SCMP_ACT_TRACE.
pub fn max_ret(action: Action) -> u32 {
    if action == Action::Errno {
        MAX_ERRNO
    } else {
        MAX_RET_DATA
    }
}

/// The return value an `SCMP_ACT_ERRNO`/`SCMP_ACT_TRACE` rule gets when it names none (EPERM),
/// as runc and crun do.
pub const DEFAULT_ERRNO: u32 = 1;

/// The highest syscall argument index.
pub const MAX_ARG_INDEX: u32 = 5;
