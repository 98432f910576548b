//! Reading profiles for every command: files or standard input, each holding one profile or
//! several (multi-document YAML, `List`s); any supported format; validated against libseccomp's
//! tables; bases resolved when built in or among the input's own profiles (other bases only
//! exist in a cluster).

use crate::input::{self, Input};
use anyhow::{anyhow, bail, Context};
use seccomp_filter::Libseccomp;
use seccomp_profile::{
    self as model, Arch, EvalContext, Item, ProfileSpec, SeccompDocument, BUILTIN_PREFIX,
};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// How a profile is checked while it is read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Names {
    /// Syscall names must be known to this machine's libseccomp (imported formats drop the
    /// unknown ones, as runtimes do): for commands that compile or compare.
    Known,
    /// Unknown names are kept and reported: for `convert`, whose output must not depend on
    /// the machine it runs on.
    Kept,
}

/// One profile of an input, read, validated and resolved.
#[derive(Debug)]
pub struct Loaded {
    /// As read (format, metadata, warnings).
    pub parsed: model::ParsedProfile,
    /// Resolved and canonical for this machine.
    pub doc: SeccompDocument,
    /// With [`Names::Kept`]: the syscall names this machine's libseccomp does not know.
    pub unknown: Vec<String>,
}

/// Read a profile in any supported format, validate it against libseccomp's tables and resolve
/// its base. The input (`FILE`, `-`, or `FILE#NAME` to pick one of several) must hold exactly
/// one profile; an input with several is refused with their names and how to pick one.
pub fn load_profile(path: &Path) -> anyhow::Result<(model::ParsedProfile, SeccompDocument)> {
    let input = input::read_input(path)?;
    let item = single_profile(&input)?;
    let l = load_item(&input, item, Names::Known)?;
    Ok((l.parsed, l.doc))
}

/// The one profile of `input`, or why there is not one.
pub fn single_profile(input: &Input) -> anyhow::Result<&Item> {
    let profiles = input.profiles();
    match profiles.len() {
        1 => Ok(profiles[0]),
        0 => bail!(
            "{}: holds no seccomp profile (it holds: {})",
            input.shown,
            input::listing(input.chosen())
        ),
        n => bail!(
            "{}: holds {n} profiles where this command takes one: {}; pick one as {}#<name>",
            input.shown,
            input::listing(profiles.into_iter()),
            input.shown
        ),
    }
}

/// Every chosen profile of `input`, each loaded on its own (one bad profile does not hide the
/// others), with how messages name it.
pub fn load_profiles(input: &Input, names: Names) -> Vec<(String, anyhow::Result<Loaded>)> {
    input
        .profiles()
        .into_iter()
        .map(|item| (input.place(item), load_item(input, item, names)))
        .collect()
}

/// Read, validate and resolve one profile of `input`.
pub fn load_item(input: &Input, item: &Item, names: Names) -> anyhow::Result<Loaded> {
    let place = input.place(item);
    let mut parsed = model::parse_value(item.value.clone(), &EvalContext::host())
        .with_context(|| format!("{place}: not a valid profile"))?;
    if names == Names::Known && parsed.is_imported() {
        parsed.drop_unknown_syscalls(&Libseccomp);
    }
    let table: Option<&dyn model::SyscallTable> = match names {
        Names::Known => Some(&Libseccomp),
        Names::Kept => None,
    };
    parsed
        .validate(table)
        .with_context(|| format!("{place}: invalid profile"))?;
    let doc = resolve_locally(&place, input, item, &parsed)?;
    let unknown = match names {
        Names::Known => Vec::new(),
        Names::Kept => unknown_names(&doc),
    };
    Ok(Loaded {
        parsed,
        doc,
        unknown,
    })
}

/// The profiles of `input` by name, as bases of the others (those that do not parse are left
/// out: their own messages say why).
fn bases_in(input: &Input) -> &BTreeMap<String, ProfileSpec> {
    input.bases.get_or_init(|| {
        input
            .all
            .iter()
            .filter(|i| input::is_profile(i))
            .filter_map(|i| {
                let name = i.name()?.to_owned();
                let p = model::parse_value(i.value.clone(), &EvalContext::host()).ok()?;
                Some((name, p.spec))
            })
            .collect()
    })
}

/// Resolve `parsed` without a cluster (built-in bases, and bases that are other profiles of
/// the same input) into its canonical document.
fn resolve_locally(
    place: &str,
    input: &Input,
    item: &Item,
    parsed: &model::ParsedProfile,
) -> anyhow::Result<SeccompDocument> {
    let none = BTreeMap::new();
    let bases = match &parsed.spec.base_profile_name {
        Some(b) if b.starts_with("oci://") => bail!(
            "{place}: spec.baseProfileName `{b}` pulls the base from an OCI registry, which neither seccompctl nor the operator does (pull it yourself, convert it as a profile of its own and name that, or use a `{BUILTIN_PREFIX}` base)"
        ),
        Some(b) if !b.starts_with(BUILTIN_PREFIX) => {
            let bases = bases_in(input);
            if !bases.contains_key(b) {
                bail!(
                    "{place}: spec.baseProfileName `{b}` names a SeccompProfile that is not in this input, which only a cluster can resolve: locally only `{BUILTIN_PREFIX}` bases and profiles given in the same input work (convert the base together with this profile, e.g. from one `kubectl get … -o yaml` dump)"
                );
            }
            bases
        }
        _ => &none,
    };
    let name = item.name().unwrap_or("local");
    let doc = model::resolve(name, &parsed.spec, bases).map_err(|e| anyhow!("{place}: {e}"))?;
    Ok(doc.canonical(Arch::native()))
}

/// Syscall names of `doc` that this machine's libseccomp knows on none of the document's
/// architectures (that it supports).
fn unknown_names(doc: &SeccompDocument) -> Vec<String> {
    let table = Libseccomp;
    let archs: Vec<Arch> = doc
        .architectures
        .iter()
        .copied()
        .filter(|a| model::SyscallTable::supports(&table, *a))
        .collect();
    let unknown: BTreeSet<String> = doc
        .syscalls
        .iter()
        .flat_map(|r| r.names.iter())
        .filter(|n| {
            !archs.is_empty()
                && !archs
                    .iter()
                    .any(|a| model::SyscallTable::knows(&table, *a, n))
        })
        .cloned()
        .collect();
    unknown.into_iter().collect()
}

/// Read a profile for conversion: like [`load_profile`], but syscall names this machine's
/// libseccomp does not know are kept, and returned, so that what `convert` writes does not
/// depend on the machine it runs on (only compiling needs the names known).
pub fn load_profile_portable(
    path: &Path,
) -> anyhow::Result<(model::ParsedProfile, SeccompDocument, Vec<String>)> {
    let input = input::read_input(path)?;
    let item = single_profile(&input)?;
    let l = load_item(&input, item, Names::Kept)?;
    Ok((l.parsed, l.doc, l.unknown))
}
