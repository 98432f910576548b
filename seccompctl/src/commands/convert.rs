//! `seccompctl convert`: every object of the input (multi-document YAML, `List`s), in input
//! order: profiles of any format to OCI JSON or SeccompProfile resources, and SPO's
//! ProfileBindings and ProfileRecordings to this project's.

use super::{render_profile, write_out, Format};
use anyhow::bail;
use seccomp_filter::Libseccomp;
use seccomp_profile::parse::SPO_GROUP;
use seccomp_profile::{self as model, Item};
use seccompctl::input::{self, Input};
use seccompctl::local::load::{self, Names};
use seccompctl::migrate;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Output format.
    #[arg(long, value_enum)]
    to: Format,
    /// metadata.name, for --to cr (default: the input's, or the file name); only for an input
    /// of one profile.
    #[arg(long)]
    name: Option<String>,
    /// metadata.namespace, for --to cr (every object of the input gets it).
    #[arg(long)]
    namespace: Option<String>,
    /// The input: a file, or `-` for standard input (e.g. `kubectl get … -o yaml`); FILE#NAME
    /// converts only the objects named NAME. It may hold several YAML documents and `List`s:
    /// every object is converted, in input order, into one multi-document YAML.
    #[arg(value_name = "FILE")]
    file: PathBuf,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let Args {
        to,
        name,
        namespace,
        file,
    } = args;
    let input = input::read_input(&file)?;
    let chosen: Vec<&Item> = input.chosen().collect();
    let profiles = chosen.iter().filter(|i| input::is_profile(i)).count();
    if chosen.is_empty() {
        bail!(
            "{}: holds no document (it is empty, or only comments and `---`)",
            input.shown
        );
    }
    if to == Format::Oci && chosen.len() > 1 {
        bail!(
            "{}: holds {} objects, and --to oci writes one plain profile: use --to cr for all of them (a multi-document YAML), or pick one as {}#<name>",
            input.shown,
            chosen.len(),
            input.shown
        );
    }
    if name.is_some() && profiles > 1 {
        bail!(
            "{}: --name names one profile, and the input holds {profiles}: leave --name out (each keeps its metadata.name), or pick one as {}#<name>",
            input.shown,
            input.shown
        );
    }
    let mut out = Vec::new();
    let mut failed = Vec::new();
    for item in &chosen {
        match convert_item(&input, item, to, name.as_deref(), namespace.as_deref()) {
            Ok(text) => out.push(text),
            Err(e) => failed.push(format!("{e:#}")),
        }
    }
    if !failed.is_empty() {
        for f in &failed {
            eprintln!("seccompctl: {f}");
        }
        if chosen.len() > 1 {
            eprintln!(
                "seccompctl: nothing written: {} of {} objects could not be converted",
                failed.len(),
                chosen.len()
            );
        }
        return Ok(ExitCode::from(1));
    }
    let text = if out.len() == 1 {
        out.remove(0)
    } else {
        out.iter()
            .map(|doc| format!("---\n{doc}"))
            .collect::<String>()
    };
    write_out(None, &text)?;
    Ok(ExitCode::SUCCESS)
}

/// One object, converted and rendered; its warnings go to stderr, naming it.
fn convert_item(
    input: &Input,
    item: &Item,
    to: Format,
    name: Option<&str>,
    namespace: Option<&str>,
) -> anyhow::Result<String> {
    let place = input.place(item);
    if let Some(converted) = migrate::convert_object(item) {
        let mut c = converted.map_err(|e| anyhow::anyhow!("{place}: {e}"))?;
        if to == Format::Oci {
            bail!("{place}: a ProfileBinding or ProfileRecording has no OCI form: use --to cr");
        }
        for w in &c.warnings {
            eprintln!("seccompctl: warning: {place}: {w}");
        }
        c.object.set_namespace(namespace);
        return c.object.to_yaml();
    }
    let l = load::load_item(input, item, Names::Kept)?;
    if !l.unknown.is_empty() {
        eprintln!(
            "seccompctl: warning: {}kept {} syscall name(s) unknown to {}: {} (a node whose libseccomp knows them enforces them; runc skips names it does not know)",
            if input.many() { format!("{place}: ") } else { String::new() },
            l.unknown.len(),
            model::SyscallTable::describe(&Libseccomp),
            l.unknown.join(", ")
        );
    }
    let name = match name.map(str::to_owned).or(l.parsed.name.clone()) {
        Some(n) => n,
        None => {
            let stem = input
                .stem
                .as_deref()
                .map(|s| s.to_lowercase().replace(['_', ' '], "-"))
                .unwrap_or_else(|| "converted".into());
            if input.many() {
                let n = format!("{stem}-{}", item.document);
                eprintln!(
                    "seccompctl: warning: {place}: has no name; named `{n}` (give each profile a metadata.name, or convert it alone with --name)"
                );
                n
            } else {
                stem
            }
        }
    };
    let prefix = if input.many() {
        format!("{place}: ")
    } else {
        String::new()
    };
    for w in &l.parsed.warnings {
        eprintln!("seccompctl: warning: {prefix}{w}");
    }
    let ns = namespace.or(l.parsed.namespace.as_deref());
    if to == Format::Cr && ns.is_none() && item.api_version() == Some(&format!("{SPO_GROUP}/v1")) {
        eprintln!(
            "seccompctl: warning: {prefix}metadata.namespace: SPO v1 SeccompProfiles are cluster-wide, seccomp-operator's belong to a namespace: none given, so kubectl puts it in its current namespace (give --namespace, once per namespace whose pods use it)"
        );
    }
    if to == Format::Cr && l.parsed.format == model::SourceFormat::SpoResource {
        for key in ["labels", "annotations"] {
            if item.value["metadata"][key]
                .as_object()
                .is_some_and(|m| !m.is_empty())
            {
                eprintln!(
                    "seccompctl: warning: {prefix}metadata.{key}: not carried over (SPO's own are meaningless here; add yours back if you need them)"
                );
            }
        }
    }
    if to == Format::Oci && l.parsed.spec.disabled {
        eprintln!(
            "seccompctl: warning: {prefix}spec.disabled: dropped: OCI JSON has no such field (a runtime given the file applies it)"
        );
    }
    render_profile(&l.doc, to, &name, ns, l.parsed.spec.disabled)
}
