//! Resolution of `baseProfileName` chains.
//!
//! A profile may name a base: another SeccompProfile in the same namespace, or a built-in base
//! by a reserved `builtin:` name (a valid object name cannot contain `:`, so the two never
//! collide). The resolved document is the base's syscalls plus the child's, with the child's
//! own fields winning: a syscall the child lists keeps the child's action, and the child's
//! default action, return value, architectures, flags and listener replace the base's when set.

use super::document::SeccompDocument;
use super::error::ResolveError;
use super::spec::ProfileSpec;
use std::collections::{BTreeMap, BTreeSet};

/// The longest chain of bases followed.
pub const MAX_DEPTH: usize = 15;

/// The prefix of built-in base profile names.
pub const BUILTIN_PREFIX: &str = "builtin:";

/// Finds profiles by name in one namespace.
pub trait ProfileLookup {
    /// The spec of the profile called `name`, if it exists.
    fn lookup(&self, name: &str) -> Option<ProfileSpec>;
}

impl ProfileLookup for BTreeMap<String, ProfileSpec> {
    fn lookup(&self, name: &str) -> Option<ProfileSpec> {
        self.get(name).cloned()
    }
}

impl<F> ProfileLookup for F
where
    F: Fn(&str) -> Option<ProfileSpec>,
{
    fn lookup(&self, name: &str) -> Option<ProfileSpec> {
        self(name)
    }
}

/// The names of the bases `spec` builds on, nearest first (built-ins included). Stops at the
/// first missing base, a cycle, or [`MAX_DEPTH`].
pub fn base_chain(name: &str, spec: &ProfileSpec, lookup: &dyn ProfileLookup) -> Vec<String> {
    let mut chain = Vec::new();
    let mut seen = BTreeSet::from([name.to_owned()]);
    let mut next = spec.base_profile_name.clone();
    while let Some(base) = next.take() {
        if chain.len() >= MAX_DEPTH || !seen.insert(base.clone()) {
            break;
        }
        chain.push(base.clone());
        if base.starts_with(BUILTIN_PREFIX) {
            break;
        }
        next = lookup.lookup(&base).and_then(|s| s.base_profile_name);
    }
    chain
}

/// Resolve `spec` (called `name`) and its chain of bases into one document.
pub fn resolve(
    name: &str,
    spec: &ProfileSpec,
    lookup: &dyn ProfileLookup,
) -> Result<SeccompDocument, ResolveError> {
    // Collect the chain child-first, then fold from the farthest base down.
    let mut docs = vec![spec.document.clone()];
    let mut path = vec![name.to_owned()];
    let mut by = name.to_owned();
    let mut next = spec.base_profile_name.clone();
    while let Some(base) = next.take() {
        if path.contains(&base) {
            path.push(base);
            return Err(ResolveError::Cycle(path));
        }
        if path.len() > MAX_DEPTH {
            path.push(base);
            return Err(ResolveError::TooDeep {
                chain: path,
                max: MAX_DEPTH,
            });
        }
        let base_spec = match base.strip_prefix(BUILTIN_PREFIX) {
            Some(builtin) => super::builtin::get(builtin).map(ProfileSpec::from),
            None => lookup.lookup(&base),
        };
        let Some(base_spec) = base_spec else {
            return Err(ResolveError::MissingBase { by, base });
        };
        path.push(base.clone());
        docs.push(base_spec.document);
        next = base_spec.base_profile_name;
        by = base;
    }
    let mut doc = docs.pop().expect("chain holds at least the profile itself");
    while let Some(child) = docs.pop() {
        doc = inherit(&child, doc);
    }
    Ok(doc)
}

/// `child` on top of `base`: the child's fields win.
pub fn inherit(child: &SeccompDocument, base: SeccompDocument) -> SeccompDocument {
    let child_names: BTreeSet<&str> = child
        .syscalls
        .iter()
        .flat_map(|r| r.names.iter().map(String::as_str))
        .collect();
    let mut syscalls: Vec<_> = base
        .syscalls
        .into_iter()
        .filter_map(|mut rule| {
            rule.names.retain(|n| !child_names.contains(n.as_str()));
            (!rule.names.is_empty()).then_some(rule)
        })
        .collect();
    syscalls.extend(child.syscalls.iter().cloned());
    SeccompDocument {
        default_action: child.default_action,
        default_errno_ret: if child.default_action == base.default_action {
            child.default_errno_ret.or(base.default_errno_ret)
        } else {
            child.default_errno_ret
        },
        architectures: if child.architectures.is_empty() {
            base.architectures
        } else {
            child.architectures.clone()
        },
        flags: if child.flags.is_empty() {
            base.flags
        } else {
            child.flags.clone()
        },
        listener_path: child.listener_path.clone().or(base.listener_path),
        listener_metadata: child.listener_metadata.clone().or(base.listener_metadata),
        syscalls,
    }
}
