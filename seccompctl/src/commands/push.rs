//! `seccompctl push`: one profile, validated and rendered as the plain OCI `linux.seccomp` JSON a
//! node installs, pushed as a KEP-6061 profile artifact.

use super::remote::{self, RegistryArgs};
use super::{render, Format};
use anyhow::{bail, Context};
use seccomp_profile::{self as model, EvalContext, BUILTIN_PREFIX};
use seccompctl::input;
use seccompctl::local::load::{self, Loaded, Names};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Where to push: REGISTRY/REPOSITORY:TAG (or @sha256:DIGEST, which must then be the
    /// artifact's), with or without oci://.
    #[arg(value_name = "REF")]
    reference: String,
    /// The profile, in any format `convert` reads: a file, or `-` for standard input
    /// (FILE#NAME picks one of several). It must hold exactly one profile, with no base or a
    /// `builtin:` one (resolved here).
    #[arg(value_name = "FILE")]
    file: PathBuf,
    #[command(flatten)]
    registry: RegistryArgs,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let Args {
        reference,
        file,
        registry,
    } = args;
    let reference = remote::parse_reference(&reference)?;
    if registry.password_stdin && file.as_os_str() == input::STDIN {
        bail!(
            "--password-stdin reads the password from standard input, and FILE `-` the profile: give the profile as a file, or the credentials in a docker config file (--registry-config)"
        );
    }
    let input = input::read_input(&file)?;
    let item = load::single_profile(&input)?;
    let place = input.place(item);
    let loaded = match check(&input, item) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("seccompctl: {e:#}");
            eprintln!("seccompctl: nothing pushed");
            return Ok(ExitCode::from(1));
        }
    };
    for w in loaded
        .parsed
        .warnings
        .iter()
        .chain(&loaded.doc.startup_problems())
    {
        eprintln!("seccompctl: warning: {place}: {w}");
    }
    if loaded.parsed.spec.disabled {
        eprintln!(
            "seccompctl: warning: {place}: spec.disabled: dropped: the artifact holds the profile itself, which a node that pulls it enforces"
        );
    }
    if loaded.parsed.spec.mode == model::Mode::Complain {
        eprintln!(
            "seccompctl: warning: {place}: spec.mode: Complain is dropped: the artifact holds the profile as written, enforced (set the mode on the SeccompProfile that names it)"
        );
    }
    let json = render(&loaded.doc, Format::Oci, "", None)?;
    let credentials = remote::credentials(&registry, &reference)?;
    let client = remote::registry(&registry)?;
    let pushed = remote::block_on(client.push(&reference, json.into_bytes(), &credentials))?
        .map_err(|e| remote::explain(e, &credentials, &registry))?;
    println!("{}", pushed.digest);
    eprintln!(
        "seccompctl: pushed {reference}; pinned, for spec.baseProfileName: {}",
        pushed.pinned
    );
    Ok(ExitCode::SUCCESS)
}

/// The profile, validated as `validate` does (every field, syscall names known to libseccomp,
/// compiled), its `builtin:` base resolved; any other base refused.
fn check(input: &input::Input, item: &model::Item) -> anyhow::Result<Loaded> {
    let place = input.place(item);
    // Bases are looked at before resolving: one in the same input would resolve, but only
    // `builtin:` ones are what push takes (an artifact is a whole profile).
    if let Ok(parsed) = model::parse_value(item.value.clone(), &EvalContext::host()) {
        if let Some(base) = parsed
            .spec
            .base_profile_name
            .as_deref()
            .filter(|b| !b.starts_with(BUILTIN_PREFIX))
        {
            bail!(
                "{place}: spec.baseProfileName `{base}`: push takes a whole profile, with no base or a `{BUILTIN_PREFIX}` one: resolve it first (`seccompctl convert --to oci` of a file holding it and its base; an oci:// base: pull it) and push the result"
            );
        }
    }
    let loaded = load::load_item(input, item, Names::Known)?;
    seccomp_filter::compile(&loaded.doc).with_context(|| format!("{place}: invalid profile"))?;
    Ok(loaded)
}
