//! `seccompctl`: record, enforce, validate, convert, merge and diff seccomp profiles on the
//! local machine, with no cluster.

use anyhow::{bail, Context};
use clap::{Parser, Subcommand, ValueEnum};
use crds::{SeccompProfile, SeccompProfileSpec};
use seccomp_filter::{self as seccomp, Libseccomp};
use seccomp_profile::{self as model, Arch, SeccompDocument};
use seccompctl::local;
use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use syscall_recorder::Recorder;

/// Record seccomp profiles from real programs and containers, and enforce them.
#[derive(Parser, Debug)]
#[command(version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Run a command (or a runc or crun container) and learn the syscalls it makes.
    ///
    /// The command runs in a fresh mount namespace, recorded with eBPF from its first syscall
    /// until it exits, children included. Its stdin, stdout and stderr pass through, and
    /// seccompctl exits with its exit status. The profile (default SCMP_ACT_ERRNO, the syscalls
    /// seen, explicit architectures) goes to -o FILE, or to stdout after the command ends.
    /// Needs root.
    Record {
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
    },
    /// Run a command under a profile, as a container runtime would apply it.
    ///
    /// Sets NoNewPrivileges, installs the profile with libseccomp and execs the command, which
    /// keeps seccompctl's stdin, stdout, stderr and PID (so its exit status is the command's).
    Run {
        /// The profile (any supported format).
        #[arg(short, long)]
        profile: PathBuf,
        /// The command, after `--`.
        #[arg(last = true, required = true, value_name = "CMD")]
        command: Vec<OsString>,
    },
    /// Check profiles: syntax, every field, syscall names (libseccomp), and that libseccomp
    /// compiles them. Exits 1 if any is invalid, 2 if any cannot be read.
    Validate {
        /// Output: text, or JSON (one object per file) for CI.
        #[arg(short, long, value_enum, default_value = "text")]
        output: Report,
        /// Profile files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Convert a profile (SeccompProfile, SPO, OCI, Docker, containers-common) to OCI JSON or a
    /// SeccompProfile resource. Docker conditions are evaluated for this machine; syscall names
    /// this machine's libseccomp does not know are kept, with a warning.
    Convert {
        /// Output format.
        #[arg(long, value_enum)]
        to: Format,
        /// metadata.name, for --to cr (default: the input's, or the file name).
        #[arg(long)]
        name: Option<String>,
        /// metadata.namespace, for --to cr.
        #[arg(long)]
        namespace: Option<String>,
        /// The profile.
        file: PathBuf,
    },
    /// The union of profiles (same default action required).
    Merge {
        /// Output format.
        #[arg(long, value_enum, default_value = "oci")]
        to: Format,
        /// metadata.name, for --to cr.
        #[arg(long, default_value = "merged")]
        name: String,
        /// Profiles to merge.
        #[arg(required = true, num_args = 2..)]
        files: Vec<PathBuf>,
    },
    /// Install profiles as the node agent does, without a cluster: every given profile is
    /// written atomically to <kubelet-root>/seccomp/operator/<namespace>/<name>.json. Files of
    /// other profiles stay, unless --prune makes the directory hold exactly these. Nothing is
    /// written when any given profile is invalid or its name cannot be a file name (exit 1).
    Install {
        /// Remove the files of profiles not given (with no profiles given: all of them).
        #[arg(long)]
        prune: bool,
        /// The kubelet's root directory.
        #[arg(long, default_value = crds::DEFAULT_KUBELET_ROOT)]
        kubelet_root: PathBuf,
        /// Namespace for profiles whose file names none.
        #[arg(long, default_value = "default")]
        namespace: String,
        /// Profile files (metadata.name, or the file name, names each profile).
        files: Vec<PathBuf>,
    },
    /// What a profile lets run that the runtime's default profile does not (exit 0 if
    /// nothing, 1 if something): every syscall it denies, and every argument class it
    /// restricts (namespaces in clone, socket families, personas) that the profile allows.
    Compare {
        /// The profile to check.
        profile: PathBuf,
        /// The runtime's default profile (e.g. Docker's, moby's `profiles/seccomp/default.json`,
        /// or containers-common's), in any supported format; Docker conditions are evaluated
        /// for a container with the runtime's default capabilities on this machine.
        #[arg(long = "default", value_name = "FILE")]
        reference: PathBuf,
    },
    /// What differs between two profiles (exit 0 if equivalent, 1 if not).
    Diff {
        /// Output: text, or JSON for CI.
        #[arg(short, long, value_enum, default_value = "text")]
        output: Report,
        /// The old profile.
        a: PathBuf,
        /// The new profile.
        b: PathBuf,
    },
}

/// How `validate` and `diff` report.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum Report {
    /// For people.
    Text,
    /// For programs (CI).
    Json,
}

/// One `validate` result (as built in `run`), for people.
fn print_validation(r: &serde_json::Value) {
    let file = r["file"].as_str().unwrap_or_default();
    let list = |key: &str| -> Vec<String> {
        r[key]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    };
    match r["result"].as_str() {
        Some("valid") => {
            println!(
                "{file}: ok ({}, {} syscall names in {} rules, {} BPF instructions)",
                r["format"].as_str().unwrap_or_default(),
                r["names"],
                r["rules"],
                r["instructions"]
            );
            for w in list("warnings") {
                println!("  warning: {w}");
            }
            let skipped = list("skipped");
            if !skipped.is_empty() {
                println!(
                    "  note: unknown to {}, skipped as runc would: {}",
                    model::SyscallTable::describe(&Libseccomp),
                    skipped.join(", ")
                );
            }
        }
        Some("unreadable") => println!("{file}: UNREADABLE: {}", list("errors").join("; ")),
        _ => {
            println!("{file}: INVALID");
            for line in list("errors") {
                println!("  {line}");
            }
        }
    }
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum Format {
    /// A seccomp-operator.dev SeccompProfile resource, YAML.
    Cr,
    /// Plain OCI linux.seccomp JSON.
    Oci,
}

fn render(
    doc: &SeccompDocument,
    format: Format,
    name: &str,
    namespace: Option<&str>,
) -> anyhow::Result<String> {
    match format {
        Format::Oci => Ok(String::from_utf8(doc.render(Arch::native()).json)?),
        Format::Cr => {
            let mut p = SeccompProfile::new(
                name,
                SeccompProfileSpec::from(seccomp_profile::ProfileSpec {
                    document: doc.canonical(Arch::native()),
                    base_profile_name: None,
                    disabled: false,
                    report_denials: None,
                }),
            );
            p.metadata.namespace = namespace.map(str::to_owned);
            let mut v = serde_json::to_value(&p)?;
            if let Some(m) = v.as_object_mut() {
                m.remove("status");
            }
            Ok(serde_saphyr::to_string(&v)?)
        }
    }
}

fn write_out(path: Option<&Path>, text: &str) -> anyhow::Result<()> {
    match path {
        Some(p) => std::fs::write(p, text).with_context(|| format!("writing {}", p.display())),
        None => {
            let mut out = std::io::stdout().lock();
            out.write_all(text.as_bytes())?;
            out.flush()?;
            Ok(())
        }
    }
}

fn load_doc(path: &Path) -> anyhow::Result<SeccompDocument> {
    Ok(local::load_profile(path)?.1)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("seccompctl: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.cmd {
        Cmd::Record {
            output,
            name,
            namespace,
            format,
            runc_bundle,
            id,
            runtime,
            names_only,
            command,
        } => {
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
        Cmd::Run { profile, command } => {
            let doc = load_doc(&profile)?;
            Err(local::run_enforced(&doc, &command))
        }
        Cmd::Validate { files, output } => {
            let (mut bad, mut unreadable) = (0, 0);
            let mut results = Vec::new();
            for f in &files {
                let file = f.display().to_string();
                let result = match local::load_profile(f).and_then(|(p, doc)| {
                    let filter = seccomp::compile(&doc)?;
                    Ok((p, doc, filter))
                }) {
                    Ok((p, doc, filter)) => {
                        let warnings: Vec<String> = p
                            .warnings
                            .iter()
                            .chain(&doc.startup_problems())
                            .cloned()
                            .collect();
                        serde_json::json!({
                            "file": file, "result": "valid", "format": p.format.to_string(),
                            "rules": doc.syscalls.len(),
                            "names": doc.syscalls.iter().map(|r| r.names.len()).sum::<usize>(),
                            "instructions": filter.instructions(),
                            "warnings": warnings, "skipped": filter.skipped,
                        })
                    }
                    Err(e) if e.root_cause().is::<std::io::Error>() => {
                        unreadable += 1;
                        serde_json::json!({"file": file, "result": "unreadable", "errors": [format!("{e:#}")]})
                    }
                    Err(e) => {
                        bad += 1;
                        let errors: Vec<String> =
                            format!("{e:#}").split("; ").map(str::to_owned).collect();
                        serde_json::json!({"file": file, "result": "invalid", "errors": errors})
                    }
                };
                results.push(result);
            }
            match output {
                Report::Json => println!("{}", serde_json::to_string_pretty(&results)?),
                Report::Text => results.iter().for_each(print_validation),
            }
            Ok(if unreadable > 0 {
                ExitCode::from(2)
            } else if bad > 0 {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            })
        }
        Cmd::Convert {
            to,
            name,
            namespace,
            file,
        } => {
            let (parsed, doc, unknown) = local::load_profile_portable(&file)?;
            if !unknown.is_empty() {
                eprintln!(
                    "seccompctl: warning: kept {} syscall name(s) unknown to {}: {} (a node whose libseccomp knows them enforces them; runc skips names it does not know)",
                    unknown.len(),
                    model::SyscallTable::describe(&Libseccomp),
                    unknown.join(", ")
                );
            }
            let name = name.or(parsed.name.clone()).unwrap_or_else(|| {
                file.file_stem()
                    .map(|s| s.to_string_lossy().to_lowercase().replace(['_', ' '], "-"))
                    .unwrap_or_else(|| "converted".into())
            });
            for w in &parsed.warnings {
                eprintln!("seccompctl: warning: {w}");
            }
            write_out(
                None,
                &render(
                    &doc,
                    to,
                    &name,
                    namespace.as_deref().or(parsed.namespace.as_deref()),
                )?,
            )?;
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Merge { to, name, files } => {
            let docs = files
                .iter()
                .map(|f| load_doc(f))
                .collect::<anyhow::Result<Vec<_>>>()?;
            let merged = model::merge(&docs, Arch::native())?;
            write_out(None, &render(&merged, to, &name, None)?)?;
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Install {
            prune,
            kubelet_root,
            namespace,
            files,
        } => {
            let mut set = Vec::new();
            let mut refused = Vec::new();
            for f in &files {
                let text = std::fs::read_to_string(f)
                    .with_context(|| format!("reading {}", f.display()))?;
                let parsed = match model::parse_profile(&text, &model::EvalContext::host()) {
                    Ok(p) => p,
                    Err(e) => {
                        refused.push(format!("{}: not a valid profile: {e}", f.display()));
                        continue;
                    }
                };
                let name = parsed.name.clone().unwrap_or_else(|| {
                    f.file_stem()
                        .map(|s| s.to_string_lossy().into_owned())
                        .unwrap_or_default()
                });
                let ns = parsed
                    .namespace
                    .clone()
                    .unwrap_or_else(|| namespace.clone());
                if let Err(e) = profile_installer::paths::ProfileKey::new(&ns, &name) {
                    refused.push(format!(
                        "{}: {ns}/{name} cannot be installed: {e} (name it with metadata.name, --namespace or the file name)",
                        f.display()
                    ));
                    continue;
                }
                set.push((ns, name, parsed.spec));
            }
            if !refused.is_empty() {
                for r in &refused {
                    eprintln!("seccompctl: {r}");
                }
                eprintln!(
                    "seccompctl: nothing installed: {} of {} profile(s) refused",
                    refused.len(),
                    files.len()
                );
                return Ok(ExitCode::from(1));
            }
            let root = profile_installer::paths::ProfileRoot::new(&kubelet_root);
            let mut installer = profile_installer::Installer::new(root.clone())
                .with_context(|| format!("reading {}", root.dir().display()))?;
            let report = if prune {
                installer.sync(&set)
            } else {
                installer.install_only(&set)
            };
            let mut errors = 0;
            for (key, st) in installer.status() {
                if let Some(msg) = &st.message {
                    errors += 1;
                    eprintln!("{key}: {:?}: {msg}", st.state);
                }
            }
            println!(
                "{}: {} written, {} removed, {} unchanged, {} failed, {} invalid",
                root.dir().display(),
                report.written,
                report.removed,
                installer.installed_count().saturating_sub(report.written),
                report.failed,
                report.invalid
            );
            Ok(if errors > 0 {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            })
        }
        Cmd::Compare { profile, reference } => {
            let looser =
                model::looser_than(&load_doc(&profile)?, &load_doc(&reference)?, Arch::native());
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
        Cmd::Diff { a, b, output } => {
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
    }
}
