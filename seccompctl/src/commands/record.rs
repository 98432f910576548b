//! `seccompctl record`.

use super::{render, write_out, Format};
use anyhow::bail;
use seccompctl::local;
use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;
use syscall_recorder::Recorder;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Where to write the profile (default: stdout, after the command's own output).
    #[arg(short, long)]
    output: Option<PathBuf>,
    /// metadata.name of the SeccompProfile.
    #[arg(long, default_value = "recorded")]
    name: String,
    /// metadata.namespace of the SeccompProfile.
    #[arg(long)]
    namespace: Option<String>,
    /// Output format: a SeccompProfile resource (YAML) or plain OCI JSON.
    #[arg(long, value_enum, default_value = "cr")]
    format: Format,
    /// Record a container from this OCI bundle (run by --runtime) instead of a command.
    #[arg(long, value_name = "DIR", conflicts_with = "command")]
    runc_bundle: Option<PathBuf>,
    /// Container ID for --runc-bundle.
    #[arg(long, requires = "runc_bundle")]
    id: Option<String>,
    /// The OCI runtime for --runc-bundle: runc, crun, or a path to either (told apart
    /// by its `--version`, since their inits make different syscalls after the filter).
    #[arg(long, alias = "runc", default_value = "runc", requires = "runc_bundle")]
    runtime: String,
    /// Allow every recorded syscall with any arguments (no argument rules for clone,
    /// clone3, unshare, setns, socket, socketpair and personality).
    #[arg(long)]
    names_only: bool,
    /// The command to record, after `--`.
    #[arg(last = true, value_name = "CMD")]
    command: Vec<OsString>,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let Args {
        output,
        name,
        namespace,
        format,
        runc_bundle,
        id,
        runtime,
        names_only,
        command,
    } = args;
    if runc_bundle.is_none() && command.is_empty() {
        bail!("nothing to record: give a command after `--`, or --runc-bundle DIR");
    }
    local::check_recorder()?;
    let mut rec = Recorder::load()?;
    let recording = match &runc_bundle {
        Some(bundle) => {
            let id = id.unwrap_or_else(|| format!("seccompctl-{}", std::process::id()));
            local::record_runc(&mut rec, &runtime, bundle, &id)?
        }
        None => local::record_command(&mut rec, &command)?,
    };
    let doc = if names_only {
        recording.names_only_document()
    } else {
        recording.document()
    };
    let text = render(&doc, format, &name, namespace.as_deref())?;
    write_out(output.as_deref(), &text)?;
    eprintln!(
        "seccompctl: recorded {} syscalls{}{}",
        recording.allowed.len(),
        if recording.setup_only.is_empty() {
            String::new()
        } else {
            format!(
                " (left out {} of runtime set-up)",
                recording.setup_only.len()
            )
        },
        output
            .map(|p| format!(" -> {}", p.display()))
            .unwrap_or_default()
    );
    if !names_only {
        for line in recording.argument_summary() {
            eprintln!("seccompctl: arguments: {line}");
        }
    }
    Ok(ExitCode::from(recording.exit_code.clamp(0, 255) as u8))
}
