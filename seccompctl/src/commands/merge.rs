//! `seccompctl merge`.

use super::{render, write_out, Format};
use anyhow::bail;
use seccomp_profile::{self as model, Arch};
use seccompctl::input;
use seccompctl::local::load::{self, Names};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Output format.
    #[arg(long, value_enum, default_value = "oci")]
    to: Format,
    /// metadata.name, for --to cr.
    #[arg(long, default_value = "merged")]
    name: String,
    /// Profiles to merge: every profile of every file (`-`: standard input; FILE#NAME: only
    /// the one named NAME), at least two in all.
    #[arg(required = true, num_args = 1..)]
    files: Vec<PathBuf>,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let Args { to, name, files } = args;
    let mut docs = Vec::new();
    let mut errors = Vec::new();
    for f in &files {
        let input = input::read_input(f)?;
        for (_, loaded) in load::load_profiles(&input, Names::Known) {
            match loaded {
                Ok(l) => docs.push(l.doc),
                Err(e) => errors.push(format!("{e:#}")),
            }
        }
    }
    if !errors.is_empty() {
        bail!("{}", errors.join("; "));
    }
    if docs.len() < 2 {
        bail!(
            "merge needs at least two profiles; the input holds {}",
            docs.len()
        );
    }
    let merged = model::merge(&docs, Arch::native())?;
    write_out(None, &render(&merged, to, &name, None)?)?;
    Ok(ExitCode::SUCCESS)
}
