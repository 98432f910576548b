//! Which pods run unconfined: per namespace, how many containers run under a Localhost
//! profile, `RuntimeDefault`, `Unconfined` or nothing at all, and how many may escalate
//! privileges — kept from the operator's pod watch (the same decision per container as the
//! policy webhook, [`crds::confinement`]). Pure, tested without an API server; the loop that
//! publishes it is [`crate::pods::report::run`].
//!
//! Every container of a live pod counts: init containers, native sidecars (init containers
//! with `restartPolicy: Always`), containers and ephemeral containers. A legacy seccomp
//! annotation has no effect since Kubernetes 1.27: a container whose only setting is one
//! counts as set by nothing. A container that sets nothing counts as `runtime-default` when
//! its pod is bound to a node whose agent reported `seccompDefault: true` for its kubelet
//! (`SeccompNodeStatus` `status.kubelet`), and as `unset` otherwise (pod not scheduled yet,
//! kubelet without the default, or not known). The node's setting is applied when the counts
//! are read, so a report that arrives after the pod moves the counts at once.
//!
//! The `UnconfinedContainer` Event repeats what the policy said at admission, before the pod
//! had a node: an unset container is reported there whatever its node does. It is decided
//! from the pod alone: a container under a `Complain` profile gets the admission warning but
//! not this Event; the counts (`complain`) follow the profile's mode as it is now.
//!
//! Published three ways:
//! - metrics, counted at every scrape: `seccomp_operator_containers{namespace, seccomp}` and
//!   `seccomp_operator_containers_privilege_escalation{namespace}` (one series per namespace
//!   and kind: namespaces are the admin's, not a tenant's, to create);
//! - the ConfigMap `seccomp-operator-confinement` in the operator's namespace, one line per
//!   namespace (`kubectl -n seccomp-operator get configmap seccomp-operator-confinement -o
//!   yaml`), written by the leader when the counts change, at most every [`PERIOD`];
//! - a Warning Event `UnconfinedContainer` on each new pod that breaks the policy in a
//!   namespace labelled `seccomp-operator.dev/profile-policy=warn` (the admission warning only
//!   reaches whoever created the pod; the Event stays with the pod).

use crate::pods::references::{is_live, pod_key};
use crds::confinement::{containers, Counts, Kind, NodeDefault, Seccomp};
use crds::localhost::ProfileId;
use k8s_openapi::api::core::v1::Pod;
use kube::ResourceExt;
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::time::Duration;

/// How often the leader publishes (ConfigMap, Events).
pub const PERIOD: Duration = Duration::from_secs(10);
/// The ConfigMap's name.
pub const CONFIGMAP: &str = "seccomp-operator-confinement";
/// Namespaces listed in the ConfigMap at most (those with the most unconfined containers
/// first); the rest are counted in its `_truncated` key. Keeps it far below the 1 MiB limit.
pub const MAX_LISTED_NAMESPACES: usize = 5_000;
/// New policy-breaking pods waiting for their Event; past it the oldest are dropped.
const MAX_NEW: usize = 1_000;
/// `UnconfinedContainer` Events published per [`PERIOD`] at most (a tenant creating pods in
/// a loop costs the API server at most this many writes; the rest wait in the queue).
pub const MAX_EVENTS_PER_PERIOD: usize = 50;
/// Containers named in one pod's Event at most.
const MAX_VIOLATIONS_KEPT: usize = 10;
/// A pod first seen later than this after its creation gets no Event (a restarted operator
/// relisting every pod must not warn about all of them again).
const NEW_POD_AGE: i64 = 120;

/// A new pod that breaks the policy: where, and why (one sentence per container).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewViolation {
    /// The pod's namespace.
    pub namespace: String,
    /// The pod's name.
    pub name: String,
    /// The pod's UID.
    pub uid: String,
    /// What the policy objects to.
    pub violations: Vec<String>,
}

/// A pod's containers: kind (as the spec sets it), whether each may escalate privileges, and
/// the operator profile it uses (whose mode is looked up when counting).
type Kinds = Vec<(Kind, bool, Option<ProfileId>)>;

/// What the tally keeps of a live pod.
#[derive(Debug)]
struct Held {
    namespace: String,
    /// The node it is bound to (None: not scheduled yet).
    node: Option<String>,
    kinds: Kinds,
}

/// The live pods' containers by kind, per namespace.
#[derive(Debug, Default)]
pub struct ConfinementTally {
    /// Pod key → what is counted of it.
    by_pod: HashMap<String, Held>,
    new: VecDeque<NewViolation>,
}

impl ConfinementTally {
    /// A pod was added or changed (`now`: for telling new pods from a relist).
    pub fn apply(&mut self, pod: &Pod, now: k8s_openapi::jiff::Timestamp) {
        let key = pod_key(pod);
        if !is_live(pod) {
            self.by_pod.remove(&key);
            return;
        }
        let seen = self.by_pod.contains_key(&key);
        // As at admission (the node's default is applied when counting, not here).
        let decided = containers(pod, NodeDefault::Unknown);
        let kinds: Kinds = decided
            .iter()
            .map(|c| {
                let profile = match &c.seccomp {
                    Seccomp::Localhost { operator, .. } => operator.clone(),
                    _ => None,
                };
                (c.seccomp.kind(), c.privilege_escalation, profile)
            })
            .collect();
        if !seen {
            let young = pod
                .metadata
                .creation_timestamp
                .as_ref()
                .is_some_and(|t| now.as_second() - t.0.as_second() <= NEW_POD_AGE);
            let violations: Vec<String> = decided
                .iter()
                .filter_map(|c| c.violation())
                .take(MAX_VIOLATIONS_KEPT)
                .collect();
            if young && !violations.is_empty() {
                if self.new.len() >= MAX_NEW {
                    self.new.pop_front();
                }
                self.new.push_back(NewViolation {
                    namespace: pod.namespace().unwrap_or_default(),
                    name: pod.name_any(),
                    uid: pod.uid().unwrap_or_default(),
                    violations,
                });
            }
        }
        let node = pod
            .spec
            .as_ref()
            .and_then(|s| s.node_name.clone())
            .filter(|n| !n.is_empty());
        self.by_pod.insert(
            key,
            Held {
                namespace: pod.namespace().unwrap_or_default(),
                node,
                kinds,
            },
        );
    }

    /// A pod is gone.
    pub fn delete(&mut self, pod: &Pod) {
        self.by_pod.remove(&pod_key(pod));
    }

    /// Keep only the pods `seen` (the end of a relist).
    pub fn retain(&mut self, seen: &std::collections::BTreeSet<String>) {
        self.by_pod.retain(|k, _| seen.contains(k));
    }

    /// Counts per namespace, of the pods held now (namespaces without live pods are absent).
    /// `defaulting`: the nodes whose kubelet runs unset containers under `RuntimeDefault`
    /// ([`crate::nodes::reports::seccomp_default_nodes`]); `is_complain`: whether an operator
    /// profile is in `Complain` mode now (its containers count as `complain`).
    pub fn per_namespace(
        &self,
        defaulting: &HashSet<String>,
        is_complain: &dyn Fn(&ProfileId) -> bool,
    ) -> BTreeMap<String, Counts> {
        let mut out: BTreeMap<String, Counts> = BTreeMap::new();
        let mut kinds = Vec::new();
        for held in self.by_pod.values() {
            let node = match &held.node {
                Some(n) if defaulting.contains(n) => NodeDefault::RuntimeDefault,
                _ => NodeDefault::Unknown,
            };
            kinds.clear();
            kinds.extend(
                held.kinds
                    .iter()
                    .map(|(kind, escalates, profile)| match profile {
                        Some(p) if is_complain(p) => (Kind::Complain, *escalates),
                        _ => (*kind, *escalates),
                    }),
            );
            out.entry(held.namespace.clone())
                .or_default()
                .add(&kinds, node);
        }
        out
    }

    /// Up to `limit` of the new policy-breaking pods, oldest first.
    pub fn take_new(&mut self, limit: usize) -> Vec<NewViolation> {
        let n = limit.min(self.new.len());
        self.new.drain(..n).collect()
    }
}

/// The ConfigMap's data: a line per namespace (most unconfined first when there are too many
/// to list).
pub fn configmap_data(per_namespace: &BTreeMap<String, Counts>) -> BTreeMap<String, String> {
    let mut listed: Vec<(&String, &Counts)> = per_namespace.iter().collect();
    let mut out = BTreeMap::new();
    if listed.len() > MAX_LISTED_NAMESPACES {
        listed.sort_by_key(|(ns, c)| {
            (
                std::cmp::Reverse(c.unconfined + c.unset + c.complain),
                (*ns).clone(),
            )
        });
        out.insert(
            "_truncated".to_owned(),
            format!(
                "{} namespaces not listed (those with the fewest unconfined containers)",
                listed.len() - MAX_LISTED_NAMESPACES
            ),
        );
        listed.truncate(MAX_LISTED_NAMESPACES);
    }
    out.extend(listed.into_iter().map(|(ns, c)| (ns.clone(), c.line())));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(ns: &str, name: &str, containers: serde_json::Value, created: &str) -> Pod {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": name, "namespace": ns, "uid": format!("uid-{name}"), "creationTimestamp": created},
            "spec": {"containers": containers},
        }))
        .unwrap()
    }

    fn now() -> k8s_openapi::jiff::Timestamp {
        "2026-12-02T12:00:00Z".parse().unwrap()
    }

    #[test]
    fn counts_follow_pods_in_and_out() {
        let mut t = ConfinementTally::default();
        let confined = serde_json::json!([{"name": "a", "securityContext": {"allowPrivilegeEscalation": false, "seccompProfile": {"type": "RuntimeDefault"}}}]);
        let bare = serde_json::json!([{"name": "a"}, {"name": "b", "securityContext": {"seccompProfile": {"type": "Unconfined"}}}]);
        t.apply(&pod("shop", "ok", confined, "2026-12-02T11:59:30Z"), now());
        let mut b = pod("shop", "bad", bare, "2026-12-02T11:59:30Z");
        t.apply(&b, now());
        t.apply(&b, now());
        let c = t.per_namespace(&HashSet::new(), &|_| false)["shop"];
        assert_eq!(
            (
                c.runtime_default,
                c.unset,
                c.unconfined,
                c.privilege_escalation
            ),
            (1, 1, 1, 2),
            "a pod applied twice counts once"
        );
        let new = t.take_new(10);
        assert_eq!(new.len(), 1, "only the new policy-breaking pod");
        assert_eq!((new[0].name.as_str(), new[0].violations.len()), ("bad", 2));
        assert!(t.take_new(10).is_empty());
        b.status = serde_json::from_value(serde_json::json!({"phase": "Succeeded"})).unwrap();
        t.apply(&b, now());
        assert_eq!(
            t.per_namespace(&HashSet::new(), &|_| false)["shop"].unset,
            0,
            "a finished pod runs nothing"
        );
        t.retain(&Default::default());
        assert!(t.per_namespace(&HashSet::new(), &|_| false).is_empty());
        assert!(t.by_pod.is_empty());
    }

    fn pod_with(ns: &str, name: &str, meta: serde_json::Value, spec: serde_json::Value) -> Pod {
        let mut m = serde_json::json!({"name": name, "namespace": ns, "uid": format!("uid-{name}"), "creationTimestamp": "2026-12-02T11:59:30Z"});
        m.as_object_mut()
            .unwrap()
            .extend(meta.as_object().cloned().unwrap_or_default());
        serde_json::from_value(serde_json::json!({"metadata": m, "spec": spec})).unwrap()
    }

    #[test]
    fn unset_containers_count_as_runtime_default_only_on_defaulting_nodes() {
        let mut t = ConfinementTally::default();
        let bare = |node: Option<&str>| {
            let mut spec = serde_json::json!({"containers": [
                {"name": "a"},
                {"name": "u", "securityContext": {"seccompProfile": {"type": "Unconfined"}}},
            ]});
            if let Some(n) = node {
                spec["nodeName"] = n.into();
            }
            spec
        };
        t.apply(
            &pod_with("shop", "on", serde_json::json!({}), bare(Some("node-2"))),
            now(),
        );
        t.apply(
            &pod_with("shop", "off", serde_json::json!({}), bare(Some("node-1"))),
            now(),
        );
        t.apply(
            &pod_with("shop", "pending", serde_json::json!({}), bare(None)),
            now(),
        );
        let without = t.per_namespace(&HashSet::new(), &|_| false)["shop"];
        assert_eq!(
            (without.runtime_default, without.unset, without.unconfined),
            (0, 3, 3),
            "no node reported seccompDefault"
        );
        let with = t.per_namespace(&HashSet::from(["node-2".to_string()]), &|_| false)["shop"];
        assert_eq!(
            (with.runtime_default, with.unset, with.unconfined),
            (1, 2, 3),
            "the unset container on node-2 runs RuntimeDefault; an explicit Unconfined stays; a pod not scheduled stays unset"
        );
        assert_eq!(
            t.take_new(10).len(),
            3,
            "the Event repeats the admission decision, made before any node was known"
        );
    }

    #[test]
    fn sidecars_count_and_legacy_annotations_do_not() {
        let mut t = ConfinementTally::default();
        let p = pod_with(
            "shop",
            "p",
            serde_json::json!({"annotations": {"container.seccomp.security.alpha.kubernetes.io/app": "runtime/default"}}),
            serde_json::json!({
                "initContainers": [
                    {"name": "proxy", "restartPolicy": "Always", "securityContext": {"allowPrivilegeEscalation": false, "seccompProfile": {"type": "Localhost", "localhostProfile": "operator/shop/proxy.json"}}},
                    {"name": "setup", "securityContext": {"allowPrivilegeEscalation": false, "seccompProfile": {"type": "RuntimeDefault"}}},
                ],
                "containers": [{"name": "app", "securityContext": {"allowPrivilegeEscalation": false}}],
            }),
        );
        t.apply(&p, now());
        let c = t.per_namespace(&HashSet::new(), &|_| false)["shop"];
        assert_eq!(
            (
                c.localhost,
                c.runtime_default,
                c.unset,
                c.privilege_escalation
            ),
            (1, 1, 1, 0),
            "the sidecar under its profile, the init container, the annotated container as unset"
        );
        let complain = t.per_namespace(&HashSet::new(), &|(ns, name)| {
            ns == "shop" && name == "proxy"
        })["shop"];
        assert_eq!(
            (complain.localhost, complain.complain),
            (0, 1),
            "a container under a Complain profile counts as complain, not localhost"
        );
        assert!(
            complain.line().ends_with("complain=1"),
            "{}",
            complain.line()
        );
        let new = t.take_new(10);
        assert_eq!(new.len(), 1);
        assert!(
            new[0].violations[0].contains("\"app\"")
                && new[0].violations[0].contains("has no effect since Kubernetes 1.27"),
            "{:?}",
            new[0].violations
        );
    }

    #[test]
    fn the_event_queue_and_each_entry_are_bounded() {
        let mut t = ConfinementTally::default();
        let many: Vec<_> = (0..30)
            .map(|i| serde_json::json!({"name": format!("c{i}")}))
            .collect();
        for i in 0..MAX_NEW + 5 {
            t.apply(
                &pod(
                    "loud",
                    &format!("p{i}"),
                    serde_json::json!(many),
                    "2026-12-02T11:59:30Z",
                ),
                now(),
            );
        }
        let first = t.take_new(MAX_EVENTS_PER_PERIOD);
        assert_eq!(first.len(), MAX_EVENTS_PER_PERIOD);
        assert_eq!(
            first[0].name, "p5",
            "the oldest were dropped past the queue's bound"
        );
        assert_eq!(first[0].violations.len(), MAX_VIOLATIONS_KEPT);
        assert_eq!(
            t.take_new(usize::MAX).len(),
            MAX_NEW - MAX_EVENTS_PER_PERIOD,
            "the rest wait"
        );
    }

    #[test]
    fn a_relist_of_old_pods_warns_about_none_and_the_configmap_is_bounded() {
        let mut t = ConfinementTally::default();
        let bare = serde_json::json!([{"name": "a"}]);
        t.apply(
            &pod("old", "p", bare.clone(), "2026-12-01T00:00:00Z"),
            now(),
        );
        assert!(t.take_new(10).is_empty(), "created a day ago: no event");
        for i in 0..MAX_LISTED_NAMESPACES + 3 {
            t.apply(
                &pod(
                    &format!("ns{i:05}"),
                    "p",
                    bare.clone(),
                    "2026-12-01T00:00:00Z",
                ),
                now(),
            );
        }
        let data = configmap_data(&t.per_namespace(&HashSet::new(), &|_| false));
        assert_eq!(data.len(), MAX_LISTED_NAMESPACES + 1);
        assert!(
            data["_truncated"].starts_with("4 namespaces"),
            "{}",
            data["_truncated"]
        );
        assert_eq!(
            data["ns00000"],
            "localhost=0 runtime-default=0 unconfined=0 unset=1 privilege-escalation=1 complain=0"
        );
    }
}
