//! What a profile's status says of its versions and of complain mode. Pure (the time is passed
//! in): tested without an API server.
//!
//! - `installedAt`: when the current version (`contentHash`) was first seen installed on every
//!   counted node. A container keeps the filter it started with (the kernel cannot change it),
//!   so a container started before then may run an older version.
//! - `podsOnOlderVersion`: running pods that use the profile with a container started before
//!   `installedAt` (every running pod while the current version is not yet on every node).
//! - `wouldDeny`: the node agents' `SyscallWouldBeDenied` reports seen since `installedAt`.
//! - `ReadyToEnforce` (only for `spec.mode: Complain`): `True` once at least
//!   [`Readiness::containers`] containers started under the current version have run for
//!   [`Readiness::after`] with nothing it would deny; `False` naming what it would deny;
//!   `Unknown` until then.

use crds::{DeniedSyscall, SeccompProfileStatus};
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use std::time::Duration;

/// When a complain profile counts as ready to enforce (`--complain-ready-after`,
/// `--complain-ready-containers`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Readiness {
    /// How long each counted container must have run.
    pub after: Duration,
    /// How many containers must have run that long.
    pub containers: u32,
}

impl Default for Readiness {
    fn default() -> Self {
        Readiness {
            after: Duration::from_secs(24 * 3600),
            containers: 1,
        }
    }
}

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
    let same = old.is_some_and(|o| o.content_hash.as_deref() == content_hash);
    if same {
        let old = old.expect("checked above");
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

/// The reports seen since `installed_at` (all while it is unknown).
pub fn since(reports: Vec<DeniedSyscall>, installed_at: Option<Timestamp>) -> Vec<DeniedSyscall> {
    let Some(at) = installed_at else {
        return reports;
    };
    reports
        .into_iter()
        .filter(|d| {
            d.last_seen
                .as_deref()
                .and_then(|t| t.parse::<Timestamp>().ok())
                .is_none_or(|t| t >= at)
        })
        .collect()
}

/// The `ReadyToEnforce` condition's (status, reason, message), and when to look again.
pub fn ready_to_enforce(
    rule: Readiness,
    running: &Running,
    installed_at: Option<Timestamp>,
    would_deny: &[DeniedSyscall],
    now: Timestamp,
) -> (&'static str, &'static str, String, Option<Duration>) {
    if !would_deny.is_empty() {
        let seen: Vec<String> = would_deny
            .iter()
            .take(5)
            .map(|d| {
                let times = if d.count == 1 {
                    "once".to_owned()
                } else {
                    format!("{} times", d.count)
                };
                let pod = d
                    .example_pod
                    .as_deref()
                    .map(|p| format!(", last in pod {p}"))
                    .unwrap_or_default();
                format!("{} ({}, {times}{pod})", d.syscall, d.action)
            })
            .collect();
        let more = would_deny.len().saturating_sub(5);
        let more = if more > 0 {
            format!(" and {more} more")
        } else {
            String::new()
        };
        return (
            "False",
            "WouldDeny",
            format!(
                "enforcing would deny {}{more}: add what the workload needs to spec.syscalls (or record it again), then watch again (see status.wouldDeny)",
                seen.join(", ")
            ),
            None,
        );
    }
    let Some(at) = installed_at else {
        return (
            "Unknown",
            "NotInstalled",
            "the current version is not installed on every node yet".into(),
            None,
        );
    };
    let mut under: Vec<Timestamp> = running
        .iter()
        .flat_map(|(_, s)| s.iter().copied())
        .filter(|s| *s >= at)
        .collect();
    under.sort();
    let after = humantime::format_duration(rule.after);
    let needed = rule.containers.max(1) as usize;
    if under.is_empty() {
        return (
            "Unknown",
            "NoContainers",
            format!(
                "no container has run under this version yet (installed at {at}); ready when {needed} container(s) have run under it for {after} with nothing it would deny"
            ),
            None,
        );
    }
    let long = SignedDuration::try_from(rule.after).unwrap_or(SignedDuration::MAX);
    let ran_long = under
        .iter()
        .filter(|s| now.duration_since(**s) >= long)
        .count();
    if ran_long >= needed {
        return (
            "True",
            "NothingWouldBeDenied",
            format!(
                "{ran_long} container(s) have run under this version for at least {after} (the first since {}) and nothing would have been denied: set spec.mode to Enforce",
                under[0]
            ),
            None,
        );
    }
    // The `needed`-th oldest container reaches `after` first.
    let next = under
        .get(needed - 1)
        .map(|s| {
            let due = long - now.duration_since(*s);
            Duration::try_from(due).unwrap_or_default()
        })
        .filter(|d| !d.is_zero());
    (
        "Unknown",
        "Observing",
        format!(
            "{} container(s) run under this version, the first since {}; ready when {needed} have run for {after} with nothing it would deny",
            under.len(),
            under[0]
        ),
        next,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn seen(syscall: &str, at: &str) -> DeniedSyscall {
        DeniedSyscall {
            syscall: syscall.into(),
            action: "SCMP_ACT_ERRNO".into(),
            count: 3,
            last_seen: Some(at.into()),
            example_pod: Some("web-1".into()),
        }
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
        assert_eq!(
            since(
                vec![
                    seen("mkdir", "2026-12-06T12:00:01Z"),
                    seen("bpf", "2026-12-06T11:00:00Z")
                ],
                at
            )
            .len(),
            1
        );
    }

    #[test]
    fn ready_to_enforce_after_enough_clean_time() {
        let rule = Readiness {
            after: Duration::from_secs(60),
            containers: 2,
        };
        let at = Some(t("2026-12-06T12:00:00Z"));
        let now = t("2026-12-06T12:01:30Z");
        let none: Vec<(String, Vec<Timestamp>)> = vec![];
        assert_eq!(ready_to_enforce(rule, &none, at, &[], now).0, "Unknown");
        assert_eq!(
            ready_to_enforce(rule, &none, at, &[], now).1,
            "NoContainers"
        );
        let one = vec![("t/a".to_owned(), vec![t("2026-12-06T12:00:10Z")])];
        let (status, reason, _, next) = ready_to_enforce(rule, &one, at, &[], now);
        assert_eq!((status, reason, next), ("Unknown", "Observing", None));
        let two = vec![
            ("t/a".to_owned(), vec![t("2026-12-06T12:00:10Z")]),
            ("t/b".to_owned(), vec![t("2026-12-06T12:01:00Z")]),
        ];
        let (status, reason, _, next) = ready_to_enforce(rule, &two, at, &[], now);
        assert_eq!((status, reason), ("Unknown", "Observing"));
        assert_eq!(
            next,
            Some(Duration::from_secs(30)),
            "when the second reaches a minute"
        );
        let later = t("2026-12-06T12:02:00Z");
        let (status, reason, msg, _) = ready_to_enforce(rule, &two, at, &[], later);
        assert_eq!((status, reason), ("True", "NothingWouldBeDenied"));
        assert!(
            msg.contains("2 container(s)") && msg.contains("1m"),
            "{msg}"
        );
        let old = vec![("t/old".to_owned(), vec![t("2026-12-06T11:00:00Z")])];
        assert_eq!(
            ready_to_enforce(rule, &old, at, &[], later).1,
            "NoContainers",
            "a container of an older version does not count"
        );
        let (status, reason, msg, _) = ready_to_enforce(
            rule,
            &two,
            at,
            &[seen("mkdir", "2026-12-06T12:00:20Z")],
            later,
        );
        assert_eq!((status, reason), ("False", "WouldDeny"));
        assert!(
            msg.contains("mkdir (SCMP_ACT_ERRNO, 3 times, last in pod web-1)"),
            "{msg}"
        );
    }
}
