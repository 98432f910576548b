//! `seccompctl run`.

use super::load_doc;
use seccompctl::local;
use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The profile (any supported format; `-`: standard input; FILE#NAME picks one of a file
    /// of several). A SeccompProfile's `spec.mode` is not read here: `--complain` decides.
    #[arg(short, long)]
    profile: PathBuf,
    /// Refuse nothing: report what enforcing the profile would have denied.
    ///
    /// The command runs as seccompctl's child under the profile's complain rendering: every
    /// refusing action (the default's and each rule's SCMP_ACT_ERRNO, SCMP_ACT_KILL*,
    /// SCMP_ACT_TRAP, SCMP_ACT_TRACE) becomes SCMP_ACT_LOG, argument conditions kept. When it
    /// exits, seccompctl prints to stderr each syscall enforcement would have denied, how
    /// many calls, and the action, read from the kernel's seccomp audit records of the
    /// command and its children. Needs root (CAP_AUDIT_READ) on the host.
    ///
    /// The kernel writes no such record when kernel.seccomp.actions_logged lacks `log` or
    /// audit is disabled (booted with audit=0): the summary then says nothing would have
    /// been denied and cannot be trusted. Records the reader lost are counted in the summary.
    #[arg(long)]
    complain: bool,
    /// The command, after `--`.
    #[arg(last = true, required = true, value_name = "CMD")]
    command: Vec<OsString>,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    if args.complain {
        // Before reading the profile: a missing capability is the first thing to fix.
        local::check_audit_access()?;
    }
    let doc = load_doc(&args.profile)?;
    if !args.complain {
        return Err(local::run_enforced(&doc, &args.command));
    }
    let complaint = local::run_complaining(&doc, &args.command)?;
    for line in complaint.summary() {
        eprintln!("seccompctl: {line}");
    }
    Ok(ExitCode::from(complaint.exit_code.clamp(0, 255) as u8))
}
