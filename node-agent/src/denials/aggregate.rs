//! Denial records folded into series — one per kind, container, syscall and action — and the
//! decision of which series to report now. Pure (time is passed in): tested without an API
//! server.
//!
//! The loop keeps one [`Aggregator`] per [`Kind`]: refusals and would-be refusals (complain
//! mode) never share places, so a complain profile's flood cannot push out a real denial. They
//! are kept apart before they get here too: refusals and logged calls come through two audit
//! readers, each with its own socket, channel and loss count, and wait in two maps of their
//! own ([`super`]). Only would-be refusals get here from the logged calls: a `Logs`
//! recording's records, and calls enforcement would let run, are dropped before.
//!
//! Bounds, whatever the containers do:
//! - at most [`MAX_SERIES`] series are held, [`MAX_SERIES_PER_NAMESPACE`] of one namespace's
//!   pods; a record for a new series past that is counted in [`Aggregator::dropped`] and not
//!   reported;
//! - a series is reported when it first appears and then at most once per
//!   [`REPORT_INTERVAL`], carrying its running count: a container calling a denied syscall a
//!   million times a second costs one API write per interval;
//! - at most a caller-chosen number of reports go out per turn (oldest waiting first);
//! - a series idle for [`FORGET_AFTER`] and fully reported is forgotten.

use super::attribute::Workload;
use k8s_openapi::jiff::Timestamp;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Series held at once.
pub const MAX_SERIES: usize = 4096;
/// Series held at once for the pods of one namespace.
pub const MAX_SERIES_PER_NAMESPACE: usize = 512;
/// A series is reported again at most this often.
pub const REPORT_INTERVAL: Duration = Duration::from_secs(5);
/// A fully reported series with no new record for this long is forgotten.
pub const FORGET_AFTER: Duration = Duration::from_secs(600);

/// What kind of record a series counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// Refused by the filter (`SyscallDenied`).
    Denied,
    /// Logged by the complain rendering of a profile whose enforced form refuses it
    /// (`SyscallWouldBeDenied`).
    WouldDeny,
}

/// What a series counts.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SeriesKey {
    /// Refusals or would-be refusals.
    pub kind: Kind,
    /// The container instance.
    pub container_id: String,
    /// The syscall's name (`unknown-<nr>` when libseccomp has none: bounded, like every
    /// series, by [`MAX_SERIES`]; the metrics label all of those `unknown`).
    pub syscall: String,
    /// The profile action that refused it (`SCMP_ACT_ERRNO`, `SCMP_ACT_KILL_PROCESS`, ...),
    /// or for [`Kind::WouldDeny`] the one enforcement would take.
    pub action: &'static str,
}

#[derive(Debug)]
struct Series {
    workload: Arc<Workload>,
    count: u64,
    reported: u64,
    first: Timestamp,
    last: Timestamp,
    last_record: Instant,
    last_report: Option<Instant>,
    argument_note: &'static str,
}

/// One series to report: its whole count so far.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Report {
    /// The series.
    pub key: SeriesKey,
    /// Whose.
    pub workload: Arc<Workload>,
    /// Records since the agent started counting this series.
    pub count: u64,
    /// First and last record.
    pub first: Timestamp,
    /// See `first`.
    pub last: Timestamp,
    /// For [`Kind::WouldDeny`]: [`seccomp_profile::WouldDeny::argument_note`] as last
    /// classified ("" when the refusal does not depend on the call's arguments).
    pub argument_note: &'static str,
}

/// The series of one node.
#[derive(Debug, Default)]
pub struct Aggregator {
    series: HashMap<SeriesKey, Series>,
    /// Series held per namespace: one tenant cannot take every place.
    per_namespace: HashMap<String, usize>,
    /// Records not counted: their series would have passed [`MAX_SERIES`].
    pub dropped: u64,
}

impl Aggregator {
    /// Count `n` records of one series. False when they were dropped: too many series, on
    /// the node or of the workload's namespace.
    pub fn add(
        &mut self,
        key: SeriesKey,
        workload: &Arc<Workload>,
        n: u64,
        at: Timestamp,
        now: Instant,
    ) -> bool {
        self.add_classified(key, workload, n, at, now, "")
    }

    /// [`Aggregator::add`] for a would-be refusal, with the note its report carries when it
    /// depends on the call's arguments (the latest classification wins: the profile may have
    /// changed).
    pub fn add_classified(
        &mut self,
        key: SeriesKey,
        workload: &Arc<Workload>,
        n: u64,
        at: Timestamp,
        now: Instant,
        argument_note: &'static str,
    ) -> bool {
        if let Some(s) = self.series.get_mut(&key) {
            s.count += n;
            s.last = at;
            s.last_record = now;
            s.argument_note = argument_note;
            return true;
        }
        let in_namespace = self
            .per_namespace
            .get(&workload.namespace)
            .copied()
            .unwrap_or(0);
        if self.series.len() >= MAX_SERIES || in_namespace >= MAX_SERIES_PER_NAMESPACE {
            self.dropped += n;
            return false;
        }
        *self
            .per_namespace
            .entry(workload.namespace.clone())
            .or_default() += 1;
        self.series.insert(
            key,
            Series {
                workload: workload.clone(),
                count: n,
                reported: 0,
                first: at,
                last: at,
                last_record: now,
                last_report: None,
                argument_note,
            },
        );
        true
    }

    /// The series to report now, at most `limit`: those with records not yet reported whose
    /// last report is [`REPORT_INTERVAL`] old (new series first, then the longest waiting).
    pub fn due(&self, now: Instant, limit: usize) -> Vec<Report> {
        let mut due: Vec<(&SeriesKey, &Series)> = self
            .series
            .iter()
            .filter(|(_, s)| {
                s.count > s.reported
                    && s.last_report
                        .is_none_or(|at| now.duration_since(at) >= REPORT_INTERVAL)
            })
            .collect();
        due.sort_by_key(|(k, s)| (s.last_report, (*k).clone()));
        due.into_iter()
            .take(limit)
            .map(|(k, s)| Report {
                key: k.clone(),
                workload: s.workload.clone(),
                count: s.count,
                first: s.first,
                last: s.last,
                argument_note: s.argument_note,
            })
            .collect()
    }

    /// `count` of the series was reported (or given up on) at `now`.
    pub fn reported(&mut self, key: &SeriesKey, count: u64, now: Instant) {
        if let Some(s) = self.series.get_mut(key) {
            s.reported = s.reported.max(count);
            s.last_report = Some(now);
        }
    }

    /// A failed report: try again after the interval, the count still unreported.
    pub fn failed(&mut self, key: &SeriesKey, now: Instant) {
        if let Some(s) = self.series.get_mut(key) {
            s.last_report = Some(now);
        }
    }

    /// Forget series fully reported and idle for [`FORGET_AFTER`].
    pub fn forget_idle(&mut self, now: Instant) {
        let per_namespace = &mut self.per_namespace;
        self.series.retain(|_, s| {
            let keep = s.count > s.reported || now.duration_since(s.last_record) < FORGET_AFTER;
            if !keep {
                if let Some(n) = per_namespace.get_mut(&s.workload.namespace) {
                    *n -= 1;
                    if *n == 0 {
                        per_namespace.remove(&s.workload.namespace);
                    }
                }
            }
            keep
        });
    }

    /// Series held.
    pub fn len(&self) -> usize {
        self.series.len()
    }

    /// Whether no series is held.
    pub fn is_empty(&self) -> bool {
        self.series.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn workload() -> Arc<Workload> {
        workload_in("t")
    }

    fn workload_in(ns: &str) -> Arc<Workload> {
        Arc::new(Workload {
            namespace: ns.into(),
            pod: "p".into(),
            pod_uid: "u".into(),
            container: "c".into(),
            field: "containers",
            profile: ("t".into(), "prof".into()),
            logs_recording: false,
        })
    }

    fn key(c: &str, s: &str) -> SeriesKey {
        SeriesKey {
            kind: Kind::Denied,
            container_id: c.into(),
            syscall: s.into(),
            action: "SCMP_ACT_ERRNO",
        }
    }

    #[test]
    fn a_flood_is_one_report_per_interval_with_its_running_count() {
        let mut a = Aggregator::default();
        let w = workload();
        let t0 = Instant::now();
        let at = Timestamp::now();
        for _ in 0..1_000_000 {
            a.add(key("c1", "mkdir"), &w, 1, at, t0);
        }
        let due = a.due(t0, 10);
        assert_eq!(due.len(), 1);
        assert_eq!(due[0].count, 1_000_000);
        a.reported(&due[0].key, due[0].count, t0);
        a.add(key("c1", "mkdir"), &w, 1, at, t0);
        assert!(
            a.due(t0 + Duration::from_secs(1), 10).is_empty(),
            "not before the interval"
        );
        let again = a.due(t0 + REPORT_INTERVAL, 10);
        assert_eq!(again[0].count, 1_000_001);
        a.reported(&again[0].key, again[0].count, t0 + REPORT_INTERVAL);
        assert!(
            a.due(t0 + REPORT_INTERVAL * 3, 10).is_empty(),
            "nothing new, nothing sent"
        );
    }

    #[test]
    fn series_are_bounded_and_new_ones_go_first() {
        let mut a = Aggregator::default();
        let w = workload();
        let t0 = Instant::now();
        let at = Timestamp::now();
        // Spread over namespaces: the node's bound, not a namespace's.
        let spread: Vec<_> = (0..16).map(|i| workload_in(&format!("ns{i}"))).collect();
        for i in 0..MAX_SERIES + 10 {
            a.add(key(&format!("c{i}"), "mkdir"), &spread[i % 16], 1, at, t0);
        }
        assert_eq!(a.len(), MAX_SERIES);
        assert_eq!(a.dropped, 10);
        assert!(
            a.add(key("c0", "mkdir"), &w, 1, at, t0),
            "a held series still counts"
        );
        let first = a.due(t0, 5);
        assert_eq!(first.len(), 5, "at most the limit per turn");
        for r in &first {
            a.reported(&r.key, r.count, t0);
        }
        a.add(key("c0", "mkdir"), &w, 1, at, t0);
        let next = a.due(t0 + REPORT_INTERVAL, 5);
        assert!(
            next.iter().all(|r| !first.iter().any(|f| f.key == r.key)),
            "never-reported series before reported ones"
        );
    }

    #[test]
    fn one_namespace_cannot_take_every_place() {
        let mut a = Aggregator::default();
        let (hostile, other) = (workload_in("hostile"), workload_in("other"));
        let t0 = Instant::now();
        let at = Timestamp::now();
        for i in 0..MAX_SERIES {
            a.add(key(&format!("h{i}"), "mkdir"), &hostile, 1, at, t0);
        }
        assert_eq!(a.len(), MAX_SERIES_PER_NAMESPACE);
        assert_eq!(a.dropped, (MAX_SERIES - MAX_SERIES_PER_NAMESPACE) as u64);
        assert!(
            a.add(key("o", "bpf"), &other, 1, at, t0),
            "another tenant is still reported"
        );
        for r in a.due(t0, MAX_SERIES) {
            a.reported(&r.key, r.count, t0);
        }
        a.forget_idle(t0 + FORGET_AFTER * 2);
        assert!(a.is_empty());
        assert!(
            a.add(key("h-new", "mkdir"), &hostile, 1, at, t0),
            "its places come back"
        );
    }

    #[test]
    fn failures_wait_and_idle_series_are_forgotten() {
        let mut a = Aggregator::default();
        let w = workload();
        let t0 = Instant::now();
        a.add(key("c", "bpf"), &w, 1, Timestamp::now(), t0);
        a.failed(&key("c", "bpf"), t0);
        assert!(a.due(t0, 10).is_empty());
        assert_eq!(a.due(t0 + REPORT_INTERVAL, 10)[0].count, 1);
        a.forget_idle(t0 + FORGET_AFTER * 2);
        assert_eq!(a.len(), 1, "an unreported series is kept");
        a.reported(&key("c", "bpf"), 1, t0);
        a.forget_idle(t0 + FORGET_AFTER * 2);
        assert!(a.is_empty());
    }

    #[test]
    fn kinds_are_separate_series_and_would_deny_keeps_its_argument_note() {
        let mut a = Aggregator::default();
        let w = workload();
        let t0 = Instant::now();
        let at = Timestamp::now();
        let denied = key("c", "mkdir");
        let would = SeriesKey {
            kind: Kind::WouldDeny,
            ..denied.clone()
        };
        assert!(a.add(denied.clone(), &w, 2, at, t0));
        assert!(a.add_classified(would.clone(), &w, 5, at, t0, "some values only"));
        let due = a.due(t0, 10);
        assert_eq!(
            due.len(),
            2,
            "same container, syscall and action, two kinds"
        );
        let by = |k: Kind| due.iter().find(|r| r.key.kind == k).unwrap();
        assert_eq!(
            (by(Kind::Denied).count, by(Kind::Denied).argument_note),
            (2, "")
        );
        assert_eq!(
            (by(Kind::WouldDeny).count, by(Kind::WouldDeny).argument_note),
            (5, "some values only")
        );
        // The profile changed: the latest classification is the one reported.
        a.reported(&would, 5, t0);
        a.add_classified(would.clone(), &w, 1, at, t0, "");
        let again = a.due(t0 + REPORT_INTERVAL, 10);
        let r = again.iter().find(|r| r.key == would).unwrap();
        assert_eq!((r.count, r.argument_note), (6, ""));
    }
}
