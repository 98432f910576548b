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
//! Runs where audit records can be read (the `seccomp-node-recorder` DaemonSet: host network,
//! CAP_AUDIT_READ, CAP_NET_ADMIN for the process-events connector). Records of containers that
//! are not this node's pods under an operator profile are counted as unattributed and dropped.
//!
//! - [`attribute`]: container ID → workload (pure); [`aggregate`]: series and when to report
//!   them (pure); [`events`]: the Event writes.

pub mod aggregate;
pub mod attribute;
pub mod events;

use crate::metrics::Metrics;
use aggregate::{Aggregator, SeriesKey};
use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{watcher, WatchStreamExt};
use kube::{Api, Client};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use std::sync::Arc;
use std::time::{Duration, Instant};
use syscall_recorder::audit::{is_denial, proc_resolver, AuditReader};

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
const CLAIM_WAIT: Duration = Duration::from_secs(30);
const MAX_WAITING: usize = 4096;

/// The denial metrics.
#[derive(Clone, Default)]
pub struct DenialMetrics {
    denied: Family<Vec<(String, String)>, Counter>,
    lost: Counter,
    unattributed: Counter,
    unreported: Counter,
    writes: Counter,
    write_errors: Counter,
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

/// Records of one series folded in one turn, waiting for their container to be known.
struct Pending {
    count: u64,
    first: k8s_openapi::jiff::Timestamp,
    since: Instant,
}

/// Read, attribute, aggregate and report denials on this node until the process ends.
///
/// Each turn folds the records that arrived into series first (one map update per record, no
/// allocation for a series already seen), then attributes each series once. A container's
/// records can arrive before the kubelet reports its ID in the pod's status: its series wait
/// up to [`CLAIM_WAIT`] for it, then count as unattributed.
pub async fn run(client: Client, node: String, metrics: Arc<Metrics>) {
    let m = DenialMetrics::register(&metrics);
    let reader = match AuditReader::start(CHANNEL, proc_resolver(), is_denial) {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(error = %e, "denials will not be reported on this node");
            return;
        }
    };
    tracing::info!("reporting denials under operator profiles (SyscallDenied events)");
    let pods = node_pods(client.clone(), &node);
    let _ = pods.wait_until_ready().await;
    let mut publisher = events::Publisher::new(client, node);
    let mut agg = Aggregator::default();
    let mut drain = tokio::time::interval(DRAIN);
    drain.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_flush = Instant::now();
    let mut lost_seen = 0;
    let mut pending: std::collections::HashMap<SeriesKey, Pending> = Default::default();
    loop {
        drain.tick().await;
        let now = Instant::now();
        let at = k8s_openapi::jiff::Timestamp::now();
        while let Ok(a) = reader.records.try_recv() {
            let Some(container_id) = a.container else {
                m.unattributed.inc();
                continue;
            };
            let key = SeriesKey {
                container_id,
                syscall: a
                    .record
                    .name()
                    .unwrap_or_else(|| format!("unknown-{}", a.record.syscall)),
                action: a.record.action().map_or("unknown", |a| a.as_str()),
            };
            if let Some(p) = pending.get_mut(&key) {
                p.count += 1;
            } else if pending.len() < MAX_WAITING {
                let p = Pending {
                    count: 1,
                    first: at,
                    since: now,
                };
                pending.insert(key, p);
            } else {
                m.unattributed.inc();
            }
        }
        if !pending.is_empty() {
            let workloads = attribute::operator_containers(&pods.state());
            pending.retain(|key, p| {
                if let Some(w) = workloads.get(&key.container_id) {
                    m.denied
                        .get_or_create(&vec![
                            ("syscall".to_owned(), key.syscall.clone()),
                            ("action".to_owned(), key.action.to_owned()),
                        ])
                        .inc_by(p.count);
                    if !agg.add(key.clone(), w, p.count, p.first, now) {
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
        let lost = reader.lost();
        m.lost.inc_by(lost.saturating_sub(lost_seen));
        lost_seen = lost;
        if now.duration_since(last_flush) < FLUSH {
            continue;
        }
        last_flush = now;
        for r in agg.due(now, MAX_WRITES_PER_FLUSH) {
            m.writes.inc();
            if let Err(e) = publisher.publish(&r).await {
                m.write_errors.inc();
                tracing::warn!(error = %e, pod = %format!("{}/{}", r.workload.namespace, r.workload.pod), syscall = %r.key.syscall, "reporting a denial failed; retrying later");
                agg.failed(&r.key, Instant::now());
                // The API server is likely down or slow: the rest wait for the next flush
                // rather than hold up the draining (each write may wait its 5 s timeout).
                break;
            }
            agg.reported(&r.key, r.count, Instant::now());
        }
        agg.forget_idle(now);
    }
}
