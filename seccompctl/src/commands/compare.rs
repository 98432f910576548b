//! `seccompctl compare`.

use super::load_doc;
use seccomp_profile::{self as model, Arch};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The profile to check (`-`: standard input; FILE#NAME picks one of a file of several).
    profile: PathBuf,
    /// The runtime's default profile (e.g. Docker's, moby's `profiles/seccomp/default.json`,
    /// or containers-common's), in any supported format; Docker conditions are evaluated
    /// for a container with the runtime's default capabilities on this machine.
    #[arg(long = "default", value_name = "FILE")]
    reference: PathBuf,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let Args { profile, reference } = args;
    let looser = model::looser_than(&load_doc(&profile)?, &load_doc(&reference)?, Arch::native());
    if looser.is_empty() {
        println!(
            "{}: nothing allowed that {} denies",
            profile.display(),
            reference.display()
        );
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{}: {} looser than {}:",
        profile.display(),
        looser.len(),
        reference.display()
    );
    for l in &looser {
        println!("  {l}");
    }
    Ok(ExitCode::from(1))
}
