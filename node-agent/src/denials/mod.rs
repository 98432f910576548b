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
//! Logged calls enforcement would let run (an original log rule, a syscall the profile has
//! since allowed) are counted and dropped. Logged records not of an operator-profile container
//! are dropped without a word — they are most often a `Logs` ProfileRecording's, which stay the
//! recording's — and counted apart from the unattributed denials. Would-be denials have their
//! own waiting room, their own [`Aggregator`] (same bounds) and a fair share of the Event
//! writes, so a complain profile's flood never pushes out a real denial.
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
use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{watcher, WatchStreamExt};
use kube::{Api, Client};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use syscall_recorder::audit::{is_denial_or_logged, is_logged_allow, proc_resolver, AuditReader};

/// Records waiting between the reader thread and this loop; past it they are lost (counted).
const CHANNEL: usize = 1 << 16;
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
    logged_unattributed: Counter,
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
                "Syscalls refused under operator profiles on this node, by syscall and action (labels bounded by the kernel's syscall table and the six refusing actions)",
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
                "Syscalls logged under operator profiles in complain mode that the profile's enforced form refuses, by syscall (labels bounded by the kernel's syscall table)",
                d.would_deny.clone(),
            );
            r.register(
                "logged_records_unattributed",
                "SCMP_ACT_LOG audit records not of a container under an operator profile on this node (most often a Logs recording's): not reported",
                d.logged_unattributed.clone(),
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

/// Read, attribute, aggregate and report denials and would-be denials on this node until the
/// process ends.
///
/// Each turn folds the records that arrived into series first (one map update per record, no
/// allocation for a series already seen), then attributes each series once. A container's
/// records can arrive before the kubelet reports its ID in the pod's status: its series wait
/// up to [`CLAIM_WAIT`] for it, then count as unattributed. A logged call's series also waits
/// for its profile to be read, up to [`CLASSIFY_WAIT`] (an API server outage shorter than that
/// loses nothing), then counts as unclassified.
pub async fn run(client: Client, node: String, metrics: Arc<Metrics>) {
    let m = DenialMetrics::register(&metrics);
    let reader = match AuditReader::start(CHANNEL, proc_resolver(), is_denial_or_logged) {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(error = %e, "denials will not be reported on this node");
            return;
        }
    };
    tracing::info!(
        "reporting denials under operator profiles (SyscallDenied and SyscallWouldBeDenied events)"
    );
    let pods = node_pods(client.clone(), &node);
    let _ = pods.wait_until_ready().await;
    let mut classifier = classify::Classifier::start(client.clone());
    let mut publisher = events::Publisher::new(client, node);
    let mut denied = Aggregator::default();
    let mut would_deny = Aggregator::default();
    let mut drain = tokio::time::interval(DRAIN);
    drain.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_flush = Instant::now();
    let mut lost_seen = 0;
    let mut pending: HashMap<SeriesKey, Pending> = Default::default();
    let mut logged: HashMap<LoggedKey, Pending> = Default::default();
    loop {
        drain.tick().await;
        let now = Instant::now();
        let at = k8s_openapi::jiff::Timestamp::now();
        while let Ok(a) = reader.records.try_recv() {
            let is_logged = is_logged_allow(a.record.code);
            let Some(container_id) = a.container else {
                if is_logged {
                    m.logged_unattributed.inc();
                } else {
                    m.unattributed.inc();
                }
                continue;
            };
            let syscall = a
                .record
                .name()
                .unwrap_or_else(|| format!("unknown-{}", a.record.syscall));
            if is_logged {
                let key = LoggedKey {
                    container_id,
                    syscall,
                };
                if !fold(&mut logged, key, at, now) {
                    m.logged_unclassified.inc();
                }
            } else {
                let key = SeriesKey {
                    kind: Kind::Denied,
                    container_id,
                    syscall,
                    action: a.record.action().map_or("unknown", |a| a.as_str()),
                };
                if !fold(&mut pending, key, at, now) {
                    m.unattributed.inc();
                }
            }
        }
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
        if !pending.is_empty() || !logged.is_empty() {
            let state = pods.state();
            let workloads = attribute::operator_containers(&state);
            let known = if logged.is_empty() {
                Default::default()
            } else {
                attribute::known_containers(&state)
            };
            pending.retain(|key, p| {
                if let Some(w) = workloads.get(&key.container_id) {
                    m.denied
                        .get_or_create(&vec![
                            ("syscall".to_owned(), key.syscall.clone()),
                            ("action".to_owned(), key.action.to_owned()),
                        ])
                        .inc_by(p.count);
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
            logged.retain(|key, p| {
                let Some(w) = workloads.get(&key.container_id) else {
                    // Most often a Logs recording's container: not ours to report. One not
                    // reported by its kubelet yet may still turn out to be under an operator
                    // profile.
                    let keep = !known.contains(&key.container_id)
                        && now.duration_since(p.since) <= CLAIM_WAIT;
                    if !keep {
                        m.logged_unattributed.inc_by(p.count);
                    }
                    return keep;
                };
                match classifier.classify(&w.profile, &key.syscall, now) {
                    classify::Verdict::WouldDeny(wd) => {
                        m.would_deny
                            .get_or_create(&vec![("syscall".to_owned(), key.syscall.clone())])
                            .inc_by(p.count);
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
        let lost = reader.lost();
        m.lost.inc_by(lost.saturating_sub(lost_seen));
        lost_seen = lost;
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
}
