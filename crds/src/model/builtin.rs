//! Built-in base profiles, named `builtin:<name>` in `baseProfileName`.
//!
//! They hold what a container runtime's own init process calls between installing the
//! container's seccomp filter and exec'ing the container's program. A profile recorded from the
//! container's program alone needs these to start. Measured on runc 1.1.5 with a
//! `SCMP_ACT_LOG` filter (the kernel's own report, by process): runc applies the filter just
//! before execve when NoNewPrivileges is set, and earlier, before dropping privileges,
//! otherwise. `futex` and `rt_sigreturn` are in both although a single run often shows neither:
//! runc's init is a Go program, and its runtime wakes a thread (futex, about one start in
//! five) or returns from its preemption signal (rt_sigreturn, about one in thirty) after the
//! filter is installed; denied, the container dies at start.

use super::document::SeccompDocument;

/// runc's init after the filter, with NoNewPrivileges (`allowPrivilegeEscalation: false`).
pub const RUNC_INIT_NNP: &[&str] = &[
    "close",
    "epoll_ctl",
    "execve",
    "fstatfs",
    "futex",
    "getdents64",
    "getpid",
    "openat",
    "rt_sigreturn",
    "write",
];

/// runc's init after the filter, without NoNewPrivileges (a superset of [`RUNC_INIT_NNP`]).
pub const RUNC_INIT: &[&str] = &[
    "capget",
    "capset",
    "chdir",
    "close",
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
    "newfstatat",
    "openat",
    "prctl",
    "read",
    "rt_sigreturn",
    "setgid",
    "setgroups",
    "setuid",
    "write",
];

/// Names of the built-in bases.
pub fn names() -> impl Iterator<Item = &'static str> {
    ["runc", "runc-nnp"].into_iter()
}

/// The syscall names of the built-in base `name` (without the `builtin:` prefix).
pub fn syscalls(name: &str) -> Option<&'static [&'static str]> {
    match name {
        "runc" => Some(RUNC_INIT),
        "runc-nnp" => Some(RUNC_INIT_NNP),
        _ => None,
    }
}

/// The built-in base called `name` (without the `builtin:` prefix), as an allowlist.
pub fn get(name: &str) -> Option<SeccompDocument> {
    syscalls(name).map(|s| SeccompDocument::allowlist(s.iter().copied()))
}
