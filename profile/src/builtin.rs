//! Built-in base profiles, named `builtin:<name>` in `baseProfileName`.
//!
//! They hold what a container runtime's own init process calls between installing the
//! container's seccomp filter and exec'ing the container's program. A profile recorded from the
//! container's program alone needs these to start. Measured with a `SCMP_ACT_LOG` filter (the
//! kernel's own report, by process), 30 starts per mode, on runc 1.5.3 (Go 1.26), joined with
//! what runc 1.1.5 needed, so that a profile starts under either: runc applies the filter just
//! before execve when NoNewPrivileges is set, and earlier, before dropping privileges,
//! otherwise. runc's init is a Go program, and its runtime sometimes runs after the filter is
//! installed: it wakes a thread (`futex`), grows its heap (`mmap`), or preempts a goroutine by
//! signal (`getpid`, `tgkill`, then `rt_sigreturn`) — [`RUNC_NOT_EVERY_START`], each in a fraction of
//! starts (runc 1.5.3 with NoNewPrivileges: futex 5 and mmap 2 in 30); denied, the container
//! dies at start. `builtin:crun` and `builtin:crun-nnp` are the same for crun 1.8.1.

use super::document::SeccompDocument;

/// What runc's init may call after the filter in some starts and not in others: its Go
/// runtime's calls, and `epoll_ctl`, which runc 1.1 made and 1.5 does not. A recording of one
/// start can lack them, and a profile must still allow them.
pub const RUNC_NOT_EVERY_START: &[&str] = &[
    "epoll_ctl",
    "futex",
    "getpid",
    "mmap",
    "rt_sigreturn",
    "tgkill",
];

/// runc's init after the filter, with NoNewPrivileges (`allowPrivilegeEscalation: false`).
/// runc 1.5.3 in every start: close, execve, fcntl, fstat, fstatfs, getdents64, openat,
/// openat2, statx, write; runc 1.1.5 also epoll_ctl.
pub const RUNC_INIT_NNP: &[&str] = &[
    "close",
    "epoll_ctl",
    "execve",
    "fcntl",
    "fstat",
    "fstatfs",
    "futex",
    "getdents64",
    "getpid",
    "mmap",
    "openat",
    "openat2",
    "rt_sigreturn",
    "statx",
    "tgkill",
    "write",
];

/// runc's init after the filter, without NoNewPrivileges (a superset of [`RUNC_INIT_NNP`]).
pub const RUNC_INIT: &[&str] = &[
    "capget",
    "capset",
    "chdir",
    "close",
    "close_range",
    "epoll_ctl",
    "execve",
    "faccessat2",
    "fcntl",
    "fstat",
    "fstatfs",
    "futex",
    "getcwd",
    "getdents64",
    "getpid",
    "getppid",
    "mmap",
    "newfstatat",
    "openat",
    "openat2",
    "prctl",
    "read",
    "rt_sigreturn",
    "setgid",
    "setgroups",
    "setuid",
    "statx",
    "tgkill",
    "write",
];

/// crun's init after the filter, with NoNewPrivileges. crun (C, no managed runtime) applies
/// the filter last in both modes and is deterministic: measured on crun 1.8.1, ten runs each.
pub const CRUN_INIT_NNP: &[&str] = &["close", "execve"];

/// crun's init after the filter, without NoNewPrivileges: it still switches user and
/// capabilities and resets signal handling after the filter is on.
pub const CRUN_INIT: &[&str] = &[
    "capset",
    "close",
    "execve",
    "prctl",
    "rt_sigaction",
    "rt_sigprocmask",
    "setresgid",
    "setresuid",
    "write",
];

/// An OCI runtime whose init's post-filter syscalls are known.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OciRuntime {
    /// runc (Go).
    Runc,
    /// crun (C).
    Crun,
}

impl OciRuntime {
    /// What the runtime's init calls between installing the filter and exec'ing the program.
    pub fn init_syscalls(self, no_new_privileges: bool) -> &'static [&'static str] {
        match (self, no_new_privileges) {
            (OciRuntime::Runc, true) => RUNC_INIT_NNP,
            (OciRuntime::Runc, false) => RUNC_INIT,
            (OciRuntime::Crun, true) => CRUN_INIT_NNP,
            (OciRuntime::Crun, false) => CRUN_INIT,
        }
    }

    /// The runtime a `<runtime> --version` output names (`runc version ...`, `crun version
    /// ...`).
    pub fn from_version_output(text: &str) -> Option<Self> {
        match text.split_whitespace().next()? {
            "runc" => Some(OciRuntime::Runc),
            "crun" => Some(OciRuntime::Crun),
            _ => None,
        }
    }

    /// The built-in base name for this runtime.
    pub fn base_name(self, no_new_privileges: bool) -> &'static str {
        match (self, no_new_privileges) {
            (OciRuntime::Runc, true) => "runc-nnp",
            (OciRuntime::Runc, false) => "runc",
            (OciRuntime::Crun, true) => "crun-nnp",
            (OciRuntime::Crun, false) => "crun",
        }
    }
}

/// Names of the built-in bases.
pub fn names() -> impl Iterator<Item = &'static str> {
    ["runc", "runc-nnp", "crun", "crun-nnp"].into_iter()
}

/// The syscall names of the built-in base `name` (without the `builtin:` prefix).
pub fn syscalls(name: &str) -> Option<&'static [&'static str]> {
    match name {
        "runc" => Some(RUNC_INIT),
        "runc-nnp" => Some(RUNC_INIT_NNP),
        "crun" => Some(CRUN_INIT),
        "crun-nnp" => Some(CRUN_INIT_NNP),
        _ => None,
    }
}

/// The built-in base called `name` (without the `builtin:` prefix), as an allowlist.
pub fn get(name: &str) -> Option<SeccompDocument> {
    syscalls(name).map(|s| SeccompDocument::allowlist(s.iter().copied()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_runtime_mode_has_a_base_and_bases_are_sorted() {
        for rt in [OciRuntime::Runc, OciRuntime::Crun] {
            for nnp in [true, false] {
                assert_eq!(syscalls(rt.base_name(nnp)), Some(rt.init_syscalls(nnp)));
                let list = rt.init_syscalls(nnp);
                assert!(list.windows(2).all(|w| w[0] < w[1]), "{list:?}");
            }
        }
        assert_eq!(names().count(), 4);
    }

    #[test]
    fn runcs_occasional_calls_are_in_both_runc_bases() {
        for name in RUNC_NOT_EVERY_START {
            assert!(
                RUNC_INIT_NNP.contains(name) && RUNC_INIT.contains(name),
                "{name}"
            );
        }
        for name in RUNC_INIT_NNP {
            assert!(RUNC_INIT.contains(name), "{name} of runc-nnp is in runc");
        }
    }

    #[test]
    fn runtime_from_version_output() {
        assert_eq!(
            OciRuntime::from_version_output("crun version 1.8.1\ncommit: x"),
            Some(OciRuntime::Crun)
        );
        assert_eq!(
            OciRuntime::from_version_output("runc version 1.1.5+ds1\n"),
            Some(OciRuntime::Runc)
        );
        assert_eq!(OciRuntime::from_version_output("youki 0.3"), None);
        assert_eq!(OciRuntime::from_version_output(""), None);
    }
}
