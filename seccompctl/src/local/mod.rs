//! Recording and enforcing on the local machine, with no cluster: what `seccompctl record` and
//! `seccompctl run` do, and how profile files are read for every command.
//!
//! - [`record`]: recording a command or a runc/crun container with the eBPF recorder;
//! - [`load`]: reading, validating and resolving profile files;
//! - [`run`]: enforcing a profile on a command;
//! - [`complain`]: running a command under a profile's complain rendering, and what
//!   enforcement would have denied;
//! - `process`: the command as seccompctl's child (signals, waiting, exit status).

use anyhow::Context;
use std::ffi::{CString, OsString};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

pub mod complain;
pub mod load;
mod process;
pub mod record;
pub mod run;

pub use complain::{check_audit_access, run_complaining, Complaint, WouldBeDenied};
pub use load::{load_profile, load_profile_portable};
pub use record::{
    bundle_no_new_privileges, check_recorder, oci_runtime_kind, record_command, record_runc,
    Recording,
};
pub use run::run_enforced;

pub(crate) fn cstrings(argv: &[OsString]) -> anyhow::Result<Vec<CString>> {
    argv.iter()
        .map(|a| CString::new(a.as_bytes()).context("an argument contains a NUL byte"))
        .collect()
}

/// Find `cmd` the way execvp would (an explicit path is used as it is).
pub fn find_program(cmd: &Path) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let executable = |p: &Path| {
        std::fs::metadata(p)
            .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
            .unwrap_or(false)
    };
    if cmd.as_os_str().as_bytes().contains(&b'/') {
        return executable(cmd).then(|| cmd.to_path_buf());
    }
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".into());
    std::env::split_paths(&path)
        .map(|d| d.join(cmd))
        .find(|p| executable(p))
}
