//! One module per subcommand: its arguments (`Args`, parsed by clap in `main.rs`) and what it
//! does (`run`). What several commands share is here: output formats, rendering, writing.

use anyhow::Context;
use clap::ValueEnum;
use crds::{SeccompProfile, SeccompProfileSpec};
use seccomp_profile::{Arch, SeccompDocument};
use seccompctl::local;
use std::io::Write;
use std::path::Path;

pub mod compare;
pub mod convert;
pub mod diff;
pub mod install;
pub mod merge;
pub mod pull;
pub mod push;
pub mod record;
pub mod remote;
pub mod run;
pub mod validate;

/// How `validate` and `diff` report.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Report {
    /// For people.
    Text,
    /// For programs (CI).
    Json,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// A seccomp-operator.dev SeccompProfile resource, YAML.
    Cr,
    /// Plain OCI linux.seccomp JSON.
    Oci,
}

pub fn render(
    doc: &SeccompDocument,
    format: Format,
    name: &str,
    namespace: Option<&str>,
) -> anyhow::Result<String> {
    render_profile(doc, format, name, namespace, false)
}

/// Like [`render`], keeping `spec.disabled` (a resource only: OCI JSON has no such field).
pub fn render_profile(
    doc: &SeccompDocument,
    format: Format,
    name: &str,
    namespace: Option<&str>,
    disabled: bool,
) -> anyhow::Result<String> {
    match format {
        Format::Oci => Ok(String::from_utf8(doc.render(Arch::native()).json)?),
        Format::Cr => {
            let mut p = SeccompProfile::new(
                name,
                SeccompProfileSpec::from(seccomp_profile::ProfileSpec {
                    document: doc.canonical(Arch::native()),
                    base_profile_name: None,
                    disabled,
                    report_denials: None,
                    mode: Default::default(),
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

pub fn write_out(path: Option<&Path>, text: &str) -> anyhow::Result<()> {
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

pub fn load_doc(path: &Path) -> anyhow::Result<SeccompDocument> {
    Ok(local::load_profile(path)?.1)
}
