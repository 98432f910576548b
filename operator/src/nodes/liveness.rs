//! Which nodes count as "every node". Pure: computed from the Nodes, the agents' heartbeat
//! Leases and the agents' reports; tested without an API server.
//!
//! A node is counted when all of these hold:
//! - its Node is `Ready=True` and schedulable (not cordoned): new pods can land there;
//! - its agent's Lease was renewed within its duration ([`crds::AGENT_LEASE_SECONDS`]), as
//!   observed by this process (the renewal is timed with the operator's own clock when it is
//!   seen, so clock skew between nodes and operator does not matter);
//! - its agent finished a first full sync (`SeccompNodeStatus.status.ready`).
//!
//! Every other node is listed with the reason and since when, and is not counted: a dead
//! node never holds back profiles, nor pods on the other nodes. Whether a node's agent is
//! live (the last two rules) also decides the `agent-not-ready` taint.

use crds::SeccompNodeStatus;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Node;
use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;
use seccomp_profile::Arch;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Why a node is not counted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reason {
    /// The Node's Ready condition is not True (its status: False, Unknown, or missing).
    NodeNotReady(String),
    /// The Node is cordoned (`spec.unschedulable`).
    Unschedulable,
    /// The node's agent never renewed a Lease.
    NoHeartbeat,
    /// The agent's Lease was not renewed within its duration.
    AgentSilent,
    /// The agent has not finished its first full sync.
    NotSynced,
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::NodeNotReady(s) => write!(f, "Node Ready={s}"),
            Reason::Unschedulable => write!(f, "Node cordoned"),
            Reason::NoHeartbeat => write!(f, "no agent heartbeat"),
            Reason::AgentSilent => write!(f, "agent silent"),
            Reason::NotSynced => write!(f, "agent not synced yet"),
        }
    }
}

/// A node that is not counted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Absent {
    /// Why.
    pub reason: Reason,
    /// Since when, where known (the Ready transition, the last renewal, the Node's creation).
    pub since: Option<Timestamp>,
}

/// The outcome: counted nodes with their architecture, the others with the reason.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Liveness {
    /// Counted nodes and the architecture their agent renders for.
    pub counted: BTreeMap<String, Arch>,
    /// Nodes not counted.
    pub absent: BTreeMap<String, Absent>,
    /// Nodes whose agent is live (heartbeat fresh and synced), whatever the Node's state:
    /// the nodes without the `agent-not-ready` taint.
    pub agent_live: BTreeSet<String>,
}

impl Liveness {
    /// What the profiles' `NodesReporting` condition says: `None` when every node counts,
    /// otherwise a bounded list of the nodes left out (at most `max` named).
    pub fn absent_message(&self, max: usize) -> Option<String> {
        if self.absent.is_empty() {
            return None;
        }
        let mut parts: Vec<String> = self
            .absent
            .iter()
            .take(max)
            .map(|(name, a)| match a.since {
                Some(t) => format!(
                    "{name} ({} since {})",
                    a.reason,
                    t.round(k8s_openapi::jiff::Unit::Second).unwrap_or(t)
                ),
                None => format!("{name} ({})", a.reason),
            })
            .collect();
        if self.absent.len() > max {
            parts.push(format!("and {} more", self.absent.len() - max));
        }
        Some(format!(
            "{} node(s) not counted: {}",
            self.absent.len(),
            parts.join(", ")
        ))
    }
}

/// Remembers when this process saw each node's Lease renewed.
#[derive(Debug, Default)]
pub struct LeaseTracker {
    seen: HashMap<String, (Option<Timestamp>, Instant)>,
}

impl LeaseTracker {
    /// Record the current Leases at `now`: a node whose `renewTime` changed (or that is new)
    /// was renewed now; nodes whose Lease is gone are forgotten.
    pub fn observe(&mut self, leases: &[Arc<Lease>], now: Instant) {
        let mut keep = BTreeSet::new();
        for l in leases {
            let Some(spec) = l.spec.as_ref() else {
                continue;
            };
            let Some(node) = spec.holder_identity.clone() else {
                continue;
            };
            // A heartbeat counts only under its own name (an agent cannot speak for another
            // node through a Lease named otherwise).
            if l.metadata.name.as_deref() != Some(crds::agent_lease_name(&node).as_str()) {
                continue;
            }
            let renew = spec.renew_time.as_ref().map(|t| t.0);
            keep.insert(node.clone());
            // A new renewal time (or a new node) was renewed now; an unchanged one keeps the
            // moment it was first seen.
            if self.seen.get(&node).map(|(last, _)| *last) != Some(renew) {
                self.seen.insert(node, (renew, now));
            }
        }
        self.seen.retain(|n, _| keep.contains(n));
    }

    /// This replica could not see the Leases for a while (its watch failed: an API server
    /// outage, a network partition) and sees them again at `now`: silence meanwhile says
    /// nothing about the agents, so every node gets a full timeout from now to renew.
    pub fn forgive(&mut self, now: Instant) {
        for (_, at) in self.seen.values_mut() {
            *at = now;
        }
    }

    /// The last renewal of `node` as the Lease says, and whether it is fresh at `now`.
    fn state(
        &self,
        node: &str,
        now: Instant,
        timeout: Duration,
    ) -> Option<(Option<Timestamp>, bool)> {
        self.seen
            .get(node)
            .map(|(renew, at)| (*renew, now.saturating_duration_since(*at) <= timeout))
    }
}

/// Evaluate every Node. `fallback_arch` is used for reports that name no architecture (agents
/// older than the field).
pub fn evaluate(
    nodes: &[Arc<Node>],
    leases: &LeaseTracker,
    reports: &[Arc<SeccompNodeStatus>],
    now: Instant,
    timeout: Duration,
    fallback_arch: Arch,
) -> Liveness {
    // A report counts only under its node's name.
    let reports: HashMap<String, &SeccompNodeStatus> = reports
        .iter()
        .filter(|r| r.metadata.name.as_deref() == Some(r.spec.node_name.as_str()))
        .map(|r| (r.spec.node_name.clone(), &**r))
        .collect();
    let mut out = Liveness::default();
    for node in nodes {
        let name = node.name_any();
        let report = reports.get(&name).and_then(|r| r.status.as_ref());
        let synced = report.is_some_and(|s| s.ready);
        let heartbeat = leases.state(&name, now, timeout);
        let agent = match heartbeat {
            None => Err(Absent {
                reason: Reason::NoHeartbeat,
                since: node.metadata.creation_timestamp.as_ref().map(|t| t.0),
            }),
            Some((renew, false)) => Err(Absent {
                reason: Reason::AgentSilent,
                since: renew,
            }),
            // No time: the renewal time moves every period, and every change of the
            // liveness reconciles every profile.
            Some((_, true)) if !synced => Err(Absent {
                reason: Reason::NotSynced,
                since: None,
            }),
            Some(_) => Ok(()),
        };
        if agent.is_ok() {
            out.agent_live.insert(name.clone());
        }
        let ready = ready_condition(node);
        let node_state = match ready {
            Some(c) if c.status == "True" => Ok(()),
            Some(c) => Err(Absent {
                reason: Reason::NodeNotReady(c.status.clone()),
                since: c.last_transition_time.as_ref().map(|t| t.0),
            }),
            None => Err(Absent {
                reason: Reason::NodeNotReady("missing".into()),
                since: node.metadata.creation_timestamp.as_ref().map(|t| t.0),
            }),
        };
        let cordoned = node
            .spec
            .as_ref()
            .and_then(|s| s.unschedulable)
            .unwrap_or(false);
        // The Node's own state explains more than the agent's (a dead node's agent is
        // silent too).
        let schedulable = if cordoned {
            Err(Absent {
                reason: Reason::Unschedulable,
                since: None,
            })
        } else {
            Ok(())
        };
        let verdict = node_state.and(schedulable).and(agent);
        match verdict {
            Ok(()) => {
                let arch = report.and_then(|s| s.architecture).unwrap_or(fallback_arch);
                out.counted.insert(name, arch);
            }
            Err(a) => {
                out.absent.insert(name, a);
            }
        }
    }
    out
}

/// The Node's Ready condition, if it reports one.
fn ready_condition(node: &Node) -> Option<&k8s_openapi::api::core::v1::NodeCondition> {
    node.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|c| c.iter().find(|c| c.type_ == "Ready"))
}

/// Whether the Node reports Ready=True.
pub fn node_ready(node: &Node) -> bool {
    ready_condition(node).is_some_and(|c| c.status == "True")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crds::{SeccompNodeStatusSpec, SeccompNodeStatusStatus};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;

    fn node(name: &str, ready: &str, cordoned: bool) -> Arc<Node> {
        Arc::new(
            serde_json::from_value(serde_json::json!({
                "metadata": {"name": name, "creationTimestamp": "2026-01-01T00:00:00Z"},
                "spec": {"unschedulable": cordoned},
                "status": {"conditions": [{"type": "Ready", "status": ready,
                    "lastTransitionTime": "2026-01-01T00:01:00Z"}]},
            }))
            .unwrap(),
        )
    }

    fn lease(node: &str, renew_s: i64) -> Arc<Lease> {
        let mut l = Lease::default();
        l.metadata.name = Some(crds::agent_lease_name(node));
        l.spec = Some(k8s_openapi::api::coordination::v1::LeaseSpec {
            holder_identity: Some(node.into()),
            renew_time: Some(MicroTime(Timestamp::from_second(renew_s).unwrap())),
            ..Default::default()
        });
        Arc::new(l)
    }

    fn report(node: &str, ready: bool, arch: Option<Arch>) -> Arc<SeccompNodeStatus> {
        let mut r = SeccompNodeStatus::new(
            node,
            SeccompNodeStatusSpec {
                node_name: node.into(),
            },
        );
        r.status = Some(SeccompNodeStatusStatus {
            ready,
            architecture: arch,
            ..Default::default()
        });
        Arc::new(r)
    }

    const T: Duration = Duration::from_secs(40);

    #[test]
    fn counts_ready_schedulable_nodes_with_a_fresh_synced_agent() {
        let t0 = Instant::now();
        let mut tracker = LeaseTracker::default();
        tracker.observe(&[lease("a", 100), lease("b", 100), lease("c", 100)], t0);
        let nodes = [
            node("a", "True", false),
            node("b", "Unknown", false),
            node("c", "True", true),
            node("d", "True", false),
            node("e", "True", false),
        ];
        let reports = [
            report("a", true, Some(Arch::Aarch64)),
            report("b", true, None),
            report("c", true, None),
            report("e", true, None),
        ];
        let l = evaluate(&nodes, &tracker, &reports, t0, T, Arch::X86_64);
        assert_eq!(
            l.counted,
            BTreeMap::from([("a".to_string(), Arch::Aarch64)])
        );
        assert_eq!(l.absent["b"].reason, Reason::NodeNotReady("Unknown".into()));
        assert_eq!(l.absent["c"].reason, Reason::Unschedulable);
        assert_eq!(l.absent["d"].reason, Reason::NoHeartbeat);
        assert_eq!(l.absent["e"].reason, Reason::NoHeartbeat);
        // b's and c's agents are live: no taint there; d and e have no agent.
        assert_eq!(
            l.agent_live,
            BTreeSet::from(["a".to_string(), "b".into(), "c".into()])
        );
        let msg = l.absent_message(2).unwrap();
        assert!(msg.starts_with("4 node(s) not counted: b (Node Ready=Unknown since 2026-01-01T00:01:00Z), c (Node cordoned), and 2 more"), "{msg}");
    }

    #[test]
    fn after_a_blind_spell_every_node_gets_a_full_timeout_again() {
        let t0 = Instant::now();
        let mut tracker = LeaseTracker::default();
        tracker.observe(&[lease("a", 100)], t0);
        let nodes = [node("a", "True", false)];
        let reports = [report("a", true, None)];
        let counted = |tracker: &LeaseTracker, at: Instant| {
            evaluate(&nodes, tracker, &reports, at, T, Arch::X86_64)
                .counted
                .contains_key("a")
        };
        // The operator saw nothing for 60 s (its watch failed): by the clock, a is silent.
        let back = t0 + Duration::from_secs(60);
        assert!(!counted(&tracker, back), "silent by the clock");
        // Told that the watch recovered, it waits a full timeout before judging.
        tracker.forgive(back);
        tracker.observe(&[lease("a", 100)], back);
        assert!(counted(&tracker, back + Duration::from_secs(39)));
        assert!(
            !counted(&tracker, back + Duration::from_secs(41)),
            "a really silent since"
        );
    }

    #[test]
    fn heartbeats_and_reports_count_only_under_their_nodes_names() {
        let t0 = Instant::now();
        let mut tracker = LeaseTracker::default();
        let mut forged = (*lease("b", 100)).clone();
        forged.metadata.name = Some(crds::agent_lease_name("a"));
        tracker.observe(&[lease("a", 100), Arc::new(forged)], t0);
        let mut misnamed = (*report("b", true, None)).clone();
        misnamed.metadata.name = Some("a".into());
        let nodes = [node("a", "True", false), node("b", "True", false)];
        let l = evaluate(
            &nodes,
            &tracker,
            &[report("a", true, None), Arc::new(misnamed)],
            t0,
            T,
            Arch::X86_64,
        );
        assert!(l.counted.contains_key("a"));
        assert_eq!(l.absent["b"].reason, Reason::NoHeartbeat, "{l:?}");
    }

    #[test]
    fn a_silent_agent_stops_counting_after_the_timeout_and_counts_again_on_renewal() {
        let t0 = Instant::now();
        let mut tracker = LeaseTracker::default();
        let nodes = [node("a", "True", false)];
        let reports = [report("a", true, None)];
        tracker.observe(&[lease("a", 100)], t0);
        // Seen again unchanged: the renewal time stays t0.
        tracker.observe(&[lease("a", 100)], t0 + Duration::from_secs(30));
        let l = evaluate(
            &nodes,
            &tracker,
            &reports,
            t0 + Duration::from_secs(39),
            T,
            Arch::X86_64,
        );
        assert!(l.counted.contains_key("a"));
        let l = evaluate(
            &nodes,
            &tracker,
            &reports,
            t0 + Duration::from_secs(41),
            T,
            Arch::X86_64,
        );
        assert_eq!(l.absent["a"].reason, Reason::AgentSilent);
        assert_eq!(
            l.absent["a"].since,
            Some(Timestamp::from_second(100).unwrap())
        );
        assert!(
            l.agent_live.is_empty(),
            "a silent agent's node gets the taint"
        );
        tracker.observe(&[lease("a", 150)], t0 + Duration::from_secs(50));
        let l = evaluate(
            &nodes,
            &tracker,
            &reports,
            t0 + Duration::from_secs(51),
            T,
            Arch::X86_64,
        );
        assert!(l.counted.contains_key("a"));
        // A deleted Lease: the node's agent has no heartbeat.
        tracker.observe(&[], t0 + Duration::from_secs(52));
        let l = evaluate(
            &nodes,
            &tracker,
            &reports,
            t0 + Duration::from_secs(52),
            T,
            Arch::X86_64,
        );
        assert_eq!(l.absent["a"].reason, Reason::NoHeartbeat);
    }

    #[test]
    fn an_unsynced_agent_and_a_missing_report_do_not_count() {
        let t0 = Instant::now();
        let mut tracker = LeaseTracker::default();
        tracker.observe(&[lease("a", 1), lease("b", 1)], t0);
        let nodes = [node("a", "True", false), node("b", "True", false)];
        let l = evaluate(
            &nodes,
            &tracker,
            &[report("a", false, None)],
            t0,
            T,
            Arch::X86_64,
        );
        assert_eq!(l.absent["a"].reason, Reason::NotSynced);
        assert_eq!(l.absent["b"].reason, Reason::NotSynced);
        assert!(l.counted.is_empty() && l.agent_live.is_empty());
        assert_eq!(Liveness::default().absent_message(10), None);
    }
}
