//! `seccompctl diff`.

use super::{load_doc, Report};
use seccomp_profile::{self as model, Arch};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Output: text, or JSON for CI.
    #[arg(short, long, value_enum, default_value = "text")]
    output: Report,
    /// The old profile (`-`: standard input; FILE#NAME picks one of a file of several).
    a: PathBuf,
    /// The new profile (FILE#NAME picks one of a file of several).
    b: PathBuf,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let Args { output, a, b } = args;
    let d = model::diff(&load_doc(&a)?, &load_doc(&b)?, Arch::native());
    match output {
        Report::Text => print!("{d}"),
        Report::Json => println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "equivalent": d.is_empty(),
                "defaultAction": d.default_action.as_ref().map(|(x, y)| serde_json::json!({"from": x, "to": y})),
                "architecturesAdded": d.arches_added,
                "architecturesRemoved": d.arches_removed,
                "added": d.added,
                "removed": d.removed,
            }))?
        ),
    }
    Ok(if d.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
