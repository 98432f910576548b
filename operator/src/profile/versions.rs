//! What a profile's status says of its versions. Pure (the time is passed in): tested without
//! an API server.
//!
//! - `installedAt`: when the current version (`contentHash`) was first seen installed on every
//!   counted node. A container keeps the filter it started with (the kernel cannot change it),
//!   so a container started before then may run an older version.
//! - `podsOnOlderVersion`: running pods that use the profile with a container started before
//!   `installedAt` (every running pod while the current version is not yet on every node).

use crds::SeccompProfileStatus;
use k8s_openapi::jiff::Timestamp;

/// Running pods using the profile, with the start of each of their containers under it.
pub type Running = [(String, Vec<Timestamp>)];

/// When the current version was installed everywhere: kept while `contentHash` stays the
/// same; `now` when it is first seen installed; unknown before. A status written by an
/// operator without the field takes the time the profile became Ready.
pub fn installed_at(
    old: Option<&SeccompProfileStatus>,
    content_hash: Option<&str>,
    installed: bool,
    now: Timestamp,
) -> Option<Timestamp> {
    if let Some(old) = old.filter(|o| o.content_hash.as_deref() == content_hash) {
        if let Some(t) = old.installed_at.as_deref().and_then(|t| t.parse().ok()) {
            return Some(t);
        }
        if installed {
            let ready_since = old
                .conditions
                .iter()
                .find(|c| c.type_ == "Ready" && c.status == "True")
                .map(|c| c.last_transition_time.0)
                .filter(|t| *t > Timestamp::UNIX_EPOCH);
            return Some(ready_since.unwrap_or(now));
        }
    }
    // Whole seconds: container start times are.
    installed.then(|| Timestamp::from_second(now.as_second()).unwrap_or(now))
}

/// Pods with a container started before `installed_at` (all of them while it is unknown).
pub fn pods_on_older_version(running: &Running, installed_at: Option<Timestamp>) -> u32 {
    running
        .iter()
        .filter(|(_, starts)| installed_at.is_none_or(|at| starts.iter().any(|s| *s < at)))
        .count() as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn installed_at_is_kept_per_version() {
        let now = t("2026-12-06T12:00:00.7Z");
        assert_eq!(installed_at(None, Some("sha256:a"), false, now), None);
        let first = installed_at(None, Some("sha256:a"), true, now).unwrap();
        assert_eq!(first, t("2026-12-06T12:00:00Z"), "whole seconds");
        let old = SeccompProfileStatus {
            content_hash: Some("sha256:a".into()),
            installed_at: Some(first.to_string()),
            ..Default::default()
        };
        let later = t("2026-12-06T13:00:00Z");
        assert_eq!(
            installed_at(Some(&old), Some("sha256:a"), false, later),
            Some(first),
            "a node joining does not make it a new version"
        );
        assert_eq!(
            installed_at(Some(&old), Some("sha256:b"), true, later),
            Some(later),
            "a new version"
        );
        assert_eq!(
            installed_at(Some(&old), Some("sha256:b"), false, later),
            None
        );
    }

    #[test]
    fn pods_started_before_the_version_are_counted() {
        let running = vec![
            ("t/old".to_owned(), vec![t("2026-12-06T11:00:00Z")]),
            ("t/new".to_owned(), vec![t("2026-12-06T12:00:05Z")]),
            (
                "t/mixed".to_owned(),
                vec![t("2026-12-06T12:00:05Z"), t("2026-12-06T11:59:00Z")],
            ),
        ];
        let at = Some(t("2026-12-06T12:00:00Z"));
        assert_eq!(pods_on_older_version(&running, at), 2);
        assert_eq!(
            pods_on_older_version(&running, None),
            3,
            "not installed yet: all"
        );
    }
}
