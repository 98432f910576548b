//! What a profile's status says of complain mode. Pure (the time is passed in): tested
//! without an API server. (When its versions were installed: [`crate::profile::versions`].)
//!
//! - `wouldDeny`: the node agents' `SyscallWouldBeDenied` reports seen since `installedAt`,
//!   kept in the status for the version (see [`would_deny`]).
//! - `ReadyToEnforce` (only for `spec.mode: Complain`): `True` once at least
//!   [`Readiness::containers`] containers started under the current version have run for
//!   [`Readiness::after`] with nothing it would deny; `False` naming what it would deny;
//!   `Unknown` until then. Only containers in the profile's own namespace count: the reports
//!   about other namespaces' pods (a shared profile) do not reach its status.

use crate::profile::versions::Running;
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

/// The profile's `status.wouldDeny` for its current version: nothing while the version is not
/// installed everywhere; then the reports seen since `installed_at`, kept in the status so that
/// an entry outlives its Event (the API server expires Events after an hour, long before a
/// complain profile is judged): per syscall and action, the larger count and the later time.
pub fn would_deny(
    old: Option<&SeccompProfileStatus>,
    reported: Vec<DeniedSyscall>,
    installed_at: Option<Timestamp>,
) -> Vec<DeniedSyscall> {
    let Some(at) = installed_at else {
        return Vec::new();
    };
    let seen = |d: &DeniedSyscall| -> Option<Timestamp> { d.last_seen.as_deref()?.parse().ok() };
    let current = |d: &DeniedSyscall| seen(d).is_none_or(|t| t >= at);
    let same_version = old.is_some_and(|o| {
        o.installed_at
            .as_deref()
            .and_then(|t| t.parse::<Timestamp>().ok())
            == Some(at)
    });
    let kept = old
        .filter(|_| same_version)
        .map(|o| o.would_deny.clone())
        .unwrap_or_default();
    let mut by: std::collections::BTreeMap<(String, String), DeniedSyscall> = Default::default();
    for d in kept.into_iter().chain(reported).filter(|d| current(d)) {
        match by.entry((d.syscall.clone(), d.action.clone())) {
            std::collections::btree_map::Entry::Vacant(e) => {
                e.insert(d);
            }
            std::collections::btree_map::Entry::Occupied(mut e) => {
                let e = e.get_mut();
                e.count = e.count.max(d.count);
                if seen(&d) > seen(e) {
                    e.last_seen = d.last_seen;
                    e.example_pod = d.example_pod;
                }
            }
        }
    }
    let mut out: Vec<DeniedSyscall> = by.into_values().collect();
    out.sort_by(|a, b| {
        seen(b)
            .cmp(&seen(a))
            .then_with(|| a.syscall.cmp(&b.syscall))
    });
    out.truncate(crds::MAX_STATUS_DENIALS);
    out
}

/// The `ReadyToEnforce` condition's (status, reason, message), and when to look again.
pub fn ready_to_enforce(
    rule: Readiness,
    running: &Running,
    installed_at: Option<Timestamp>,
    would_deny: &[DeniedSyscall],
    now: Timestamp,
) -> (&'static str, &'static str, String, Option<Duration>) {
    let Some(at) = installed_at else {
        return (
            "Unknown",
            "NotInstalled",
            "the current version is not installed on every node yet".into(),
            None,
        );
    };
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
    fn would_deny_is_kept_for_the_version_after_its_events_expire() {
        let at = Some(t("2026-12-06T12:00:00Z"));
        assert!(
            would_deny(None, vec![seen("mkdir", "2026-12-06T12:00:01Z")], None).is_empty(),
            "nothing is known of a version not yet installed everywhere"
        );
        let first = would_deny(
            None,
            vec![
                seen("mkdir", "2026-12-06T12:00:01Z"),
                seen("bpf", "2026-12-06T11:00:00Z"),
            ],
            at,
        );
        assert_eq!(
            first.len(),
            1,
            "a report from before the version is not its"
        );
        let old = SeccompProfileStatus {
            installed_at: at.map(|t| t.to_string()),
            would_deny: first.clone(),
            ..Default::default()
        };
        assert_eq!(
            would_deny(Some(&old), vec![], at),
            first,
            "the Event expired; the entry stays"
        );
        let mut again = seen("mkdir", "2026-12-06T12:30:00Z");
        again.count = 1;
        again.example_pod = Some("web-2".into());
        let merged = would_deny(
            Some(&old),
            vec![again, seen("ptrace", "2026-12-06T12:10:00Z")],
            at,
        );
        assert_eq!(merged.len(), 2);
        assert_eq!(
            (
                merged[0].syscall.as_str(),
                merged[0].count,
                merged[0].example_pod.as_deref()
            ),
            ("mkdir", 3, Some("web-2")),
            "the larger count, the later pod, most recent first"
        );
        let next = Some(t("2026-12-06T13:00:00Z"));
        assert!(
            would_deny(Some(&old), vec![], next).is_empty(),
            "a new version starts clean"
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
        assert_eq!(
            ready_to_enforce(
                rule,
                &two,
                None,
                &[seen("mkdir", "2026-12-06T12:00:20Z")],
                later
            )
            .1,
            "NotInstalled",
            "a version not yet everywhere is not judged"
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
