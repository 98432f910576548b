//! `seccompctl run`.

use super::load_doc;
use seccompctl::local;
use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The profile (any supported format; `-`: standard input; FILE#NAME picks one of a file
    /// of several).
    #[arg(short, long)]
    profile: PathBuf,
    /// The command, after `--`.
    #[arg(last = true, required = true, value_name = "CMD")]
    command: Vec<OsString>,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let doc = load_doc(&args.profile)?;
    Err(local::run_enforced(&doc, &args.command))
}
