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
    match Prepared::new(doc, argv) {
        Ok(p) => p.exec(),
        Err(e) => e,
    }
}

/// A command and the filter it is to run under, checked and compiled before any fork, so a
/// forked child has only [`Prepared::exec`] left.
pub(crate) struct Prepared {
    /// The command as given (for messages).
    shown: String,
    program: CString,
    args: Vec<CString>,
    filter: seccomp::Filter,
}

impl Prepared {
    /// Find the command, check that `doc` lets it start, and compile `doc` (canonical).
    pub(crate) fn new(doc: &SeccompDocument, argv: &[OsString]) -> anyhow::Result<Self> {
        let Some(cmd) = argv.first() else {
            bail!("no command given")
        };
        let shown = cmd.to_string_lossy().into_owned();
        let program =
            find_program(Path::new(cmd)).with_context(|| format!("command not found: {shown}"))?;
        if !lets_execve_run(doc) {
            bail!("the profile does not allow execve, so no program can start under it");
        }
        let filter = seccomp::compile(doc)?;
        Ok(Prepared {
            shown,
            program: CString::new(program.as_os_str().as_bytes())?,
            args: cstrings(argv)?,
            filter,
        })
    }

    /// Install the filter (with NoNewPrivileges) and exec the command. Returns only on
    /// failure.
    pub(crate) fn exec(self) -> anyhow::Error {
        if let Err(e) = self.filter.load() {
            return e.into();
        }
        let e = nix::unistd::execv(&self.program, &self.args).unwrap_err();
        anyhow::anyhow!("exec {}: {e}", self.shown)
    }
}

/// Whether `doc` lets execve run (allowed or logged, by a rule without conditions or by the
/// default).
fn lets_execve_run(doc: &SeccompDocument) -> bool {
    let by_action = doc.names_by_action();
    let named = |action: &str| by_action.get(action).is_some_and(|s| s.contains("execve"));
    matches!(
        doc.default_action,
        model::Action::Allow | model::Action::Log
    ) || named("SCMP_ACT_ALLOW")
        || named("SCMP_ACT_LOG")
}
