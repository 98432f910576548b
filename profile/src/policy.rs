//! The cluster's profile policy: which privileged profile features an admin allows tenants.
//!
//! - `listenerPath` (and with it `SCMP_ACT_NOTIFY` and `listenerMetadata`): the runtime, as
//!   root on the host, connects to that socket and hands it the container's notify fd and
//!   state. A tenant must not pick the socket, so it is off unless an admin turns it on.
//! - filter `flags`: `SECCOMP_FILTER_FLAG_TSYNC` and `SECCOMP_FILTER_FLAG_LOG` are harmless
//!   (the runtime synchronises threads anyway; LOG only adds audit records) and allowed by
//!   default; `SPEC_ALLOW` turns off a Spectre mitigation for the container and
//!   `WAIT_KILLABLE_RECV` only matters with a listener, so both need an admin.
//!
//! The operator's profile webhook refuses what the policy forbids, the operator reports it in
//! the profile's status, and every node agent refuses to install it, so a profile stored while
//! the webhook was off is never put on a node.

use super::document::SeccompDocument;
use super::error::FieldError;
use super::types::{Action, Flag};
use std::collections::BTreeSet;

/// What tenants' profiles may use.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Policy {
    /// `listenerPath`, `listenerMetadata` and `SCMP_ACT_NOTIFY` are allowed.
    pub allow_listener: bool,
    /// The filter flags a profile may set.
    pub allowed_flags: BTreeSet<Flag>,
    /// Profiles without flags of their own are installed with `SECCOMP_FILTER_FLAG_LOG`, so
    /// that their denials are audited and reported (each profile may still say no with
    /// `reportDenials: false`). Off in [`Policy::default`].
    ///
    /// LOG alone, never with `SECCOMP_FILTER_FLAG_SPEC_ALLOW`: runc 1.2+ adds SPEC_ALLOW to a
    /// profile that has no flags, but takes a profile's flags as they are, so reporting keeps
    /// the kernel's speculative store bypass mitigation for the container wherever the kernel
    /// ties it to seccomp (`spec_store_bypass_disable=seccomp`; Linux 5.16+ defaults to
    /// `prctl`, where the flag changes nothing). Turning a mitigation off is an admin's choice
    /// (`SPEC_ALLOW` in the allowed flags and in the profile), not a side effect of reporting.
    pub report_denials: bool,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            allow_listener: false,
            allowed_flags: Policy::DEFAULT_FLAGS.iter().copied().collect(),
            // Off for library users (seccompctl installs exactly the document); the operator
            // and the node agents turn it on by default (--report-denials).
            report_denials: false,
        }
    }
}

impl Policy {
    /// Flags allowed when the admin says nothing.
    pub const DEFAULT_FLAGS: [Flag; 2] = [Flag::Tsync, Flag::Log];

    /// Parse a comma-separated list of flag names (`SECCOMP_FILTER_FLAG_LOG,...`); empty
    /// allows none.
    pub fn parse_flags(list: &str) -> Result<BTreeSet<Flag>, String> {
        list.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| {
                Flag::ALL
                    .into_iter()
                    .find(|f| f.as_str() == s)
                    .ok_or_else(|| format!("`{s}` is not a seccomp filter flag"))
            })
            .collect()
    }

    /// The document a node installs for a resolved profile: `doc` with
    /// `SECCOMP_FILTER_FLAG_LOG` added when denials are reported (the cluster's setting and
    /// the profile's `reportDenials`) and the profile sets no flags of its own. Applied after
    /// [`Policy::check`]: the flag is the operator's, not the tenant's.
    pub fn installed(
        &self,
        report_denials: Option<bool>,
        mut doc: SeccompDocument,
    ) -> SeccompDocument {
        if self.report_denials && report_denials != Some(false) && doc.flags.is_empty() {
            doc.flags.push(Flag::Log);
        }
        doc
    }

    /// The document a node installs for `spec` resolved into `doc`: [`Policy::installed`],
    /// then rendered in the profile's own mode (see [`crate::complain`]). The operator's
    /// `contentHash` and the agents' files both come from here.
    pub fn for_node(&self, spec: &crate::ProfileSpec, doc: SeccompDocument) -> SeccompDocument {
        self.installed(spec.report_denials, doc).in_mode(spec.mode)
    }

    /// What `doc` uses that this policy does not allow, against the fields under `prefix`.
    pub fn check(&self, doc: &SeccompDocument, prefix: &str) -> Vec<FieldError> {
        const HOW: &str = "not allowed by this cluster's profile policy";
        let mut errors = Vec::new();
        if !self.allow_listener {
            let why = format!(
                "{HOW}: the runtime would connect, as root, to a socket the profile picks \
                 (an admin allows it with --allow-listener-path)"
            );
            if doc.listener_path.is_some() {
                errors.push(FieldError::new(
                    format!("{prefix}listenerPath"),
                    why.clone(),
                ));
            }
            if doc.listener_metadata.is_some() {
                errors.push(FieldError::new(
                    format!("{prefix}listenerMetadata"),
                    why.clone(),
                ));
            }
            if let Some(i) = doc.syscalls.iter().position(|r| r.action == Action::Notify) {
                errors.push(FieldError::new(
                    format!("{prefix}syscalls[{i}].action"),
                    format!("SCMP_ACT_NOTIFY is {why}"),
                ));
            }
        }
        let refused: BTreeSet<Flag> = doc
            .flags
            .iter()
            .copied()
            .filter(|f| !self.allowed_flags.contains(f))
            .collect();
        if !refused.is_empty() {
            let names = |set: &BTreeSet<Flag>| {
                set.iter()
                    .map(|f| f.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            let allowed = names(&self.allowed_flags);
            errors.push(FieldError::new(
                format!("{prefix}flags"),
                format!(
                    "{} {HOW} (allowed: {}; an admin sets --allowed-flags)",
                    names(&refused),
                    if allowed.is_empty() { "none" } else { &allowed }
                ),
            ));
        }
        errors
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(json: &str) -> SeccompDocument {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn by_default_a_listener_and_notify_are_refused_with_the_fields_named() {
        let d = doc(
            r#"{"defaultAction":"SCMP_ACT_ERRNO","listenerPath":"/run/containerd/containerd.sock",
                "listenerMetadata":"x",
                "syscalls":[{"names":["read"],"action":"SCMP_ACT_ALLOW"},{"names":["mkdir"],"action":"SCMP_ACT_NOTIFY"}]}"#,
        );
        let errs = Policy::default().check(&d, "spec.");
        let fields: Vec<&str> = errs.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "spec.listenerPath",
                "spec.listenerMetadata",
                "spec.syscalls[1].action"
            ]
        );
        assert!(errs[0].reason.contains("--allow-listener-path"));
        let open = Policy {
            allow_listener: true,
            ..Policy::default()
        };
        assert!(open.check(&d, "spec.").is_empty());
    }

    #[test]
    fn flags_outside_the_allowed_set_are_refused_and_the_allowed_ones_named() {
        let d = doc(
            r#"{"defaultAction":"SCMP_ACT_ERRNO","flags":["SECCOMP_FILTER_FLAG_LOG","SECCOMP_FILTER_FLAG_SPEC_ALLOW"]}"#,
        );
        let errs = Policy::default().check(&d, "spec.");
        assert_eq!(errs.len(), 1);
        assert_eq!(errs[0].field, "spec.flags");
        assert!(
            errs[0]
                .reason
                .starts_with("SECCOMP_FILTER_FLAG_SPEC_ALLOW not allowed"),
            "{}",
            errs[0].reason
        );
        assert!(errs[0]
            .reason
            .contains("allowed: SECCOMP_FILTER_FLAG_TSYNC, SECCOMP_FILTER_FLAG_LOG"));
        let none = Policy {
            allowed_flags: BTreeSet::new(),
            ..Policy::default()
        };
        assert!(none.check(&d, "")[0].reason.contains("allowed: none"));
        let ok = doc(r#"{"defaultAction":"SCMP_ACT_ERRNO","flags":["SECCOMP_FILTER_FLAG_TSYNC"]}"#);
        assert!(Policy::default().check(&ok, "spec.").is_empty());
    }

    #[test]
    fn flag_lists_parse_and_bad_names_are_named() {
        assert_eq!(
            Policy::parse_flags(" SECCOMP_FILTER_FLAG_LOG ,SECCOMP_FILTER_FLAG_TSYNC").unwrap(),
            BTreeSet::from([Flag::Log, Flag::Tsync])
        );
        assert!(Policy::parse_flags("").unwrap().is_empty());
        assert_eq!(
            Policy::parse_flags("LOG").unwrap_err(),
            "`LOG` is not a seccomp filter flag"
        );
    }

    #[test]
    fn denials_are_logged_unless_the_cluster_or_the_profile_says_no_or_flags_are_set() {
        let on = Policy {
            report_denials: true,
            ..Policy::default()
        };
        let bare = doc(r#"{"defaultAction":"SCMP_ACT_ERRNO"}"#);
        assert_eq!(on.installed(None, bare.clone()).flags, vec![Flag::Log]);
        assert_eq!(
            on.installed(Some(true), bare.clone()).flags,
            vec![Flag::Log]
        );
        assert!(on.installed(Some(false), bare.clone()).flags.is_empty());
        assert!(Policy::default()
            .installed(None, bare.clone())
            .flags
            .is_empty());
        let own =
            doc(r#"{"defaultAction":"SCMP_ACT_ERRNO","flags":["SECCOMP_FILTER_FLAG_TSYNC"]}"#);
        assert_eq!(
            on.installed(None, own).flags,
            vec![Flag::Tsync],
            "a profile's own flags are kept"
        );
        // The rendered file stays plain OCI JSON: the flag by its OCI name.
        let json =
            String::from_utf8(on.installed(None, bare).render(crate::Arch::native()).json).unwrap();
        assert!(
            json.contains(
                r#""flags": [
    "SECCOMP_FILTER_FLAG_LOG"
  ]"#
            ),
            "{json}"
        );
    }
}
