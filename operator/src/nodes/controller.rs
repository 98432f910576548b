//! Keeps [`Liveness`] current from Nodes, the agents' Leases and their reports, and acts on
//! it: every profile is reconciled again when the set of counted nodes changes, the
//! `agent-not-ready` taint follows whether each node's agent is live, and node reports whose
//! Node is gone are deleted (their owner reference normally does it; this covers reports
//! written without one).

use crate::nodes::liveness::{evaluate, LeaseTracker, Liveness};
use crate::runtime::caches::Events;
use crds::{SeccompNodeStatus, TAINT_AGENT_NOT_READY};
use futures::StreamExt;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Node, Taint};
use kube::api::{DeleteParams, Patch, PatchParams};
use kube::runtime::reflector::Store;
use kube::{Api, Client, ResourceExt};
use seccomp_profile::Arch;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};
use tokio::sync::{watch, Notify};

/// How often liveness is re-evaluated without any event (lease expiry needs a clock).
pub const TICK: Duration = Duration::from_secs(2);
/// A node report whose Node has been gone this long is deleted.
pub const ORPHAN_AGE: Duration = Duration::from_secs(60);

/// Settings.
#[derive(Clone, Debug)]
pub struct Config {
    /// The operator's namespace (the agents' Leases).
    pub namespace: String,
    /// Keep the `agent-not-ready` taint on nodes whose agent is not live. When false the
    /// taint is never added, but still lifted where a kubelet registered with it.
    pub taint_nodes: bool,
}

/// The current liveness, shared with the profile controller, and a counter that moves each
/// time the counted set changes.
#[derive(Debug)]
pub struct Shared {
    current: RwLock<Arc<Liveness>>,
    changes: watch::Sender<u64>,
}

impl Default for Shared {
    fn default() -> Self {
        Shared {
            current: RwLock::new(Arc::new(Liveness::default())),
            changes: watch::channel(0).0,
        }
    }
}

impl Shared {
    /// The latest evaluation.
    pub fn get(&self) -> Arc<Liveness> {
        match self.current.read() {
            Ok(l) => l.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    /// Publish `new`; true when it differs from what was there.
    pub fn set(&self, new: Liveness) -> bool {
        let mut cur = match self.current.write() {
            Ok(c) => c,
            Err(p) => p.into_inner(),
        };
        if **cur == new {
            return false;
        }
        *cur = Arc::new(new);
        self.changes.send_modify(|n| *n += 1);
        true
    }

    /// A stream with one item per change (changes in between are coalesced).
    pub fn changes(&self) -> impl futures::Stream<Item = ()> + Send + 'static {
        let rx = self.changes.subscribe();
        futures::stream::unfold(rx, |mut rx| async move {
            rx.changed().await.ok()?;
            Some(((), rx))
        })
    }
}

/// What the node controller reads: the node reports, the Nodes and the agents' Leases, each
/// a store with its watch's events ([`crate::runtime::caches`]).
pub struct Inputs {
    /// The nodes' reports.
    pub reports: Store<SeccompNodeStatus>,
    /// The cluster's Nodes.
    pub nodes: (Store<Node>, Events<Node>),
    /// The agents' heartbeat Leases.
    pub leases: (Store<Lease>, Events<Lease>),
}

/// Run until the process ends.
pub async fn run(
    client: Client,
    cfg: Config,
    inputs: Inputs,
    shared: Arc<Shared>,
    gate: crate::runtime::leader::Gate,
) {
    let Inputs {
        reports,
        nodes: (nodes, node_events),
        leases: (leases, lease_events),
    } = inputs;
    let wake = Arc::new(Notify::new());
    let w = wake.clone();
    tokio::spawn(node_events.for_each(move |_| {
        w.notify_one();
        async {}
    }));
    let w = wake.clone();
    // Set when the Lease watch recovers from failures: heartbeats missed meanwhile were not
    // seen, not necessarily not sent ([`LeaseTracker::forgive`]).
    let recovered = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let r = recovered.clone();
    let mut failing = false;
    tokio::spawn(lease_events.for_each(move |ev| {
        match ev {
            Err(_) => failing = true,
            Ok(_) if failing => {
                failing = false;
                r.store(true, std::sync::atomic::Ordering::SeqCst);
            }
            Ok(_) => {}
        }
        w.notify_one();
        async {}
    }));
    let _ = nodes.wait_until_ready().await;
    let _ = leases.wait_until_ready().await;
    let _ = reports.wait_until_ready().await;
    tracing::info!(taint_nodes = cfg.taint_nodes, "node liveness: caches ready");

    let mut tracker = LeaseTracker::default();
    let timeout = Duration::from_secs(crds::AGENT_LEASE_SECONDS as u64);
    let node_api: Api<Node> = Api::all(client.clone());
    let report_api: Api<SeccompNodeStatus> = Api::all(client.clone());
    let mut gone_since: std::collections::HashMap<String, Instant> = Default::default();
    loop {
        if !gate.leads() {
            // Only the leader counts and taints; a replica that lost the lead waits to win it
            // back, and then judges heartbeats afresh.
            gate.opened().await;
            tracker.forgive(Instant::now());
        }
        let now = Instant::now();
        if recovered.swap(false, std::sync::atomic::Ordering::SeqCst) {
            tracing::info!("watching agent heartbeats again after a failure: every node gets a full timeout to renew");
            tracker.forgive(now);
        }
        tracker.observe(&leases.state(), now);
        let node_list = nodes.state();
        let report_list = reports.state();
        let live = evaluate(
            &node_list,
            &tracker,
            &report_list,
            now,
            timeout,
            Arch::native(),
        );
        for n in &node_list {
            // Without --taint-nodes the taint is never added, but one a kubelet registered
            // with is still lifted once the node's agent is live.
            let want = !live.agent_live.contains(&n.name_any());
            if want && !cfg.taint_nodes {
                continue;
            }
            if let Err(e) = set_taint(&node_api, n, want).await {
                tracing::warn!(node = %n.name_any(), error = %e, "updating the agent-not-ready taint failed; retrying");
            }
        }
        let counted: Vec<&String> = live.counted.keys().collect();
        let absent = live.absent_message(20);
        if shared.set(live.clone()) {
            tracing::info!(
                ?counted,
                absent = absent.as_deref().unwrap_or("none"),
                "nodes counted"
            );
        }
        collect_orphans(&report_api, &node_list, &report_list, &mut gone_since, now).await;
        tokio::select! {
            _ = wake.notified() => tokio::time::sleep(Duration::from_millis(50)).await,
            _ = tokio::time::sleep(TICK) => {},
        }
    }
}

/// Add or remove the taint on `node` (a conditional merge patch: a concurrent change of the
/// Node makes it fail with a conflict, and the next round retries with fresh state).
async fn set_taint(api: &Api<Node>, node: &Node, want: bool) -> Result<(), kube::Error> {
    let taints = node
        .spec
        .as_ref()
        .and_then(|s| s.taints.clone())
        .unwrap_or_default();
    let has = taints.iter().any(|t| t.key == TAINT_AGENT_NOT_READY);
    if has == want {
        return Ok(());
    }
    let mut new: Vec<Taint> = taints
        .into_iter()
        .filter(|t| t.key != TAINT_AGENT_NOT_READY)
        .collect();
    if want {
        new.push(Taint {
            key: TAINT_AGENT_NOT_READY.to_owned(),
            value: Some("true".into()),
            effect: "NoSchedule".into(),
            time_added: None,
        });
    }
    let patch = serde_json::json!({
        "metadata": {"resourceVersion": node.resource_version()},
        "spec": {"taints": new},
    });
    api.patch(
        &node.name_any(),
        &PatchParams::default(),
        &Patch::Merge(&patch),
    )
    .await?;
    tracing::info!(node = %node.name_any(), taint = want, "agent-not-ready taint updated");
    Ok(())
}

/// Delete reports whose Node has been absent for [`ORPHAN_AGE`] (seen from complete caches).
async fn collect_orphans(
    api: &Api<SeccompNodeStatus>,
    nodes: &[Arc<Node>],
    reports: &[Arc<SeccompNodeStatus>],
    gone_since: &mut std::collections::HashMap<String, Instant>,
    now: Instant,
) {
    let names: std::collections::HashSet<String> = nodes.iter().map(|n| n.name_any()).collect();
    gone_since.retain(|r, _| reports.iter().any(|x| &x.name_any() == r));
    for r in reports {
        let name = r.name_any();
        if names.contains(&r.spec.node_name) {
            gone_since.remove(&name);
            continue;
        }
        let since = *gone_since.entry(name.clone()).or_insert(now);
        if now.saturating_duration_since(since) < ORPHAN_AGE {
            continue;
        }
        match api.delete(&name, &DeleteParams::default()).await {
            Ok(_) => tracing::info!(report = %name, "deleted the report of a removed node"),
            Err(kube::Error::Api(e)) if e.code == 404 => {}
            Err(e) => {
                tracing::warn!(report = %name, error = %e, "deleting an orphaned report failed")
            }
        }
    }
}
