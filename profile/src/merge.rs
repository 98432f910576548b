//! Union and difference of profile documents (recordings merge their replicas' partial
//! profiles; `seccompctl merge` and `seccompctl diff` expose both).

use super::document::{rule_label, ArgCondition, SeccompDocument, SyscallRule};
use super::error::MergeError;
use super::types::{Action, Arch};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// The union of `docs`: every syscall any of them allows (under the same action), every
/// architecture and flag any of them has. All must share the default action and return value.
/// A syscall with the same arguments may not have two different actions, except that
/// `SCMP_ACT_ALLOW` wins over `SCMP_ACT_ERRNO` (what one replica ran, the union runs: a
/// recorded `clone3` that answers ENOSYS in one partial and ran in another is allowed). An
/// unconditional ALLOW of a name makes its conditional ALLOW rules redundant: they are dropped.
/// The result is canonical, so merging is commutative, associative and idempotent.
pub fn merge(docs: &[SeccompDocument], native: Arch) -> Result<SeccompDocument, MergeError> {
    let first = docs.first().ok_or(MergeError::Empty)?.canonical(native);
    let default = first.default_key();
    let mut out = first.clone();
    for (index, doc) in docs.iter().enumerate().skip(1) {
        let doc = doc.canonical(native);
        if doc.default_key() != default {
            return Err(MergeError::DefaultDiffers {
                index,
                expected: key_label(default),
                found: key_label(doc.default_key()),
            });
        }
        for (mine, theirs) in [
            (&mut out.listener_path, &doc.listener_path),
            (&mut out.listener_metadata, &doc.listener_metadata),
        ] {
            match (mine.as_ref(), theirs) {
                (Some(a), Some(b)) if a != b => {
                    return Err(MergeError::ListenerDiffers {
                        index,
                        expected: a.clone(),
                        found: b.clone(),
                    })
                }
                (None, Some(b)) => *mine = Some(b.clone()),
                _ => {}
            }
        }
        out.architectures.extend(doc.architectures);
        out.flags.extend(doc.flags);
        out.syscalls.extend(doc.syscalls);
    }
    let mut out = out.canonical(native);
    union_allowed(&mut out);
    check_conflicts(&out)?;
    Ok(out)
}

/// Drop the rules a union makes redundant (see [`merge`]): ERRNO rules of a (name, arguments)
/// pair that is also allowed, and conditional ALLOW rules of a name allowed unconditionally.
/// `doc` must be canonical; it stays canonical.
fn union_allowed(doc: &mut SeccompDocument) {
    let allowed: BTreeSet<(String, Vec<ArgCondition>)> = doc
        .syscalls
        .iter()
        .filter(|r| r.action == Action::Allow)
        .flat_map(|r| r.names.iter().map(|n| (n.clone(), r.args.clone())))
        .collect();
    let plain = |n: &String| allowed.contains(&(n.clone(), Vec::new()));
    for rule in &mut doc.syscalls {
        let args = rule.args.clone();
        match rule.action {
            Action::Errno => rule
                .names
                .retain(|n| !allowed.contains(&(n.clone(), args.clone()))),
            Action::Allow if !args.is_empty() => rule.names.retain(|n| !plain(n)),
            _ => {}
        }
    }
    doc.syscalls.retain(|r| !r.names.is_empty());
}

fn key_label((action, ret): (Action, Option<u32>)) -> String {
    match ret {
        Some(r) => format!("{action}({r})"),
        None => action.to_string(),
    }
}

fn check_conflicts(doc: &SeccompDocument) -> Result<(), MergeError> {
    // Canonical rules are grouped by their whole key, so a (name, arguments) pair seen twice
    // has two different actions.
    let mut seen: BTreeMap<(&str, &[ArgCondition]), &SyscallRule> = BTreeMap::new();
    for rule in &doc.syscalls {
        for name in &rule.names {
            if let Some(other) = seen.insert((name, &rule.args), rule) {
                return Err(MergeError::Conflict {
                    name: name.clone(),
                    a: rule_label(other),
                    b: rule_label(rule),
                });
            }
        }
    }
    Ok(())
}

/// What changed from one document to another.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProfileDiff {
    /// The default action, before and after, when it changed.
    pub default_action: Option<(String, String)>,
    /// Architectures only the second document has.
    pub arches_added: Vec<Arch>,
    /// Architectures only the first document has.
    pub arches_removed: Vec<Arch>,
    /// Per rule effect (action, return value, conditions): syscalls only the second has.
    pub added: BTreeMap<String, BTreeSet<String>>,
    /// Per rule effect: syscalls only the first has.
    pub removed: BTreeMap<String, BTreeSet<String>>,
}

impl ProfileDiff {
    /// Whether the documents are equivalent.
    pub fn is_empty(&self) -> bool {
        self.default_action.is_none()
            && self.arches_added.is_empty()
            && self.arches_removed.is_empty()
            && self.added.is_empty()
            && self.removed.is_empty()
    }
}

/// The difference between `a` and `b`, compared in canonical form.
pub fn diff(a: &SeccompDocument, b: &SeccompDocument, native: Arch) -> ProfileDiff {
    let a = a.canonical(native);
    let b = b.canonical(native);
    let mut d = ProfileDiff::default();
    if a.default_key() != b.default_key() {
        d.default_action = Some((key_label(a.default_key()), key_label(b.default_key())));
    }
    let aa: BTreeSet<Arch> = a.architectures.iter().copied().collect();
    let ba: BTreeSet<Arch> = b.architectures.iter().copied().collect();
    d.arches_added = ba.difference(&aa).copied().collect();
    d.arches_removed = aa.difference(&ba).copied().collect();
    let an = a.names_by_action();
    let bn = b.names_by_action();
    let labels: BTreeSet<&String> = an.keys().chain(bn.keys()).collect();
    let empty = BTreeSet::new();
    for label in labels {
        let x = an.get(label).unwrap_or(&empty);
        let y = bn.get(label).unwrap_or(&empty);
        let added: BTreeSet<String> = y.difference(x).cloned().collect();
        let removed: BTreeSet<String> = x.difference(y).cloned().collect();
        if !added.is_empty() {
            d.added.insert(label.clone(), added);
        }
        if !removed.is_empty() {
            d.removed.insert(label.clone(), removed);
        }
    }
    d
}

impl fmt::Display for ProfileDiff {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_empty() {
            return writeln!(f, "no differences");
        }
        if let Some((a, b)) = &self.default_action {
            writeln!(f, "~ defaultAction: {a} -> {b}")?;
        }
        for a in &self.arches_removed {
            writeln!(f, "- architecture {a}")?;
        }
        for a in &self.arches_added {
            writeln!(f, "+ architecture {a}")?;
        }
        for (label, names) in &self.removed {
            writeln!(f, "- {label}: {}", join(names))?;
        }
        for (label, names) in &self.added {
            writeln!(f, "+ {label}: {}", join(names))?;
        }
        Ok(())
    }
}

fn join(names: &BTreeSet<String>) -> String {
    names
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .join(", ")
}
