//! Pods wait for their profiles at the scheduling gate [`crds::SCHEDULING_GATE`] instead of
//! being refused. The gate is put on a pod at CREATE, in the API server (a
//! MutatingAdmissionPolicy on Kubernetes 1.36 and later, the operator's mutating webhook
//! below: see `config/`); this controller removes it once every operator profile the pod
//! uses is Installed on every counted node and held by the in-use finalizer, so that the file
//! cannot be removed under the starting pod. While a pod waits, an Event on it names each
//! profile and its state; a new Event only when that changes.
//!
//! The decision ([`judge`]) is pure. The loop reacts to pods seen with the gate, to every
//! change of a profile they use, and rescans every gated pod every [`RESCAN`]; it acts only
//! while its replica leads. The removal is a JSON patch that first tests the pod's UID and the
//! gate's position, and removes that one entry: nothing else of the pod changes (a
//! ValidatingAdmissionPolicy in `config/` holds the operator's account to exactly that).

use crate::pods::index::{GatedPod, PodIndex};
use crate::pods::references::ProfileId;
use crate::runtime::leader::Gate;
use crds::{
    ProfilePhase, SeccompProfile, FINALIZER_IN_USE, REASON_WAITING_FOR_PROFILE, SCHEDULING_GATE,
};
use futures::{FutureExt, StreamExt};
use k8s_openapi::api::core::v1::{ObjectReference, Pod};
use kube::api::{Patch, PatchParams};
use kube::runtime::events::{Event, EventType, Recorder};
use kube::runtime::reflector::{ObjectRef, ReflectHandle, Store};
use kube::{Api, Client, ResourceExt};
use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, RwLock};
use std::time::Duration;

/// Gates removed at once (each a read and a patch of one pod).
const PARALLEL_UNGATES: usize = 8;

/// Every gated pod is judged again this often (a missed event, a lagging subscription).
pub const RESCAN: Duration = Duration::from_secs(5);

/// What a gated pod waits for, or that it may go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Every profile it uses is Installed and held: remove the gate.
    Go,
    /// Some profile is not ready; `message` names each with its state. `stuck` when none of
    /// them will get ready by itself (missing, Error, Disabled, deleted, not allowed).
    Wait { message: String, stuck: bool },
}

/// The state of one profile a gated pod uses: `None` when it is ready for the pod, else the
/// state and whether it will not change by itself.
///
/// A profile being deleted is still used for a pod created before the delete, as for a pod
/// admitted without the gate: its finalizer holds it, and its file stays, while the pod
/// exists. A pod created after the delete waits (the profile would otherwise never go).
fn state(
    id: &ProfileId,
    pod: &GatedPod,
    pod_namespace: &str,
    shared: &BTreeSet<String>,
    profile: Option<&SeccompProfile>,
) -> Option<(String, bool)> {
    let (ns, _) = id;
    if ns != pod_namespace && !shared.contains(ns) {
        return Some((
            format!("belongs to another namespace, which pods of {pod_namespace} may not use"),
            true,
        ));
    }
    let Some(p) = profile else {
        return Some(("does not exist (yet)".into(), true));
    };
    let held = p.finalizers().iter().any(|f| f == FINALIZER_IN_USE);
    let status = p.status.clone().unwrap_or_default();
    if let Some(deleted) = &p.metadata.deletion_timestamp {
        let everywhere = status
            .nodes
            .as_ref()
            .is_some_and(|n| n.total > 0 && n.installed == n.total);
        let before = pod.created.is_some_and(|c| c < deleted.0);
        return if before && held && everywhere {
            None
        } else {
            Some(("is being deleted".into(), true))
        };
    }
    let nodes = status.installed_nodes.as_deref().unwrap_or("0/0");
    match status.phase {
        Some(ProfilePhase::Installed) => {
            if held {
                None
            } else {
                Some(("is Installed; holding it for the pod".into(), false))
            }
        }
        Some(ProfilePhase::Error) => {
            Some((format!("is Invalid: {}", status.ready_message()), true))
        }
        Some(ProfilePhase::Disabled) => Some(("is Disabled".into(), true)),
        Some(ProfilePhase::Terminating) => Some(("is being deleted".into(), true)),
        Some(ProfilePhase::Installing) => Some((format!("is Installing ({nodes} nodes)"), false)),
        Some(ProfilePhase::Pending) | None => Some((format!("is Pending ({nodes} nodes)"), false)),
    }
}

/// Whether a gated pod may go: every profile it uses (`pod.profiles`) is in `lookup`,
/// Installed, not being deleted and held by the in-use finalizer.
pub fn judge(
    pod: &GatedPod,
    shared: &BTreeSet<String>,
    lookup: impl Fn(&ProfileId) -> Option<Arc<SeccompProfile>>,
) -> Verdict {
    let pod_namespace = pod.key.split('/').next().unwrap_or_default();
    let mut waits = Vec::new();
    let mut stuck = false;
    for id in &pod.profiles {
        let p = lookup(id);
        if let Some((why, s)) = state(id, pod, pod_namespace, shared, p.as_deref()) {
            stuck |= s;
            waits.push(format!("SeccompProfile {}/{} {why}", id.0, id.1));
        }
    }
    if waits.is_empty() {
        Verdict::Go
    } else {
        Verdict::Wait {
            message: seccomp_profile::limits::truncate(
                &format!(
                    "waiting for {}; the pod is scheduled once every profile it uses is Installed",
                    waits.join("; ")
                ),
                1024,
            ),
            stuck,
        }
    }
}

/// A profile, with a newer status if one is known.
pub type Fresher = Arc<dyn Fn(Arc<SeccompProfile>) -> Arc<SeccompProfile> + Send + Sync>;

/// What the controller reads.
pub struct Inputs {
    /// The profiles (the shared store).
    pub profiles: Store<SeccompProfile>,
    /// Changes of profiles (a subscription to the shared watch).
    pub profile_events: ReflectHandle<SeccompProfile>,
    /// Pods seen with the gate ([`crate::pods::watch::Publisher::gated_pods`]).
    pub gated_pods: futures::stream::BoxStream<'static, String>,
    /// Which pods wait, and for which profiles.
    pub index: Arc<RwLock<PodIndex>>,
    /// Namespaces whose profiles every namespace may use.
    pub shared: Arc<BTreeSet<String>>,
    /// Publishes the Events on waiting pods.
    pub recorder: Recorder,
    /// Acts only while this replica leads.
    pub gate: Gate,
    /// `seccomp_operator_gated_pods`, `seccomp_operator_gate_wait_seconds`.
    pub metrics: Arc<crate::runtime::metrics::Metrics>,
    /// A profile with the status the leader computed for it and has not written yet
    /// (`profile::writes`): decided on at once.
    pub fresher: Fresher,
    /// Profiles that became admissible (Installed on every counted node), before their
    /// status is written.
    pub admissible: futures::stream::BoxStream<'static, ProfileId>,
}

/// Run until the inputs end.
pub async fn run(client: Client, inputs: Inputs) {
    let Inputs {
        profiles,
        profile_events,
        mut gated_pods,
        index,
        shared,
        recorder,
        gate,
        metrics,
        fresher,
        mut admissible,
    } = inputs;
    let mut profile_events = profile_events.boxed();
    let mut rescan = tokio::time::interval(RESCAN);
    rescan.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut announced: HashMap<String, String> = HashMap::new();
    loop {
        // Which gated pods to judge now: what woke the loop, and whatever else is queued.
        let mut keys = BTreeSet::new();
        let mut all = false;
        tokio::select! {
            p = profile_events.next() => match p {
                Some(p) => keys.extend(users_of(&index, &p)),
                None => return,
            },
            k = gated_pods.next() => match k {
                Some(k) => { keys.insert(k); }
                None => return,
            },
            id = admissible.next() => match id {
                Some(id) => keys.extend(gated_users(&index, &id)),
                None => return,
            },
            _ = rescan.tick() => all = true,
        }
        while let Some(Some(p)) = profile_events.next().now_or_never() {
            keys.extend(users_of(&index, &p));
        }
        while let Some(Some(k)) = gated_pods.next().now_or_never() {
            keys.insert(k);
        }
        while let Some(Some(id)) = admissible.next().now_or_never() {
            keys.extend(gated_users(&index, &id));
        }
        if !gate.leads() {
            continue;
        }
        let pods: Vec<GatedPod> = {
            let idx = index.read().unwrap_or_else(|p| p.into_inner());
            if all {
                let gated: Vec<GatedPod> = idx.all_gated().cloned().collect();
                metrics.gated_pods(gated.len());
                let live: BTreeSet<&str> = gated.iter().map(|g| g.uid.as_str()).collect();
                announced.retain(|uid, _| live.contains(uid.as_str()));
                gated
            } else {
                keys.iter().filter_map(|k| idx.gated(k).cloned()).collect()
            }
        };
        let mut go = Vec::new();
        for pod in pods {
            let verdict = judge(&pod, &shared, |(ns, name)| {
                profiles
                    .get(&ObjectRef::new(name).within(ns))
                    .map(|p| fresher(p))
            });
            match verdict {
                Verdict::Go => {
                    announced.remove(&pod.uid);
                    go.push(pod);
                }
                Verdict::Wait { message, stuck } => {
                    if announced.get(&pod.uid) == Some(&message) {
                        continue;
                    }
                    let ev = Event {
                        type_: if stuck {
                            EventType::Warning
                        } else {
                            EventType::Normal
                        },
                        reason: REASON_WAITING_FOR_PROFILE.into(),
                        note: Some(message.clone()),
                        action: "Schedule".into(),
                        secondary: None,
                    };
                    match recorder.publish(&ev, &pod_reference(&pod)).await {
                        Ok(()) => {
                            announced.insert(pod.uid.clone(), message);
                        }
                        Err(e) => {
                            tracing::warn!(pod = %pod.key, error = %e, "publishing a {REASON_WAITING_FOR_PROFILE} event failed")
                        }
                    }
                }
            }
        }
        // A burst of pods released by one profile: several at once.
        futures::stream::iter(go)
            .for_each_concurrent(PARALLEL_UNGATES, |pod| {
                let (client, metrics) = (client.clone(), metrics.clone());
                async move {
                    match ungate(&client, &pod).await {
                        Ok(true) => {
                            if let Some(created) = pod.created {
                                let waited = k8s_openapi::jiff::Timestamp::now().duration_since(created);
                                metrics.ungated(Duration::try_from(waited).unwrap_or_default());
                            }
                            tracing::info!(pod = %pod.key, "profiles Installed: scheduling gate removed")
                        }
                        Ok(false) => {}
                        Err(e) => {
                            tracing::warn!(pod = %pod.key, error = %e, "removing the scheduling gate failed; retrying")
                        }
                    }
                }
            })
            .await;
    }
}

/// The gated pods that use the profile of a watch event.
fn users_of(index: &RwLock<PodIndex>, p: &SeccompProfile) -> Vec<String> {
    gated_users(index, &(p.namespace().unwrap_or_default(), p.name_any()))
}

/// The gated pods that use profile `id`.
fn gated_users(index: &RwLock<PodIndex>, id: &ProfileId) -> Vec<String> {
    let idx = index.read().unwrap_or_else(|p| p.into_inner());
    idx.gated_users(id).into_iter().map(|g| g.key).collect()
}

fn pod_reference(pod: &GatedPod) -> ObjectReference {
    let (ns, name) = pod.key.split_once('/').unwrap_or_default();
    ObjectReference {
        api_version: Some("v1".into()),
        kind: Some("Pod".into()),
        namespace: Some(ns.into()),
        name: Some(name.into()),
        uid: Some(pod.uid.clone()),
        ..Default::default()
    }
}

/// Remove the gate from `pod`: a JSON patch that tests the UID and the entry, then removes
/// that entry only. The gate's position is read from the pod first. `false` when there was
/// nothing to remove (the pod is gone, replaced, or no longer gated).
async fn ungate(client: &Client, pod: &GatedPod) -> Result<bool, kube::Error> {
    let (ns, name) = pod.key.split_once('/').unwrap_or_default();
    let api: Api<Pod> = Api::namespaced(client.clone(), ns);
    let Some(current) = api.get_opt(name).await? else {
        return Ok(false);
    };
    if current.metadata.uid.as_deref() != Some(pod.uid.as_str()) {
        return Ok(false);
    }
    let Some(at) = current
        .spec
        .as_ref()
        .and_then(|s| s.scheduling_gates.as_ref())
        .and_then(|g| g.iter().position(|g| g.name == SCHEDULING_GATE))
    else {
        return Ok(false);
    };
    let patch: json_patch::Patch = serde_json::from_value(serde_json::json!([
        {"op": "test", "path": "/metadata/uid", "value": pod.uid},
        {"op": "test", "path": format!("/spec/schedulingGates/{at}/name"), "value": SCHEDULING_GATE},
        {"op": "remove", "path": format!("/spec/schedulingGates/{at}")},
    ]))
    .expect("a well-formed JSON patch");
    api.patch(name, &PatchParams::default(), &Patch::Json::<()>(patch))
        .await?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crds::SeccompProfileStatus;

    fn gated(profiles: &[(&str, &str)]) -> GatedPod {
        GatedPod {
            key: "shop/web-1".into(),
            uid: "u1".into(),
            created: Some(k8s_openapi::jiff::Timestamp::from_second(1_000).unwrap()),
            profiles: profiles
                .iter()
                .map(|(n, p)| (n.to_string(), p.to_string()))
                .collect(),
        }
    }

    fn profile(ns: &str, name: &str, phase: ProfilePhase, held: bool) -> Arc<SeccompProfile> {
        let mut p: SeccompProfile = serde_json::from_value(serde_json::json!({
            "apiVersion": "seccomp-operator.dev/v1alpha1", "kind": "SeccompProfile",
            "metadata": {"name": name, "namespace": ns},
            "spec": {"defaultAction": "SCMP_ACT_ERRNO"},
        }))
        .unwrap();
        if held {
            p.metadata.finalizers = Some(vec![FINALIZER_IN_USE.into()]);
        }
        p.status = Some(SeccompProfileStatus {
            phase: Some(phase),
            installed_nodes: Some("1/3".into()),
            ..Default::default()
        });
        Arc::new(p)
    }

    fn wait(v: Verdict) -> (String, bool) {
        match v {
            Verdict::Wait { message, stuck } => (message, stuck),
            Verdict::Go => panic!("expected to wait"),
        }
    }

    #[test]
    fn goes_only_when_every_profile_is_installed_and_held() {
        let shared = BTreeSet::from(["seccomp-operator".to_string()]);
        let pod = gated(&[("shop", "web"), ("seccomp-operator", "base")]);
        let all = |held: bool, phase: ProfilePhase| {
            move |id: &ProfileId| Some(profile(&id.0, &id.1, phase, held))
        };
        assert_eq!(
            judge(&pod, &shared, all(true, ProfilePhase::Installed)),
            Verdict::Go
        );
        let (m, stuck) = wait(judge(&pod, &shared, all(false, ProfilePhase::Installed)));
        assert!(m.contains("holding it") && !stuck, "{m}");
        let (m, stuck) = wait(judge(&pod, &shared, all(true, ProfilePhase::Installing)));
        assert!(
            m.contains("SeccompProfile shop/web is Installing (1/3 nodes)") && !stuck,
            "{m}"
        );
        // One missing profile is enough to wait, and is named.
        let (m, stuck) = wait(judge(&pod, &shared, |id: &ProfileId| {
            (id.1 != "web").then(|| profile(&id.0, &id.1, ProfilePhase::Installed, true))
        }));
        assert!(
            m.contains("SeccompProfile shop/web does not exist") && !m.contains("base") && stuck,
            "{m}"
        );
        let (m, stuck) = wait(judge(&pod, &shared, all(true, ProfilePhase::Disabled)));
        assert!(m.contains("is Disabled") && stuck, "{m}");
        let (m, _) = wait(judge(&pod, &shared, all(true, ProfilePhase::Error)));
        assert!(m.contains("is Invalid"), "{m}");
        // Being deleted: still used for a pod created before the delete (held, on every
        // node), never for one created after it.
        let deleted_at = |secs: i64| {
            move |id: &ProfileId| {
                let mut p = (*profile(&id.0, &id.1, ProfilePhase::Terminating, true)).clone();
                p.metadata.deletion_timestamp =
                    Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                        k8s_openapi::jiff::Timestamp::from_second(secs).unwrap(),
                    ));
                let s = p.status.as_mut().unwrap();
                s.nodes = Some(crds::NodeCounts {
                    installed: 3,
                    total: 3,
                });
                Some(Arc::new(p))
            }
        };
        assert_eq!(judge(&pod, &shared, deleted_at(2_000)), Verdict::Go);
        let (m, stuck) = wait(judge(&pod, &shared, deleted_at(500)));
        assert!(m.contains("being deleted") && stuck, "{m}");
    }

    #[test]
    fn another_namespaces_profile_is_never_ungated() {
        let pod = gated(&[("bank", "web")]);
        let (m, stuck) = wait(judge(&pod, &BTreeSet::new(), |id: &ProfileId| {
            Some(profile(&id.0, &id.1, ProfilePhase::Installed, true))
        }));
        assert!(m.contains("another namespace") && stuck, "{m}");
    }

    #[test]
    fn a_pod_without_operator_profiles_goes_at_once() {
        assert_eq!(
            judge(&gated(&[]), &BTreeSet::new(), |_: &ProfileId| None),
            Verdict::Go
        );
    }
}
