//! The text of a seccomp audit record (`type=1326`) and what it says: pure parsing, no I/O.

use seccomp_profile::{Action, Arch};

/// `AUDIT_SECCOMP`.
pub const AUDIT_SECCOMP: u16 = 1326;
/// `SECCOMP_RET_LOG`: the action of a logged, allowed syscall.
pub const SECCOMP_RET_LOG: u32 = 0x7ffc_0000;
/// `SECCOMP_RET_ALLOW`.
pub const SECCOMP_RET_ALLOW: u32 = 0x7fff_0000;
/// `SECCOMP_RET_ACTION_FULL`: the action part of a filter's result (the rest is its data,
/// such as the errno).
pub const SECCOMP_RET_ACTION_FULL: u32 = 0xffff_0000;

/// Which records a reader passes on, by the filter's result (`code`).
pub type Accept = fn(u32) -> bool;

/// A logged, allowed syscall (`SCMP_ACT_LOG`): what `Logs` recordings read, and the denial
/// reporter's second reader (complain mode's would-be denials).
pub fn is_logged_allow(code: u32) -> bool {
    code == SECCOMP_RET_LOG
}

/// A syscall the filter refused: any result but allow and log (errno, trap, kill, trace,
/// user notification). What the denial reporter's first reader takes (`SyscallDenied`).
pub fn is_denial(code: u32) -> bool {
    !matches!(
        code & SECCOMP_RET_ACTION_FULL,
        SECCOMP_RET_LOG | SECCOMP_RET_ALLOW
    )
}

const X32_SYSCALL_BIT: i32 = 0x4000_0000;

/// One seccomp audit record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SeccompRecord {
    /// The process (in the initial PID namespace).
    pub pid: u32,
    /// The audit architecture (`AUDIT_ARCH_*`).
    pub arch: u32,
    /// The syscall number as the filter saw it.
    pub syscall: i32,
    /// The filter's action (`SECCOMP_RET_*`).
    pub code: u32,
}

impl SeccompRecord {
    /// The syscall's architecture and number in the form libseccomp resolves (x32 numbers
    /// keep their marker bit under [`Arch::X32`]).
    pub fn arch_and_number(&self) -> Option<(Arch, i32)> {
        let arch = match self.arch {
            0xc000_003e if self.syscall & X32_SYSCALL_BIT != 0 => Arch::X32,
            0xc000_003e => Arch::X86_64,
            0x4000_0003 => Arch::X86,
            0xc000_00b7 => Arch::Aarch64,
            0x4000_0028 => Arch::Arm,
            0xc000_00f3 => Arch::Riscv64,
            0x8000_0016 => Arch::S390X,
            0x8000_0015 => Arch::Ppc64,
            0xc000_0015 => Arch::Ppc64Le,
            _ => return None,
        };
        Some((arch, self.syscall))
    }

    /// The profile action the filter's result comes from (`SECCOMP_RET_*` without its data).
    pub fn action(&self) -> Option<Action> {
        Some(match self.code & SECCOMP_RET_ACTION_FULL {
            0x8000_0000 => Action::KillProcess,
            0x0000_0000 => Action::KillThread,
            0x0003_0000 => Action::Trap,
            0x0005_0000 => Action::Errno,
            0x7fc0_0000 => Action::Notify,
            0x7ff0_0000 => Action::Trace,
            SECCOMP_RET_LOG => Action::Log,
            SECCOMP_RET_ALLOW => Action::Allow,
            _ => return None,
        })
    }

    /// The syscall's name (libseccomp), if known.
    pub fn name(&self) -> Option<String> {
        let (arch, nr) = self.arch_and_number()?;
        seccomp_filter::syscall_name(arch, nr)
    }
}

/// Parse the text of a `type=1326` record: `audit(<time>:<serial>): auid=... pid=N ...
/// arch=c000003e syscall=N compat=0 ip=0x... code=0x7ffc0000`.
pub fn parse_record(text: &str) -> Option<SeccompRecord> {
    let mut pid = None;
    let mut arch = None;
    let mut syscall = None;
    let mut code = None;
    for field in text.split_whitespace() {
        let Some((k, v)) = field.split_once('=') else {
            continue;
        };
        match k {
            "pid" => pid = v.parse().ok(),
            "arch" => arch = u32::from_str_radix(v, 16).ok(),
            "syscall" => syscall = v.parse().ok(),
            "code" => code = u32::from_str_radix(v.trim_start_matches("0x"), 16).ok(),
            _ => {}
        }
    }
    Some(SeccompRecord {
        pid: pid?,
        arch: arch?,
        syscall: syscall?,
        code: code?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_kernel_records() {
        // As printed by 6.18 for a runc container under an SCMP_ACT_LOG profile.
        let r = parse_record("audit(1795365805.696:9270): auid=4294967295 uid=0 gid=0 ses=4294967295 pid=32767 comm=\"sh\" exe=\"/bin/busybox\" sig=0 arch=c000003e syscall=1 compat=0 ip=0x47b7a0 code=0x7ffc0000").unwrap();
        assert_eq!(
            r,
            SeccompRecord {
                pid: 32767,
                arch: 0xc000_003e,
                syscall: 1,
                code: SECCOMP_RET_LOG
            }
        );
        assert_eq!(r.name().as_deref(), Some("write"));
        // With an LSM label and a comm with spaces (quoted fields never hold '=' here).
        let r = parse_record("audit(1.2:3): auid=1000 uid=1000 gid=1000 ses=2 subj=unconfined pid=7 comm=\"my prog\" exe=\"/x\" sig=0 arch=40000003 syscall=5 compat=1 ip=0xf7f0 code=0x50000").unwrap();
        assert_eq!((r.pid, r.code), (7, 0x50000));
        assert_eq!(
            r.arch_and_number(),
            Some((Arch::X86, 5)),
            "ia32 numbers stay on ia32 (5 is open there, fstat natively)"
        );
        assert_eq!(r.name().as_deref(), Some("open"));
        let x32 = SeccompRecord {
            pid: 1,
            arch: 0xc000_003e,
            syscall: 0x4000_0001,
            code: SECCOMP_RET_LOG,
        };
        assert_eq!(x32.arch_and_number().map(|a| a.0), Some(Arch::X32));
        assert_eq!(parse_record("audit(1.2:3): pid=1 arch=c000003e"), None);
        assert_eq!(parse_record("garbage"), None);
    }

    #[test]
    fn filter_results_name_their_action_and_denials_are_told_apart() {
        let with = |code| SeccompRecord {
            pid: 1,
            arch: 0xc000_003e,
            syscall: 84,
            code,
        };
        assert_eq!(with(0x8000_0000).action(), Some(Action::KillProcess));
        assert_eq!(with(0).action(), Some(Action::KillThread));
        assert_eq!(
            with(0x0005_0001).action(),
            Some(Action::Errno),
            "errno 1 in the data"
        );
        assert_eq!(with(SECCOMP_RET_LOG).action(), Some(Action::Log));
        assert_eq!(with(0x1234_0000).action(), None);
        assert!(is_denial(0x8000_0000) && is_denial(0x0005_0001) && is_denial(0x0003_0000));
        assert!(!is_denial(SECCOMP_RET_LOG) && !is_denial(SECCOMP_RET_ALLOW));
        assert!(is_logged_allow(SECCOMP_RET_LOG) && !is_logged_allow(0x0005_0001));
        assert!(
            is_denial(0) && !is_logged_allow(0),
            "a thread kill is a denial"
        );
        assert!(
            !is_denial(SECCOMP_RET_ALLOW) && !is_logged_allow(SECCOMP_RET_ALLOW),
            "allowed calls are never taken"
        );
        // The denial reporter's two readers never take the same record.
        for code in [
            0x8000_0000,
            0,
            0x0003_0000,
            0x0005_0001,
            0x7fc0_0000,
            0x7ff0_0000,
            SECCOMP_RET_LOG,
        ] {
            assert!(
                is_denial(code) != is_logged_allow(code),
                "one reader only: {code:#x}"
            );
        }
    }
}
