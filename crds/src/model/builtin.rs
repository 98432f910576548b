//! Built-in base profiles, named `builtin:<name>` in `baseProfileName`.
//!
//! `runc` holds the syscalls runc's own init process makes between installing a container's
//! seccomp filter and exec'ing the container's program (measured with runc 1.1.5 under an
//! `SCMP_ACT_LOG` filter, with and without NoNewPrivileges). A recorded profile that starts only
//! at the container's program needs these to start under runc; the recorder adds them for
//! the same reason.

use super::document::SeccompDocument;

/// Syscalls runc's init makes after the filter is installed, whatever the container runs.
pub const RUNC_INIT: &[&str] = &[
    "capget",
    "capset",
    "chdir",
    "close",
    "epoll_ctl",
    "epoll_pwait",
    "execve",
    "exit_group",
    "fchown",
    "fcntl",
    "fstat",
    "fstatfs",
    "futex",
    "getdents64",
    "getpid",
    "getppid",
    "mmap",
    "nanosleep",
    "newfstatat",
    "openat",
    "prctl",
    "read",
    "rt_sigaction",
    "rt_sigprocmask",
    "rt_sigreturn",
    "sched_yield",
    "setgid",
    "setgroups",
    "setuid",
    "sigaltstack",
    "tgkill",
    "write",
];

/// Names of the built-in bases.
pub fn names() -> impl Iterator<Item = &'static str> {
    ["runc"].into_iter()
}

/// The built-in base called `name` (without the `builtin:` prefix).
pub fn get(name: &str) -> Option<SeccompDocument> {
    match name {
        "runc" => Some(SeccompDocument::allowlist(RUNC_INIT.iter().copied())),
        _ => None,
    }
}
