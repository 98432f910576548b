//! `seccompctl install`.

use anyhow::Context;
use seccomp_profile as model;
use seccompctl::input;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Remove the files of profiles not given (with no profiles given: all of them).
    #[arg(long)]
    prune: bool,
    /// The kubelet's root directory.
    #[arg(long, default_value = crds::DEFAULT_KUBELET_ROOT)]
    kubelet_root: PathBuf,
    /// Namespace for profiles whose file names none.
    #[arg(long, default_value = "default")]
    namespace: String,
    /// Profile files (metadata.name, or the file name, names each profile; `-`: standard
    /// input). A file may hold several YAML documents and `List`s.
    files: Vec<PathBuf>,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let Args {
        prune,
        kubelet_root,
        namespace,
        files,
    } = args;
    let mut set = Vec::new();
    let mut refused = Vec::new();
    let mut given = 0;
    for f in &files {
        let input = input::read_input(f)?;
        for item in input.chosen() {
            given += 1;
            let place = input.place(item);
            if !input::is_profile(item) {
                refused.push(format!(
                    "{place}: not a profile: install writes SeccompProfiles (apply bindings and recordings with kubectl)"
                ));
                continue;
            }
            let parsed = match model::parse_value(item.value.clone(), &model::EvalContext::host()) {
                Ok(p) => p,
                Err(e) => {
                    refused.push(format!("{place}: not a valid profile: {e}"));
                    continue;
                }
            };
            let name = match (&parsed.name, &input.stem) {
                (Some(n), _) => n.clone(),
                (None, Some(stem)) if !input.many() => stem.clone(),
                _ => String::new(),
            };
            let ns = parsed
                .namespace
                .clone()
                .unwrap_or_else(|| namespace.clone());
            if let Err(e) = profile_installer::paths::ProfileKey::new(&ns, &name) {
                refused.push(format!(
                    "{place}: {ns}/{name} cannot be installed: {e} (name it with metadata.name, --namespace or the file name)"
                ));
                continue;
            }
            set.push((ns, name, parsed.spec));
        }
    }
    if !refused.is_empty() {
        for r in &refused {
            eprintln!("seccompctl: {r}");
        }
        eprintln!(
            "seccompctl: nothing installed: {} of {} profile(s) refused",
            refused.len(),
            given
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
