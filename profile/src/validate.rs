//! Validation of profiles, with every problem reported against the field it is about.
//!
//! Syscall names are checked against a [`SyscallTable`] when one is given: the tables live in
//! libseccomp, which the node agent and the operator link; this crate stays pure Rust.

use super::document::{effective_ret, rule_label, ArgCondition, SeccompDocument};
use super::error::FieldError;
use super::resolve::BUILTIN_PREFIX;
use super::spec::ProfileSpec;
use super::types::{max_ret, Action, Arch, MAX_ARG_INDEX};
use std::collections::BTreeMap;

/// The largest rendered document accepted (the kernel's filter limit is far below what a
/// larger JSON would compile to).
pub const MAX_RENDERED_BYTES: usize = 1 << 20;

use crate::limits::MAX_NAME_LEN;

/// Knows which syscall names exist on which architecture.
pub trait SyscallTable {
    /// Whether the table can answer for `arch` at all.
    fn supports(&self, arch: Arch) -> bool;
    /// Whether `name` is a syscall on `arch`.
    fn knows(&self, arch: Arch, name: &str) -> bool;
    /// A short description of the table, for messages (e.g. `libseccomp 2.5.4`).
    fn describe(&self) -> String;
}

/// Validate a SeccompProfile spec. Field paths start with `spec.`.
pub fn validate_spec(
    spec: &ProfileSpec,
    table: Option<&dyn SyscallTable>,
) -> Result<(), Vec<FieldError>> {
    validate_spec_at(spec, "spec.", table)
}

/// Validate a SeccompProfile spec, with `prefix` before every field path (`spec.` for
/// resources, empty for plain profile files).
pub fn validate_spec_at(
    spec: &ProfileSpec,
    prefix: &str,
    table: Option<&dyn SyscallTable>,
) -> Result<(), Vec<FieldError>> {
    let base_field = format!("{prefix}baseProfileName");
    let mut errors = validate_document(&spec.document, prefix, table);
    if let Some(base) = &spec.base_profile_name {
        if let Some(builtin) = base.strip_prefix(BUILTIN_PREFIX) {
            if super::builtin::get(builtin).is_none() {
                errors.push(FieldError::new(
                    &base_field,
                    format!(
                        "`{base}` is not a built-in base profile (known: {})",
                        super::builtin::names()
                            .map(|n| format!("{BUILTIN_PREFIX}{n}"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ));
            }
        } else if base.starts_with(super::oci::OCI_PREFIX) {
            if let Err(reason) = super::oci::OciReference::parse(base) {
                errors.push(FieldError::new(&base_field, reason));
            }
        } else if let Err(reason) = check_object_name(base) {
            errors.push(FieldError::new(&base_field, reason));
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

/// A Kubernetes object name (RFC 1123 subdomain).
pub fn check_object_name(name: &str) -> Result<(), String> {
    let ok_chars = name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.');
    let ok_ends = name
        .bytes()
        .next()
        .zip(name.bytes().last())
        .is_some_and(|(a, z)| a.is_ascii_alphanumeric() && z.is_ascii_alphanumeric());
    if name.is_empty() || name.len() > 253 || !ok_chars || !ok_ends {
        Err(format!(
            "`{name}` is not a valid object name (lower-case letters, digits, '-' and '.', \
             starting and ending with a letter or digit, at most 253 characters)"
        ))
    } else {
        Ok(())
    }
}

/// The size limits of [`crate::limits`]; the schema enforces most of them already, but a
/// profile stored before a limit existed (or under an edited CRD) is held to them here too.
pub fn check_limits(doc: &SeccompDocument, prefix: &str) -> Vec<FieldError> {
    use crate::limits::*;
    let mut errors = Vec::new();
    // The field's path is only built for a count over its limit.
    let mut over = |n: usize, max: usize, what: &str, field: &dyn Fn() -> String| {
        if n > max {
            errors.push(FieldError::new(
                format!("{prefix}{}", field()),
                format!("{n} {what}, over the limit of {max}"),
            ));
        }
    };
    let chars = |s: &Option<String>| s.as_deref().map_or(0, |s| s.chars().count());
    over(doc.syscalls.len(), MAX_RULES, "rules", &|| {
        "syscalls".into()
    });
    over(
        doc.architectures.len(),
        MAX_ARCHITECTURES,
        "entries",
        &|| "architectures".into(),
    );
    over(doc.flags.len(), MAX_FLAGS, "entries", &|| "flags".into());
    over(
        chars(&doc.listener_path),
        MAX_LISTENER_PATH_LEN,
        "characters",
        &|| "listenerPath".into(),
    );
    over(
        chars(&doc.listener_metadata),
        MAX_LISTENER_METADATA_LEN,
        "characters",
        &|| "listenerMetadata".into(),
    );
    let mut total = 0usize;
    for (i, rule) in doc.syscalls.iter().enumerate().take(MAX_RULES) {
        total += rule.names.len();
        over(rule.names.len(), MAX_NAMES_PER_RULE, "names", &|| {
            format!("syscalls[{i}].names")
        });
        over(rule.args.len(), MAX_ARGS, "conditions", &|| {
            format!("syscalls[{i}].args")
        });
    }
    over(
        total,
        MAX_TOTAL_NAMES,
        "syscall names in all rules",
        &|| "syscalls".into(),
    );
    errors
}

/// Validate a document. `prefix` is prepended to field paths (e.g. `spec.`).
pub fn validate_document(
    doc: &SeccompDocument,
    prefix: &str,
    table: Option<&dyn SyscallTable>,
) -> Vec<FieldError> {
    // Sizes first, and nothing else when one is exceeded: the rest of the checks (and the
    // rendering) cost time proportional to the document.
    let limit_errors = check_limits(doc, prefix);
    if !limit_errors.is_empty() {
        return limit_errors;
    }
    let mut errors = Vec::new();
    let mut err = |field: String, reason: String| errors.push(FieldError::new(field, reason));

    match (doc.default_action, doc.default_errno_ret) {
        (a, Some(_)) if !a.takes_errno() => err(
            format!("{prefix}defaultErrnoRet"),
            format!("not allowed with defaultAction {a}: only SCMP_ACT_ERRNO and SCMP_ACT_TRACE take a return value"),
        ),
        (a, Some(r)) if r > max_ret(a) => err(
            format!("{prefix}defaultErrnoRet"),
            format!("{r} is out of range 0..={} for {a}", max_ret(a)),
        ),
        _ => {}
    }
    if doc.default_action == Action::Notify {
        err(
            format!("{prefix}defaultAction"),
            "SCMP_ACT_NOTIFY cannot be the default action (the runtime itself would be notified)"
                .into(),
        );
    }
    if doc.listener_metadata.is_some() && doc.listener_path.is_none() {
        err(
            format!("{prefix}listenerMetadata"),
            "set without listenerPath".into(),
        );
    }
    if let Some(path) = &doc.listener_path {
        if !path.starts_with('/') {
            err(
                format!("{prefix}listenerPath"),
                format!("`{path}` is not an absolute path"),
            );
        }
    }

    let archs: Vec<Arch> = if doc.architectures.is_empty() {
        Arch::native().with_compat()
    } else {
        doc.architectures.clone()
    };

    // (name, args) -> (rule index, action, return value), to find contradicting rules.
    type Seen<'a> = BTreeMap<(&'a str, &'a [ArgCondition]), (usize, Action, Option<u32>)>;
    let mut seen: Seen = BTreeMap::new();
    for (i, rule) in doc.syscalls.iter().enumerate() {
        let field = format!("{prefix}syscalls[{i}]");
        if rule.names.is_empty() {
            err(
                format!("{field}.names"),
                "empty: a rule must name at least one syscall".into(),
            );
        }
        if let Some(r) = rule.errno_ret {
            if !rule.action.takes_errno() {
                err(
                    format!("{field}.errnoRet"),
                    format!("not allowed with action {}: only SCMP_ACT_ERRNO and SCMP_ACT_TRACE take a return value", rule.action),
                );
            } else if r > max_ret(rule.action) {
                err(
                    format!("{field}.errnoRet"),
                    format!(
                        "{r} is out of range 0..={} for {}",
                        max_ret(rule.action),
                        rule.action
                    ),
                );
            }
        }
        if rule.action == Action::Notify && doc.listener_path.is_none() {
            err(
                format!("{field}.action"),
                "SCMP_ACT_NOTIFY needs listenerPath (the seccomp agent's socket)".into(),
            );
        }
        let mut arg_seen = [false; (MAX_ARG_INDEX + 1) as usize];
        for (k, arg) in rule.args.iter().enumerate() {
            if arg.index > MAX_ARG_INDEX {
                err(
                    format!("{field}.args[{k}].index"),
                    format!("{} is out of range 0..={MAX_ARG_INDEX}", arg.index),
                );
            } else if std::mem::replace(&mut arg_seen[arg.index as usize], true) {
                err(
                    format!("{field}.args[{k}].index"),
                    format!(
                        "argument {} is compared twice in one rule; libseccomp allows one comparison per argument",
                        arg.index
                    ),
                );
            }
        }
        let ret = effective_ret(rule.action, rule.errno_ret);
        for (j, name) in rule.names.iter().enumerate() {
            let nfield = format!("{field}.names[{j}]");
            if name.is_empty()
                || name.len() > MAX_NAME_LEN
                || !name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
            {
                err(
                    nfield,
                    format!("`{name}` is not a syscall name (lower-case letters, digits and '_')"),
                );
                continue;
            }
            if let Some(table) = table {
                let checked: Vec<Arch> = archs
                    .iter()
                    .copied()
                    .filter(|a| table.supports(*a))
                    .collect();
                if !checked.is_empty() && !checked.iter().any(|a| table.knows(*a, name)) {
                    err(
                        nfield.clone(),
                        format!(
                            "`{name}` is not a syscall on {} (according to {})",
                            checked
                                .iter()
                                .map(|a| a.as_str())
                                .collect::<Vec<_>>()
                                .join(", "),
                            table.describe()
                        ),
                    );
                }
            }
            match seen.get(&(name.as_str(), rule.args.as_slice())) {
                Some(&(other, action, other_ret)) if (action, other_ret) != (rule.action, ret) => {
                    err(
                        nfield,
                        format!(
                            "`{name}` is also in syscalls[{other}] with action {}; the same syscall and arguments cannot have two actions",
                            rule_label(&doc.syscalls[other])
                        ),
                    );
                }
                Some(_) => {}
                None => {
                    seen.insert((name.as_str(), rule.args.as_slice()), (i, rule.action, ret));
                }
            }
        }
    }

    let size = doc.render(Arch::native()).json.len();
    if size > MAX_RENDERED_BYTES {
        err(
            if prefix.is_empty() {
                "(profile)".to_owned()
            } else {
                prefix.trim_end_matches('.').to_owned()
            },
            format!("rendered profile is {size} bytes, over the limit of {MAX_RENDERED_BYTES}"),
        );
    }
    errors
}
