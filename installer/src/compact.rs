//! What the agent keeps of each SeccompProfile: its cost must follow what the profile means,
//! not how it is spelled. A tenant can store profiles of thousands of names (one name
//! repeated, or unknown names) and the agent holds every profile of the cluster, so each
//! object is compacted as it arrives from the watch, before the store keeps it:
//!
//! - `managedFields`, kubectl's `last-applied-configuration` annotation (a second copy of
//!   the whole object, as text) and the status (the operator's, with a condition per
//!   concern) are dropped: the agent reads none of them;
//! - a valid profile keeps each rule's names sorted and unique (a rule's duplicate names mean
//!   nothing; the canonical rendering removes them anyway);
//! - an invalid profile is validated once, here, and kept without its rules, with the
//!   (bounded) reason in an annotation only this process sees; it is reported as an error and
//!   never installed, and neither is any profile built on it.

use crds::SeccompProfile;
use kube::ResourceExt;
use seccomp_filter::Libseccomp;
use std::collections::HashMap;
use std::sync::Arc;

/// The in-memory annotation that marks a profile compacted as invalid; its value is why.
/// Never written to the API server.
pub const INVALID: &str = "seccomp-operator.dev/agent-invalid";

const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// Compact `p` in place (see the module documentation).
pub fn compact(p: &mut SeccompProfile) {
    p.metadata.managed_fields = None;
    p.status = None;
    if let Some(a) = p.metadata.annotations.as_mut() {
        a.remove(LAST_APPLIED);
        a.remove(INVALID);
    }
    match seccomp_profile::validate_spec(&p.spec, Some(&Libseccomp)) {
        Ok(()) => {
            for rule in &mut p.spec.document.syscalls {
                rule.names.sort_unstable();
                rule.names.dedup();
                rule.names.shrink_to_fit();
            }
        }
        Err(errs) => {
            let why = seccomp_profile::limits::summarize(errs.iter().map(ToString::to_string));
            p.spec.document.syscalls = Vec::new();
            p.annotations_mut().insert(INVALID.to_owned(), why);
        }
    }
}

/// The profiles compacted as invalid, by namespace and name, and why.
pub fn refused(profiles: &[Arc<SeccompProfile>]) -> HashMap<(String, String), String> {
    profiles
        .iter()
        .filter_map(|p| {
            let why = p.annotations().get(INVALID)?.clone();
            Some(((p.namespace()?, p.name_any()), why))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use seccomp_profile::{parse_profile, EvalContext};

    fn profile(json: &str) -> SeccompProfile {
        let mut p = SeccompProfile::new(
            "p",
            parse_profile(json, &EvalContext::host())
                .unwrap()
                .spec
                .into(),
        );
        p.metadata.namespace = Some("a".into());
        p.metadata.managed_fields = Some(vec![Default::default()]);
        p.annotations_mut()
            .insert(LAST_APPLIED.into(), "x".repeat(100_000));
        p
    }

    #[test]
    fn repeated_names_cost_nothing_and_copies_are_dropped() {
        let names = vec!["\"read\""; 1024].join(",");
        let rule = format!(r#"{{"names":[{names}],"action":"SCMP_ACT_ALLOW"}}"#);
        let json = format!(
            r#"{{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{rule},{rule},{{"names":["write","read"],"action":"SCMP_ACT_ALLOW"}}]}}"#
        );
        let original = profile(&json);
        let mut p = original.clone();
        compact(&mut p);
        assert!(p.metadata.managed_fields.is_none());
        assert!(p.annotations().is_empty());
        let names: Vec<&Vec<String>> = p.spec.document.syscalls.iter().map(|r| &r.names).collect();
        assert_eq!(
            names,
            [
                &vec!["read".to_string()],
                &vec!["read".into()],
                &vec!["read".into(), "write".into()]
            ]
        );
        // The same file either way.
        let arch = seccomp_profile::Arch::X86_64;
        assert_eq!(
            original.spec.document.render(arch).hash,
            p.spec.document.render(arch).hash
        );
        assert!(refused(&[Arc::new(p)]).is_empty());
    }

    #[test]
    fn invalid_profiles_keep_only_the_bounded_reason() {
        let names: Vec<String> = (0..1000).map(|i| format!("\"no_such_call_{i}\"")).collect();
        let json = format!(
            r#"{{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{{"names":[{}],"action":"SCMP_ACT_ALLOW"}}]}}"#,
            names.join(",")
        );
        let mut p = profile(&json);
        compact(&mut p);
        assert!(p.spec.document.syscalls.is_empty());
        let why = &p.annotations()[INVALID];
        assert!(
            why.contains("no_such_call_0") && why.ends_with(" more"),
            "{why}"
        );
        assert!(why.len() <= seccomp_profile::limits::MAX_MESSAGE_BYTES);
        let r = refused(&[Arc::new(p.clone())]);
        assert_eq!(r[&("a".to_string(), "p".to_string())], *why);
        // Compacting again (a resync of the same object) does not change the verdict.
        let mut again = profile(&json);
        compact(&mut again);
        assert_eq!(again.annotations()[INVALID], *why);
    }
}
