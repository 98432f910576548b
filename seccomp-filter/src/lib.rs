//! The libseccomp boundary of seccomp-operator: everything that turns a profile document into a
//! kernel filter, and syscall names into numbers and back, lives here (and only here).

#![forbid(unsafe_code)]

use libseccomp::{
    error::SeccompError, ScmpAction, ScmpArch, ScmpArgCompare, ScmpCompareOp, ScmpFilterContext,
    ScmpSyscall,
};
use seccomp_profile::{Action, Arch, Flag, Op, SeccompDocument, SyscallTable};

/// Why a document could not be turned into a filter.
#[derive(Debug, thiserror::Error)]
pub enum CompileError {
    /// libseccomp refused a part of the document.
    #[error("{field}: libseccomp refused it")]
    Refused {
        /// The field of the document, e.g. `syscalls[3].names[0]`.
        field: String,
        /// libseccomp's error.
        #[source]
        source: SeccompError,
    },
    /// Exporting the filter failed.
    #[error("exporting the filter")]
    Export(#[source] std::io::Error),
    /// Loading the filter into the kernel failed.
    #[error("loading the filter into the kernel failed")]
    Load(#[source] SeccompError),
}

/// A compiled filter, ready to load.
pub struct Filter {
    ctx: ScmpFilterContext,
    /// Names no architecture of this libseccomp knows; runc and crun skip them the same way.
    pub skipped: Vec<String>,
}

impl std::fmt::Debug for Filter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Filter")
            .field("skipped", &self.skipped)
            .finish()
    }
}

/// libseccomp's name for an architecture.
pub fn scmp_arch(arch: Arch) -> ScmpArch {
    match arch {
        Arch::X86 => ScmpArch::X86,
        Arch::X86_64 => ScmpArch::X8664,
        Arch::X32 => ScmpArch::X32,
        Arch::Arm => ScmpArch::Arm,
        Arch::Aarch64 => ScmpArch::Aarch64,
        Arch::Mips => ScmpArch::Mips,
        Arch::Mips64 => ScmpArch::Mips64,
        Arch::Mips64N32 => ScmpArch::Mips64N32,
        Arch::Mipsel => ScmpArch::Mipsel,
        Arch::Mipsel64 => ScmpArch::Mipsel64,
        Arch::Mipsel64N32 => ScmpArch::Mipsel64N32,
        Arch::Ppc => ScmpArch::Ppc,
        Arch::Ppc64 => ScmpArch::Ppc64,
        Arch::Ppc64Le => ScmpArch::Ppc64Le,
        Arch::S390 => ScmpArch::S390,
        Arch::S390X => ScmpArch::S390X,
        Arch::Parisc => ScmpArch::Parisc,
        Arch::Parisc64 => ScmpArch::Parisc64,
        Arch::Riscv64 => ScmpArch::Riscv64,
        Arch::Loongarch64 => ScmpArch::Loongarch64,
        Arch::M68k => ScmpArch::M68k,
        Arch::Sh => ScmpArch::Sh,
        Arch::Sheb => ScmpArch::Sheb,
    }
}

fn scmp_action(action: Action, ret: Option<u32>) -> ScmpAction {
    let ret = ret.unwrap_or(seccomp_profile::types::DEFAULT_ERRNO);
    match action {
        Action::Kill | Action::KillThread => ScmpAction::KillThread,
        Action::KillProcess => ScmpAction::KillProcess,
        Action::Trap => ScmpAction::Trap,
        Action::Errno => ScmpAction::Errno(ret as i32),
        Action::Trace => ScmpAction::Trace(ret as u16),
        Action::Allow => ScmpAction::Allow,
        Action::Log => ScmpAction::Log,
        Action::Notify => ScmpAction::Notify,
    }
}

fn scmp_cmp(arg: &seccomp_profile::ArgCondition) -> ScmpArgCompare {
    let op = match arg.op {
        Op::Ne => ScmpCompareOp::NotEqual,
        Op::Lt => ScmpCompareOp::Less,
        Op::Le => ScmpCompareOp::LessOrEqual,
        Op::Eq => ScmpCompareOp::Equal,
        Op::Ge => ScmpCompareOp::GreaterEqual,
        Op::Gt => ScmpCompareOp::Greater,
        Op::MaskedEq => ScmpCompareOp::MaskedEqual(arg.value),
    };
    let datum = if arg.op == Op::MaskedEq {
        arg.value_two
    } else {
        arg.value
    };
    ScmpArgCompare::new(arg.index, op, datum)
}

/// Compile a document into a filter the way runc does: the native architecture plus the listed
/// ones, one libseccomp rule per (rule, name), names unknown to libseccomp skipped. The document
/// should be canonical (rules whose action equals the default are refused by libseccomp).
pub fn compile(doc: &SeccompDocument) -> Result<Filter, CompileError> {
    let refused = |field: String| move |source| CompileError::Refused { field, source };
    let mut ctx = ScmpFilterContext::new(scmp_action(doc.default_action, doc.default_errno_ret))
        .map_err(refused("defaultAction".into()))?;
    for (i, arch) in doc.architectures.iter().enumerate() {
        let a = scmp_arch(*arch);
        if !ctx.is_arch_present(a).unwrap_or(false) {
            ctx.add_arch(a)
                .map_err(refused(format!("architectures[{i}]")))?;
        }
    }
    for (i, flag) in doc.flags.iter().enumerate() {
        let field = format!("flags[{i}]");
        match flag {
            Flag::Tsync => ctx.set_ctl_tsync(true),
            Flag::Log => ctx.set_ctl_log(true),
            Flag::SpecAllow => ctx.set_ctl_ssb(true),
            Flag::WaitKillableRecv => ctx.set_ctl_waitkill(true),
        }
        .map_err(refused(field))?;
    }
    let mut skipped = Vec::new();
    for (i, rule) in doc.syscalls.iter().enumerate() {
        let action = scmp_action(rule.action, rule.errno_ret);
        let cmps: Vec<ScmpArgCompare> = rule.args.iter().map(scmp_cmp).collect();
        for (j, name) in rule.names.iter().enumerate() {
            let Ok(sys) = ScmpSyscall::from_name(name) else {
                skipped.push(name.clone());
                continue;
            };
            ctx.add_rule_conditional(action, sys, &cmps)
                .map_err(refused(format!("syscalls[{i}].names[{j}]")))?;
        }
    }
    Ok(Filter { ctx, skipped })
}

impl Filter {
    /// The filter as classic BPF, as the kernel receives it.
    pub fn bpf(&self) -> Result<Vec<u8>, CompileError> {
        use std::io::{Read, Seek};
        let refused = |source| CompileError::Refused {
            field: "(filter)".into(),
            source,
        };
        let fd = nix::sys::memfd::memfd_create(
            c"seccomp-bpf",
            nix::sys::memfd::MemFdCreateFlag::MFD_CLOEXEC,
        )
        .map_err(|e| CompileError::Export(e.into()))?;
        let mut file = std::fs::File::from(fd);
        self.ctx.export_bpf(&file).map_err(refused)?;
        let mut out = Vec::new();
        file.rewind()
            .and_then(|_| file.read_to_end(&mut out))
            .map_err(CompileError::Export)?;
        Ok(out)
    }

    /// Number of BPF instructions of the filter.
    pub fn instructions(&self) -> usize {
        self.bpf().map(|b| b.len() / 8).unwrap_or(0)
    }

    /// Load the filter into the calling thread (setting NoNewPrivileges first, as libseccomp
    /// does by default). Irreversible: call it in a child about to exec.
    pub fn load(&self) -> Result<(), CompileError> {
        self.ctx.load().map_err(CompileError::Load)
    }
}

/// libseccomp's syscall tables, for validation.
#[derive(Clone, Copy, Debug, Default)]
pub struct Libseccomp;

impl SyscallTable for Libseccomp {
    fn supports(&self, arch: Arch) -> bool {
        ScmpSyscall::from_name_by_arch("read", scmp_arch(arch)).is_ok()
    }
    fn knows(&self, arch: Arch, name: &str) -> bool {
        // A name libseccomp only knows as a pseudo-syscall (negative) on `arch` does not exist
        // there.
        syscall_number(arch, name).is_some()
    }
    fn describe(&self) -> String {
        match libseccomp::ScmpVersion::current() {
            Ok(v) => format!("libseccomp {}.{}.{}", v.major, v.minor, v.micro),
            Err(_) => "libseccomp".into(),
        }
    }
}

/// The number of `name` on `arch`, when it is a real syscall there.
pub fn syscall_number(arch: Arch, name: &str) -> Option<i32> {
    ScmpSyscall::from_name_by_arch(name, scmp_arch(arch))
        .ok()
        .map(i32::from)
        .filter(|n| *n >= 0)
}

/// The name of syscall number `nr` on `arch`.
pub fn syscall_name(arch: Arch, nr: i32) -> Option<String> {
    ScmpSyscall::from(nr).get_name_by_arch(scmp_arch(arch)).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use seccomp_profile::{parse_profile, EvalContext};

    fn doc(json: &str) -> SeccompDocument {
        parse_profile(json, &EvalContext::host())
            .unwrap()
            .spec
            .document
            .canonical(Arch::native())
    }

    #[test]
    fn names_and_numbers_round_trip_per_arch() {
        assert_eq!(syscall_number(Arch::X86_64, "getppid"), Some(110));
        assert_eq!(syscall_number(Arch::X86, "getppid"), Some(64));
        assert_eq!(syscall_name(Arch::X86, 5).as_deref(), Some("open"));
        assert_eq!(syscall_name(Arch::X86_64, 5).as_deref(), Some("fstat"));
        assert_eq!(syscall_number(Arch::X86_64, "chown32"), None);
        assert!(Libseccomp.knows(Arch::X86, "chown32"));
        assert!(!Libseccomp.knows(Arch::X86_64, "raed"));
        assert!(Libseccomp.describe().starts_with("libseccomp 2."));
    }

    #[test]
    fn compiles_args_flags_and_compat_names() {
        let f = compile(&doc(
            r#"{"defaultAction":"SCMP_ACT_ERRNO","flags":["SECCOMP_FILTER_FLAG_LOG"],"syscalls":[
            {"names":["read","chown32","not_a_syscall_anywhere"],"action":"SCMP_ACT_ALLOW"},
            {"names":["clone"],"action":"SCMP_ACT_ALLOW","args":[{"index":0,"value":2114060288,"valueTwo":0,"op":"SCMP_CMP_MASKED_EQ"}]},
            {"names":["mkdir"],"action":"SCMP_ACT_ERRNO","errnoRet":13}]}"#,
        ))
        .unwrap();
        assert_eq!(f.skipped, vec!["not_a_syscall_anywhere"]);
        assert!(f.instructions() > 10);
    }
}
