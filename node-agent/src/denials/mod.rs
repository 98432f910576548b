//! Denials under operator profiles, made visible: the kernel audits a refused syscall of a
//! filter installed with `SECCOMP_FILTER_FLAG_LOG` (which the operator adds to every profile
//! that sets no flags, unless told not to) and every kill; this loop reads those records from
//! the audit multicast group, attributes each to the pod, container and operator profile it
//! came from, folds them into series and reports each series
//!
//! - as a Warning Event `SyscallDenied` on the pod, one per container, syscall and action,
//!   updated with its running count (the profile is its `related` object, which is how the
//!   operator keeps the profile's `status.denials`);
//! - in `seccomp_agent_denied_syscalls_total{syscall, action}`.
//!
//! **Would-be denials (complain mode).** A profile in `Complain` mode is installed with every
//! refusing action rendered as `SCMP_ACT_LOG`: the call runs and the kernel writes a record
//! (`SECCOMP_RET_LOG`) — as it does for the profile's own `SCMP_ACT_LOG` rules, which are not
//! would-be denials, and the record carries no arguments. So the loop also reads the logged
//! records and, for a container under an operator profile, classifies each against that
//! profile's current enforced document ([`classify`]: read from the API, cached); a refusal
//! there is reported
//!
//! - as a Warning Event `SyscallWouldBeDenied` on the pod, one per container, syscall and the
//!   action enforcement would take, with its running count (same annotations and `related`
//!   object as `SyscallDenied`; the message adds the argument note when the refusal depends on
//!   arguments);
//! - in `seccomp_agent_would_deny_syscalls_total{syscall}`.
//!
//! Logged records that are not would-be denials are counted and dropped, never reported:
//! - calls enforcement would let run (an original log rule, a syscall the profile has since
//!   allowed): `logged_records_not_refused`;
//! - calls of a `Logs` ProfileRecording's containers, which run under the recording's
//!   `SCMP_ACT_LOG` profile and log every call they make (tens of thousands a second for a
//!   busy one): those records are the recording's. Such a container is known by its pod's
//!   `seccomp-operator.dev/recorded-by` annotation and its profile's name
//!   ([`attribute::is_logs_recording`]); its records are dropped without reading any profile
//!   (once its ID is known, as soon as they are drained): `logged_records_of_recordings`;
//! - records not of a container under an operator profile on this node:
//!   `logged_records_unattributed`.
//!
//! **Two readers.** Refusals and logged calls are read by two [`AuditReader`]s, each with its
//! own netlink socket, its own channel of [`CHANNEL`] records and its own loss count
//! (`denial_records_lost`, `logged_records_lost`); each turn drains the refusals first, then
//! the logged records, each at most a channel's worth. So logged records, however many, never
//! take a refusal's place in the channel. Both sockets get every audit record the kernel sends
//! to the group (each reader's thread keeps its own kind and drops the rest as soon as it has
//! parsed it): a flood of logged records still passes through the refusals' socket, and one
//! faster than that thread parses could overrun it (counted in `denial_records_lost`). If the
//! second reader cannot start, denials are still reported (and the reverse). Would-be denials
//! also have their own waiting room, their own [`Aggregator`] (same bounds) and a fair share of
//! the Event writes, so a complain profile's flood never pushes out a real denial.
//!
//! **Metric labels.** A syscall libseccomp does not name is `unknown-<nr>` in its series, its
//! Event and the Event's annotation, but `unknown` in the metrics' `syscall` label
//! ([`syscall_label`]): a container can call `syscall(n)` for any `n`, and a label set lives
//! as long as the agent.
//!
//! Runs where audit records can be read (the `seccomp-node-recorder` DaemonSet: host network,
//! CAP_AUDIT_READ, CAP_NET_ADMIN for the process-events connector). Records of containers that
//! are not this node's pods under an operator profile are counted as unattributed and dropped.
//! Nothing is reported where the kernel writes no records: booted with `audit=0`, or with `log`
//! missing from `kernel.seccomp.actions_logged` (it is there by default) for would-be
//! denials.
//!
//! - [`attribute`]: container ID → workload (pure); [`classify`]: logged call → would-be
//!   denial, against the profile's enforced document (cache pure, reads in a task);
//!   [`aggregate`]: series and when to report them (pure); [`events`]: the Event writes.

pub mod aggregate;
pub mod attribute;
pub mod classify;
pub mod events;

use crate::metrics::Metrics;
use aggregate::{Aggregator, Kind, SeriesKey};
use attribute::Workload;
use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{watcher, WatchStreamExt};
use kube::{Api, Client};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};
use syscall_recorder::audit::{
    is_denial, is_logged_allow, proc_resolver, Accept, Attributed, AuditReader, SeccompRecord,
};

/// Records waiting between a reader thread and this loop, for each of the two readers (refusals
/// and logged calls); past it they are lost (counted). Also the most drained from one reader in
/// one turn.
pub const CHANNEL: usize = 1 << 16;
/// How a syscall libseccomp does not name is written in series and Events: `unknown-<nr>`.
pub const UNKNOWN_PREFIX: &str = "unknown-";
/// The metric label of every syscall libseccomp does not name.
pub const UNKNOWN_LABEL: &str = "unknown";
/// How often the records are drained.
const DRAIN: Duration = Duration::from_millis(100);
/// How often due series are reported.
const FLUSH: Duration = Duration::from_secs(1);
/// Event writes per flush, whatever the number of due series (the rest wait their turn).
pub const MAX_WRITES_PER_FLUSH: usize = 10;
/// A container's records arrive before the kubelet reports its ID in the pod's status: they
/// wait this long for it (folded per series, at most [`MAX_WAITING`] series).
pub const CLAIM_WAIT: Duration = Duration::from_secs(30);
/// Series waiting at once, for each of the two kinds (denials and logged calls).
pub const MAX_WAITING: usize = 4096;
/// A logged call of a container under an operator profile waits this long for the profile to
/// be read (the API server may be down), then counts as unclassified.
pub const CLASSIFY_WAIT: Duration = Duration::from_secs(300);

/// The denial metrics.
#[derive(Clone, Default)]
pub struct DenialMetrics {
    denied: Family<Vec<(String, String)>, Counter>,
    lost: Counter,
    unattributed: Counter,
    unreported: Counter,
    writes: Counter,
    write_errors: Counter,
    would_deny: Family<Vec<(String, String)>, Counter>,
    logged_lost: Counter,
    logged_unattributed: Counter,
    logged_of_recordings: Counter,
    logged_not_refused: Counter,
    logged_unclassified: Counter,
    would_deny_unreported: Counter,
    would_deny_writes: Counter,
    would_deny_write_errors: Counter,
    profile_reads: Counter,
    profile_read_errors: Counter,
}

impl DenialMetrics {
    /// Register in the agent's registry.
    pub fn register(m: &Metrics) -> Self {
        let d = DenialMetrics::default();
        m.with_registry(|r| {
            r.register(
                "denied_syscalls",
                "Syscalls refused under operator profiles on this node, by syscall and action (labels bounded by the kernel's syscall table, `unknown` for a syscall it does not name, and the six refusing actions)",
                d.denied.clone(),
            );
            r.register(
                "denial_records_lost",
                "Denial audit records lost: socket overruns the kernel reported (each counts once) and records the agent had no room for",
                d.lost.clone(),
            );
            r.register(
                "denial_records_unattributed",
                "Denial audit records not of a container under an operator profile on this node",
                d.unattributed.clone(),
            );
            r.register(
                "denial_records_unreported",
                "Denials not reported because the agent already held its maximum of series",
                d.unreported.clone(),
            );
            r.register(
                "denial_event_writes",
                "SyscallDenied Event creates and updates sent to the API server",
                d.writes.clone(),
            );
            r.register(
                "denial_event_write_errors",
                "SyscallDenied Event writes that failed (retried at the next interval)",
                d.write_errors.clone(),
            );
            r.register(
                "would_deny_syscalls",
                "Syscalls logged under operator profiles in complain mode that the profile's enforced form refuses, by syscall (labels bounded by the kernel's syscall table, `unknown` for a syscall it does not name)",
                d.would_deny.clone(),
            );
            r.register(
                "logged_records_lost",
                "SCMP_ACT_LOG audit records lost: socket overruns the kernel reported (each counts once) and records the agent had no room for (a reader and channel apart from the denials')",
                d.logged_lost.clone(),
            );
            r.register(
                "logged_records_unattributed",
                "SCMP_ACT_LOG audit records not of a container under an operator profile on this node: not reported",
                d.logged_unattributed.clone(),
            );
            r.register(
                "logged_records_of_recordings",
                "SCMP_ACT_LOG audit records of containers a Logs recording put under its profile: the recording's, dropped without reading any profile",
                d.logged_of_recordings.clone(),
            );
            r.register(
                "logged_records_not_refused",
                "SCMP_ACT_LOG audit records under operator profiles whose enforced form lets the call run (an original SCMP_ACT_LOG rule, or a syscall since allowed): not reported",
                d.logged_not_refused.clone(),
            );
            r.register(
                "logged_records_unclassified",
                "SCMP_ACT_LOG audit records under operator profiles that could not be classified (the profile is gone or does not resolve, or could not be read in time) or found the agent's 4,096 waiting series full: not reported",
                d.logged_unclassified.clone(),
            );
            r.register(
                "would_deny_records_unreported",
                "Would-be denials not reported because the agent already held its maximum of would-deny series",
                d.would_deny_unreported.clone(),
            );
            r.register(
                "would_deny_event_writes",
                "SyscallWouldBeDenied Event creates and updates sent to the API server",
                d.would_deny_writes.clone(),
            );
            r.register(
                "would_deny_event_write_errors",
                "SyscallWouldBeDenied Event writes that failed (retried at the next interval)",
                d.would_deny_write_errors.clone(),
            );
            r.register(
                "classify_profile_reads",
                "Operator profiles (with their bases) read from the API server to classify logged calls",
                d.profile_reads.clone(),
            );
            r.register(
                "classify_profile_read_errors",
                "Reads of operator profiles that failed (the API server did not answer; asked again after 5 s)",
                d.profile_read_errors.clone(),
            );
        });
        d
    }
}

/// Watch the pods of `node` into a store.
fn node_pods(client: Client, node: &str) -> Store<Pod> {
    let (store, writer) = reflector::store();
    tokio::spawn(
        reflector::reflector(
            writer,
            watcher(
                Api::<Pod>::all(client),
                crate::watch_config().fields(&format!("spec.nodeName={node}")),
            ),
        )
        .default_backoff()
        .for_each(|_| async {}),
    );
    store
}

/// Records of one series folded in one turn, waiting for their container to be known (and,
/// for logged calls, their profile to be read).
struct Pending {
    count: u64,
    first: k8s_openapi::jiff::Timestamp,
    since: Instant,
}

/// Count a record of `key` in `waiting`; false when it is full (the record is not counted).
fn fold<K: std::hash::Hash + Eq>(
    waiting: &mut HashMap<K, Pending>,
    key: K,
    at: k8s_openapi::jiff::Timestamp,
    now: Instant,
) -> bool {
    if let Some(p) = waiting.get_mut(&key) {
        p.count += 1;
    } else if waiting.len() < MAX_WAITING {
        let p = Pending {
            count: 1,
            first: at,
            since: now,
        };
        waiting.insert(key, p);
    } else {
        return false;
    }
    true
}

/// Event writes of one flush, `limit` in all, between `denied` and `would_deny` due series:
/// each kind is sure of half when it has that many due, and takes what the other leaves.
pub fn share(denied: usize, would_deny: usize, limit: usize) -> (usize, usize) {
    let kept_for_would_deny = would_deny.min(limit / 2);
    let d = denied.min(limit - kept_for_would_deny);
    (d, would_deny.min(limit - d))
}

/// A logged call waiting: its container and syscall (the action is known once classified).
#[derive(Debug, PartialEq, Eq, Hash)]
struct LoggedKey {
    container_id: String,
    syscall: String,
}

/// A record's syscall as its series, Event and annotation name it: libseccomp's name, or
/// `unknown-<nr>`.
pub fn syscall_name(r: &SeccompRecord) -> String {
    r.name()
        .unwrap_or_else(|| format!("{UNKNOWN_PREFIX}{}", r.syscall))
}

/// A series' syscall as the metrics label it: its name, or [`UNKNOWN_LABEL`] for every
/// `unknown-<nr>` (a label set per number would grow without bound: a container can call
/// `syscall(n)` for any `n`).
pub fn syscall_label(syscall: &str) -> &str {
    if syscall.starts_with(UNKNOWN_PREFIX) {
        UNKNOWN_LABEL
    } else {
        syscall
    }
}

impl DenialMetrics {
    /// `n` refusals of `syscall` (a series' name) by `action`.
    fn count_denied(&self, syscall: &str, action: &str, n: u64) {
        self.denied
            .get_or_create(&vec![
                ("syscall".to_owned(), syscall_label(syscall).to_owned()),
                ("action".to_owned(), action.to_owned()),
            ])
            .inc_by(n);
    }

    /// `n` would-be refusals of `syscall` (a series' name).
    fn count_would_deny(&self, syscall: &str, n: u64) {
        self.would_deny
            .get_or_create(&vec![(
                "syscall".to_owned(),
                syscall_label(syscall).to_owned(),
            )])
            .inc_by(n);
    }
}

/// A reader of the records `accept` takes, or None (logged, `what` naming what this node will
/// not report).
fn start_reader(accept: Accept, what: &str) -> Option<AuditReader> {
    match AuditReader::start(CHANNEL, proc_resolver(), accept) {
        Ok(r) => Some(r),
        Err(e) => {
            tracing::warn!(error = %e, "{what} will not be reported on this node");
            None
        }
    }
}

/// Add to `counter` what a reader's running total of losses grew by since `seen`.
fn follow_lost(counter: &Counter, reader: Option<&AuditReader>, seen: &mut u64) {
    if let Some(r) = reader {
        let total = r.lost();
        counter.inc_by(total.saturating_sub(*seen));
        *seen = total;
    }
}

/// The records waiting in `reader`'s channel, at most [`CHANNEL`] of them (a reader filling
/// it as fast as it is drained cannot hold up the turn).
fn drained(reader: &AuditReader) -> impl Iterator<Item = Attributed> + '_ {
    reader.records.try_iter().take(CHANNEL)
}

/// Fold the refusals drained this turn into their waiting series.
fn take_denials(
    records: impl IntoIterator<Item = Attributed>,
    waiting: &mut HashMap<SeriesKey, Pending>,
    m: &DenialMetrics,
    at: k8s_openapi::jiff::Timestamp,
    now: Instant,
) {
    for a in records {
        let Some(container_id) = a.container else {
            m.unattributed.inc();
            continue;
        };
        let key = SeriesKey {
            kind: Kind::Denied,
            container_id,
            syscall: syscall_name(&a.record),
            action: a.record.action().map_or("unknown", |a| a.as_str()),
        };
        if !fold(waiting, key, at, now) {
            m.unattributed.inc();
        }
    }
}

/// Fold the logged records drained this turn into their waiting series, but drop at once
/// those of `of_recordings` (containers a `Logs` recording put under its profile, as of the
/// last attribution).
fn take_logged(
    records: impl IntoIterator<Item = Attributed>,
    of_recordings: &HashSet<String>,
    waiting: &mut HashMap<LoggedKey, Pending>,
    m: &DenialMetrics,
    at: k8s_openapi::jiff::Timestamp,
    now: Instant,
) {
    for a in records {
        let Some(container_id) = a.container else {
            m.logged_unattributed.inc();
            continue;
        };
        if of_recordings.contains(&container_id) {
            m.logged_of_recordings.inc();
            continue;
        }
        let key = LoggedKey {
            container_id,
            syscall: syscall_name(&a.record),
        };
        if !fold(waiting, key, at, now) {
            m.logged_unclassified.inc();
        }
    }
}

/// The containers of `workloads` a `Logs` recording put under its profile.
fn recordings_of(workloads: &HashMap<String, Arc<Workload>>) -> HashSet<String> {
    workloads
        .iter()
        .filter(|(_, w)| w.logs_recording)
        .map(|(id, _)| id.clone())
        .collect()
}

/// Attribute the waiting refusals: those of a container under an operator profile go to
/// `denied`; those whose container is still unknown after [`CLAIM_WAIT`] are unattributed.
fn settle_denials(
    waiting: &mut HashMap<SeriesKey, Pending>,
    workloads: &HashMap<String, Arc<Workload>>,
    denied: &mut Aggregator,
    m: &DenialMetrics,
    now: Instant,
) {
    waiting.retain(|key, p| {
        if let Some(w) = workloads.get(&key.container_id) {
            m.count_denied(&key.syscall, key.action, p.count);
            if !denied.add(key.clone(), w, p.count, p.first, now) {
                m.unreported.inc_by(p.count);
            }
            false
        } else if now.duration_since(p.since) > CLAIM_WAIT {
            m.unattributed.inc_by(p.count);
            false
        } else {
            true
        }
    });
}

/// Attribute and classify the waiting logged calls (see the module's docs): would-be denials
/// go to `would_deny`; a `Logs` recording's are dropped without asking `classifier` for
/// anything; the rest are counted and dropped, or keep waiting for their container to be known
/// or their profile to be read.
fn settle_logged(
    waiting: &mut HashMap<LoggedKey, Pending>,
    workloads: &HashMap<String, Arc<Workload>>,
    known: &HashSet<String>,
    classifier: &mut classify::Classifier,
    would_deny: &mut Aggregator,
    m: &DenialMetrics,
    now: Instant,
) {
    waiting.retain(|key, p| {
        let Some(w) = workloads.get(&key.container_id) else {
            // Not under an operator profile: not ours to report. One not reported by its
            // kubelet yet may still turn out to be.
            let keep =
                !known.contains(&key.container_id) && now.duration_since(p.since) <= CLAIM_WAIT;
            if !keep {
                m.logged_unattributed.inc_by(p.count);
            }
            return keep;
        };
        if w.logs_recording {
            // The recording's: its profile logs every call. Never classified, so never a
            // read of the API server.
            m.logged_of_recordings.inc_by(p.count);
            return false;
        }
        match classifier.classify(&w.profile, &key.syscall, now) {
            classify::Verdict::WouldDeny(wd) => {
                m.count_would_deny(&key.syscall, p.count);
                let series = SeriesKey {
                    kind: Kind::WouldDeny,
                    container_id: key.container_id.clone(),
                    syscall: key.syscall.clone(),
                    action: wd.action.as_str(),
                };
                let note = wd.argument_note();
                if !would_deny.add_classified(series, w, p.count, p.first, now, note) {
                    m.would_deny_unreported.inc_by(p.count);
                }
                false
            }
            classify::Verdict::Runs => {
                m.logged_not_refused.inc_by(p.count);
                false
            }
            classify::Verdict::Unknown => {
                m.logged_unclassified.inc_by(p.count);
                false
            }
            classify::Verdict::Waiting => {
                let keep = now.duration_since(p.since) <= CLASSIFY_WAIT;
                if !keep {
                    m.logged_unclassified.inc_by(p.count);
                }
                keep
            }
        }
    });
}

/// Read, attribute, aggregate and report denials and would-be denials on this node until the
/// process ends.
///
/// Two readers (see the module's docs): refusals, and logged calls. Each turn drains the
/// refusals, then the logged records (at most [`CHANNEL`] of each), and folds them into
/// waiting series (one map update per record; a series already waiting only counts) — except
/// the logged records of containers the last attribution found to be a `Logs` recording's,
/// dropped as they are drained — then attributes each waiting series once. A container's
/// records can arrive before the kubelet reports its ID in the pod's status: its series wait
/// up to [`CLAIM_WAIT`] for it, then count as unattributed. A logged call's series also waits
/// for its profile to be read, up to [`CLASSIFY_WAIT`] (an API server outage shorter than that
/// loses nothing), then counts as unclassified.
pub async fn run(client: Client, node: String, metrics: Arc<Metrics>) {
    let m = DenialMetrics::register(&metrics);
    let denials = start_reader(is_denial, "denials");
    let logged = start_reader(
        is_logged_allow,
        "would-be denials (SyscallWouldBeDenied, complain mode)",
    );
    match (&denials, &logged) {
        (None, None) => return,
        (Some(_), Some(_)) => tracing::info!(
            "reporting denials under operator profiles (SyscallDenied and SyscallWouldBeDenied events)"
        ),
        (Some(_), None) => {
            tracing::info!("reporting denials under operator profiles (SyscallDenied events)")
        }
        (None, Some(_)) => tracing::info!(
            "reporting would-be denials under operator profiles (SyscallWouldBeDenied events)"
        ),
    }
    let pods = node_pods(client.clone(), &node);
    let _ = pods.wait_until_ready().await;
    let mut classifier = classify::Classifier::start(client.clone());
    let mut publisher = events::Publisher::new(client, node);
    let mut denied = Aggregator::default();
    let mut would_deny = Aggregator::default();
    let mut drain = tokio::time::interval(DRAIN);
    drain.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_flush = Instant::now();
    let (mut denials_lost_seen, mut logged_lost_seen) = (0, 0);
    let mut pending: HashMap<SeriesKey, Pending> = Default::default();
    let mut logged_waiting: HashMap<LoggedKey, Pending> = Default::default();
    // Containers a Logs recording put under its profile, as of the last attribution. Replaced
    // at each attribution; container IDs are never reused, so one gone since costs only its
    // place until then.
    let mut of_recordings: HashSet<String> = Default::default();
    loop {
        drain.tick().await;
        let now = Instant::now();
        let at = k8s_openapi::jiff::Timestamp::now();
        // Refusals first; at most a channel's worth of each, so neither holds up the turn.
        take_denials(denials.iter().flat_map(drained), &mut pending, &m, at, now);
        take_logged(
            logged.iter().flat_map(drained),
            &of_recordings,
            &mut logged_waiting,
            &m,
            at,
            now,
        );
        for answer in classifier.receive(now) {
            match answer {
                classify::Answer::Read(_) => {
                    m.profile_reads.inc();
                }
                classify::Answer::Failed((ns, name), why) => {
                    m.profile_read_errors.inc();
                    tracing::warn!(profile = %format!("{ns}/{name}"), error = %why, "reading a profile to classify logged calls failed; retrying later");
                }
            };
        }
        if !pending.is_empty() || !logged_waiting.is_empty() {
            let state = pods.state();
            let workloads = attribute::operator_containers(&state);
            of_recordings = recordings_of(&workloads);
            settle_denials(&mut pending, &workloads, &mut denied, &m, now);
            if !logged_waiting.is_empty() {
                let known = attribute::known_containers(&state);
                settle_logged(
                    &mut logged_waiting,
                    &workloads,
                    &known,
                    &mut classifier,
                    &mut would_deny,
                    &m,
                    now,
                );
            }
        }
        follow_lost(&m.lost, denials.as_ref(), &mut denials_lost_seen);
        follow_lost(&m.logged_lost, logged.as_ref(), &mut logged_lost_seen);
        if now.duration_since(last_flush) < FLUSH {
            continue;
        }
        last_flush = now;
        let due_denied = denied.due(now, MAX_WRITES_PER_FLUSH);
        let due_would_deny = would_deny.due(now, MAX_WRITES_PER_FLUSH);
        let (d, w) = share(due_denied.len(), due_would_deny.len(), MAX_WRITES_PER_FLUSH);
        let due = due_denied
            .into_iter()
            .take(d)
            .chain(due_would_deny.into_iter().take(w));
        for r in due {
            let (agg, writes, errors) = match r.key.kind {
                Kind::Denied => (&mut denied, &m.writes, &m.write_errors),
                Kind::WouldDeny => (
                    &mut would_deny,
                    &m.would_deny_writes,
                    &m.would_deny_write_errors,
                ),
            };
            writes.inc();
            if let Err(e) = publisher.publish(&r).await {
                errors.inc();
                tracing::warn!(error = %e, pod = %format!("{}/{}", r.workload.namespace, r.workload.pod), syscall = %r.key.syscall, reason = events::reason(r.key.kind), "reporting a denial failed; retrying later");
                agg.failed(&r.key, Instant::now());
                // The API server is likely down or slow: the rest wait for the next flush
                // rather than hold up the draining (each write may wait its 5 s timeout).
                break;
            }
            agg.reported(&r.key, r.count, Instant::now());
        }
        denied.forget_idle(now);
        would_deny.forget_idle(now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_is_sure_of_half_the_writes_and_takes_what_the_other_leaves() {
        assert_eq!(share(20, 20, 10), (5, 5), "both busy: half each");
        assert_eq!(share(20, 0, 10), (10, 0));
        assert_eq!(share(0, 20, 10), (0, 10));
        assert_eq!(share(2, 20, 10), (2, 8));
        assert_eq!(share(20, 3, 10), (7, 3));
        assert_eq!(share(3, 4, 10), (3, 4));
        assert_eq!(share(20, 20, 1), (1, 0), "one write: the denial's");
    }

    #[test]
    fn waiting_series_are_bounded() {
        let mut w: HashMap<u32, Pending> = HashMap::new();
        let (at, now) = (k8s_openapi::jiff::Timestamp::now(), Instant::now());
        for i in 0..MAX_WAITING as u32 {
            assert!(fold(&mut w, i, at, now));
        }
        assert!(!fold(&mut w, u32::MAX, at, now), "full");
        assert!(fold(&mut w, 0, at, now), "a waiting series still counts");
        assert_eq!(w[&0].count, 2);
    }

    fn record(syscall: i32, code: u32) -> SeccompRecord {
        SeccompRecord {
            pid: 1,
            arch: 0xc000_003e,
            syscall,
            code,
        }
    }

    fn of(container: &str, syscall: i32, code: u32) -> Attributed {
        Attributed {
            record: record(syscall, code),
            container: Some(container.to_owned()),
        }
    }

    const MKDIR: i32 = 83;
    const NOT_A_SYSCALL: i32 = 9999;
    const ERRNO: u32 = 0x0005_0001;
    const LOG: u32 = syscall_recorder::audit::SECCOMP_RET_LOG;

    #[test]
    fn a_syscall_libseccomp_does_not_name_is_one_label_whatever_its_number() {
        assert_eq!(syscall_name(&record(MKDIR, ERRNO)), "mkdir");
        assert_eq!(syscall_name(&record(NOT_A_SYSCALL, ERRNO)), "unknown-9999");
        assert_eq!(syscall_label("mkdir"), "mkdir");
        assert_eq!(syscall_label("unknown-9999"), UNKNOWN_LABEL);

        let metrics = Metrics::new();
        let m = DenialMetrics::register(&metrics);
        let (at, now) = (k8s_openapi::jiff::Timestamp::now(), Instant::now());
        let mut waiting = HashMap::new();
        // A container calling syscall(n) for many n.
        let calls = (NOT_A_SYSCALL..NOT_A_SYSCALL + 100).map(|nr| of("c1", nr, ERRNO));
        take_denials(calls, &mut waiting, &m, at, now);
        assert_eq!(waiting.len(), 100, "series (and Events) keep the number");
        assert!(waiting.keys().any(|k| k.syscall == "unknown-10000"));
        for key in waiting.keys() {
            m.count_denied(&key.syscall, key.action, 1);
            m.count_would_deny(&key.syscall, 2);
        }
        m.count_would_deny("mkdir", 1);
        let text = metrics.render();
        let lines = |name: &str| -> Vec<String> {
            text.lines()
                .filter(|l| l.starts_with(&format!("seccomp_agent_{name}_total{{")))
                .map(str::to_owned)
                .collect()
        };
        assert_eq!(
            lines("denied_syscalls"),
            [
                r#"seccomp_agent_denied_syscalls_total{syscall="unknown",action="SCMP_ACT_ERRNO"} 100"#
            ],
            "{text}"
        );
        let mut would = lines("would_deny_syscalls");
        would.sort();
        assert_eq!(
            would,
            [
                r#"seccomp_agent_would_deny_syscalls_total{syscall="mkdir"} 1"#,
                r#"seccomp_agent_would_deny_syscalls_total{syscall="unknown"} 200"#,
            ]
        );
        assert!(!text.contains("unknown-"), "{text}");
    }

    #[test]
    fn refusals_and_logged_calls_are_counted_apart() {
        let metrics = Metrics::new();
        DenialMetrics::register(&metrics);
        let text = metrics.render();
        for name in [
            "denial_records_lost_total",
            "logged_records_lost_total",
            "logged_records_of_recordings_total",
            "logged_records_unattributed_total",
        ] {
            assert!(
                text.contains(&format!("\nseccomp_agent_{name} 0")),
                "{name}: {text}"
            );
        }
        let m = DenialMetrics::register(&Metrics::new());
        let (at, now) = (k8s_openapi::jiff::Timestamp::now(), Instant::now());
        let (mut denials, mut logged) = (HashMap::new(), HashMap::new());
        let lost = Attributed {
            record: record(MKDIR, LOG),
            container: None,
        };
        take_logged([lost.clone()], &HashSet::new(), &mut logged, &m, at, now);
        take_denials(
            [Attributed {
                record: record(MKDIR, ERRNO),
                ..lost
            }],
            &mut denials,
            &m,
            at,
            now,
        );
        assert_eq!((m.logged_unattributed.get(), m.unattributed.get()), (1, 1));
    }

    /// A pod a Logs recording's webhook placed (container `rec`, ID `aaa`, under
    /// `learn.log`) with a container under a complain profile of its own (`own`, ID `bbb`,
    /// under `web`), and another pod under `web` with no annotation (`ccc`).
    fn recorded_pods() -> Vec<Pod> {
        let status = |name: &str, id: &str| {
            serde_json::json!({"name": name, "containerID": format!("containerd://{id}"), "image": "",
                               "imageID": "", "ready": true, "restartCount": 0})
        };
        let under = |name: &str, profile: &str| {
            serde_json::json!({"name": name, "securityContext": {"seccompProfile":
                {"type": "Localhost", "localhostProfile": format!("operator/t/{profile}.json")}}})
        };
        let recorded = serde_json::json!({
            "metadata": {"name": "learning", "namespace": "t", "uid": "u1",
                         "annotations": {crds::ANNOTATION_RECORDED_BY: "learn"}},
            "spec": {"containers": [under("rec", "learn.log"), under("own", "web")]},
            "status": {"containerStatuses": [status("rec", "aaa"), status("own", "bbb")]}
        });
        let plain = serde_json::json!({
            "metadata": {"name": "plain", "namespace": "t", "uid": "u2"},
            "spec": {"containers": [under("app", "web")]},
            "status": {"containerStatuses": [status("app", "ccc")]}
        });
        [recorded, plain]
            .into_iter()
            .map(|p| serde_json::from_value(p).unwrap())
            .collect()
    }

    #[test]
    fn a_logs_recordings_logged_calls_are_dropped_without_reading_its_profile() {
        let pods = recorded_pods();
        let workloads = attribute::operator_containers(&pods);
        let known = attribute::known_containers(&pods);
        let (ask, mut asked) = tokio::sync::mpsc::channel(classify::MAX_IN_FLIGHT);
        let (_answer, answers) = tokio::sync::mpsc::channel(classify::MAX_IN_FLIGHT);
        let mut classifier = classify::Classifier::with_channels(ask, answers);
        let mut would_deny = Aggregator::default();
        let m = DenialMetrics::register(&Metrics::new());
        let (at, t0) = (k8s_openapi::jiff::Timestamp::now(), Instant::now());
        let mut waiting = HashMap::new();

        // The first turn: the recording's container is not known to be one yet.
        let records = (0..3)
            .map(|_| of("aaa", MKDIR, LOG))
            .chain((0..2).map(|_| of("bbb", MKDIR, LOG)))
            .chain([of("ccc", MKDIR, LOG)]);
        take_logged(records, &HashSet::new(), &mut waiting, &m, at, t0);
        assert_eq!(waiting.len(), 3);
        settle_logged(
            &mut waiting,
            &workloads,
            &known,
            &mut classifier,
            &mut would_deny,
            &m,
            t0,
        );
        assert_eq!(m.logged_of_recordings.get(), 3, "dropped, counted");
        assert_eq!(
            asked.try_recv().unwrap(),
            ("t".to_owned(), "web".to_owned()),
            "the complain profile is read"
        );
        assert!(
            asked.try_recv().is_err(),
            "the recording's profile is never read"
        );
        assert_eq!(classifier.in_flight(), 1);
        let mut left: Vec<&str> = waiting.keys().map(|k| k.container_id.as_str()).collect();
        left.sort();
        assert_eq!(
            left,
            ["bbb", "ccc"],
            "the other containers, even of the recorded pod, wait for their profile"
        );

        // Later turns: dropped as they are drained, never folded.
        let of_recordings = recordings_of(&workloads);
        assert_eq!(of_recordings, HashSet::from(["aaa".to_owned()]));
        let flood = (0..10_000).map(|_| of("aaa", MKDIR, LOG));
        take_logged(flood, &of_recordings, &mut waiting, &m, at, t0);
        assert_eq!(m.logged_of_recordings.get(), 10_003);
        assert_eq!(waiting.len(), 2, "nothing folded");
        assert!(would_deny.is_empty());
        assert_eq!(
            (
                m.logged_unattributed.get(),
                m.logged_unclassified.get(),
                m.logged_not_refused.get()
            ),
            (0, 0, 0)
        );
    }
}
