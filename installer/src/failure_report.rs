//! The node's failure report: the profiles this node could not install, bounded per
//! namespace and in all, as the SeccompNodeStatus carries them.

use crate::Installer;
use crds::{NodeProfileState, NodeProfileStatus};
use std::collections::BTreeMap;

impl Installer {
    /// What the node reports of its failures: the profiles in state Error, at most
    /// [`crds::nodestatus::MAX_NOT_INSTALLED_PER_NAMESPACE`] per namespace and
    /// [`crds::nodestatus::MAX_NOT_INSTALLED`] in all, each message cut to
    /// [`crds::nodestatus::MAX_NODE_MESSAGE_BYTES`]. Namespaces with failures left out are
    /// named (so readers count none of their profiles here); when even the names do not fit,
    /// the report is `truncated`. Its size is bounded whatever tenants write, and one
    /// namespace's failures never hide another's.
    pub fn failure_report(&self) -> FailureReport {
        use crds::nodestatus::{
            MAX_NODE_MESSAGE_BYTES, MAX_NOT_INSTALLED, MAX_NOT_INSTALLED_PER_NAMESPACE,
            MAX_TRUNCATED_NAMESPACES,
        };
        let mut out = FailureReport::default();
        let mut per_ns: BTreeMap<&str, usize> = BTreeMap::new();
        for (k, s) in &self.status {
            if s.state != NodeProfileState::Error {
                continue;
            }
            out.errors += 1;
            let listed = per_ns.entry(&k.namespace).or_default();
            if *listed >= MAX_NOT_INSTALLED_PER_NAMESPACE
                || out.not_installed.len() >= MAX_NOT_INSTALLED
            {
                if out.truncated_namespaces.last().map(String::as_str) != Some(&k.namespace) {
                    if out.truncated_namespaces.len() < MAX_TRUNCATED_NAMESPACES {
                        out.truncated_namespaces.push(k.namespace.to_string());
                    } else {
                        out.truncated = true;
                    }
                }
                continue;
            }
            *listed += 1;
            out.not_installed.push(NodeProfileStatus {
                namespace: k.namespace.to_string(),
                name: k.name.to_string(),
                content_hash: s.hash.map(|h| h.to_string()),
                state: s.state,
                message: s
                    .message
                    .as_deref()
                    .map(|m| seccomp_profile::limits::truncate(m, MAX_NODE_MESSAGE_BYTES)),
                updated: None,
            });
        }
        out
    }
}

/// The failures a node reports (see [`Installer::failure_report`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FailureReport {
    /// Profiles in state Error, counted in full.
    pub errors: usize,
    /// The listed ones.
    pub not_installed: Vec<NodeProfileStatus>,
    /// Namespaces with failures left out of the list.
    pub truncated_namespaces: Vec<String>,
    /// Namespaces with failures left out even of `truncated_namespaces`.
    pub truncated: bool,
}

#[cfg(test)]
mod tests {
    use crate::paths::ProfileRoot;
    use crate::tests::{p, ALLOW_READ};
    use crate::Installer;

    #[test]
    fn a_flood_of_invalid_profiles_keeps_the_node_report_bounded() {
        use crds::nodestatus::*;
        let tmp = tempfile::tempdir().unwrap();
        let mut inst = Installer::new(ProfileRoot::new(tmp.path())).unwrap();
        let rules: Vec<String> = (0..3)
            .map(|r| {
                let names: Vec<String> = (0..1000)
                    .map(|i| format!("\"no_such_call_{}\"", r * 1000 + i))
                    .collect();
                format!(
                    r#"{{"names":[{}],"action":"SCMP_ACT_ALLOW"}}"#,
                    names.join(",")
                )
            })
            .collect();
        let json = format!(
            r#"{{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{}]}}"#,
            rules.join(",")
        );
        // One tenant with 200 invalid profiles, 400 tenants with one each, one good profile.
        let long = "n".repeat(200);
        let mut set: Vec<_> = (0..200)
            .map(|i| p("evil", &format!("{long}{i}"), &json))
            .collect();
        set.extend((0..400).map(|i| p(&format!("t{i:03}"), "bad", &json)));
        set.push(p("good", "web", ALLOW_READ));
        let r = inst.sync(&set);
        assert_eq!((r.invalid, r.written), (600, 1));
        let report = inst.failure_report();
        assert_eq!(report.errors, 600, "every failure is counted");
        assert_eq!(report.not_installed.len(), MAX_NOT_INSTALLED);
        let evil = report
            .not_installed
            .iter()
            .filter(|e| e.namespace == "evil")
            .count();
        assert_eq!(
            evil, MAX_NOT_INSTALLED_PER_NAMESPACE,
            "one namespace cannot fill the list"
        );
        assert!(report
            .not_installed
            .iter()
            .all(|e| e.message.as_deref().unwrap().len() <= MAX_NODE_MESSAGE_BYTES));
        // evil is named; so are the tenants that did not fit, up to the bound; then truncated.
        assert_eq!(report.truncated_namespaces[0], "evil");
        assert_eq!(report.truncated_namespaces.len(), MAX_TRUNCATED_NAMESPACES);
        assert!(report.truncated);
        assert!(!report.not_installed.iter().any(|e| e.namespace == "good"));
        // The whole object stays far below the limit the issue sets (256 KiB).
        let status = crds::SeccompNodeStatusStatus {
            not_installed: report.not_installed,
            truncated_namespaces: report.truncated_namespaces,
            truncated: report.truncated,
            ..Default::default()
        };
        let bytes = serde_json::to_vec(&status).unwrap().len();
        assert!(bytes < 256 * 1024, "{bytes} bytes");
    }
}
