//! `seccompctl run`: install a profile as this process's seccomp filter and exec a command.

use super::{cstrings, find_program};
use anyhow::{bail, Context};
use seccomp_filter as seccomp;
use seccomp_profile::{self as model, SeccompDocument};
use std::ffi::{CString, OsString};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// Install `doc` as this process's seccomp filter (with NoNewPrivileges) and exec `argv`.
/// Returns only on failure.
pub fn run_enforced(doc: &SeccompDocument, argv: &[OsString]) -> anyhow::Error {
    let inner = || -> anyhow::Result<std::convert::Infallible> {
        let Some(cmd) = argv.first() else {
            bail!("no command given")
        };
        let program = find_program(Path::new(cmd))
            .with_context(|| format!("command not found: {}", cmd.to_string_lossy()))?;
        let allowed = doc.names_by_action();
        let execve_allowed = matches!(
            doc.default_action,
            model::Action::Allow | model::Action::Log
        ) || allowed
            .get("SCMP_ACT_ALLOW")
            .is_some_and(|s| s.contains("execve"))
            || allowed
                .get("SCMP_ACT_LOG")
                .is_some_and(|s| s.contains("execve"));
        if !execve_allowed {
            bail!("the profile does not allow execve, so no program can start under it");
        }
        let filter = seccomp::compile(doc)?;
        let program = CString::new(program.as_os_str().as_bytes())?;
        let args = cstrings(argv)?;
        filter.load()?;
        let e = nix::unistd::execv(&program, &args).unwrap_err();
        bail!("exec {}: {e}", cmd.to_string_lossy())
    };
    match inner() {
        Ok(never) => match never {},
        Err(e) => e,
    }
}
