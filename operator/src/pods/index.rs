//! Profiles → the live pods that use them, kept from the pod watch, with each pod's
//! confinement and the pods waiting at the scheduling gate. Pure, tested without an API server.

use crate::pods::references::{is_live, pod_key, profiles_of, ProfileId};
use k8s_openapi::api::core::v1::Pod;
use kube::ResourceExt;
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// Profiles → live pods that use them, kept up to date from pod events.
#[derive(Debug, Default)]
pub struct PodIndex {
    users: BTreeMap<ProfileId, BTreeSet<String>>,
    by_pod: HashMap<String, BTreeSet<ProfileId>>,
    bound_by: HashMap<String, String>,
    resync: Option<BTreeSet<String>>,
    confinement: crate::pods::confinement::ConfinementTally,
    gated: BTreeMap<String, GatedPod>,
    /// Pod key → when each of its running containers under an operator profile started.
    starts: HashMap<String, Starts>,
}

/// A pod's running containers under operator profiles: (profile, when the container started).
type Starts = Vec<(ProfileId, k8s_openapi::jiff::Timestamp)>;

/// When each running container of `pod` that uses an operator profile started (from the
/// pod's status), sorted.
fn container_starts(pod: &Pod) -> Starts {
    use crds::confinement::{container_statuses, containers, NodeDefault, Seccomp};
    let mut out = Vec::new();
    for c in containers(pod, NodeDefault::Unknown) {
        let Seccomp::Localhost {
            operator: Some(id), ..
        } = c.seccomp
        else {
            continue;
        };
        let started = container_statuses(pod)
            .find(|s| s.name == c.name)
            .and_then(|s| s.state.as_ref())
            .and_then(|s| s.running.as_ref())
            .and_then(|r| r.started_at.as_ref());
        if let Some(t) = started {
            out.push((id, t.0));
        }
    }
    out.sort();
    out
}

/// A pod that waits at the operator's scheduling gate ([`crds::SCHEDULING_GATE`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GatedPod {
    /// `<namespace>/<name>`.
    pub key: String,
    /// Its UID: a gate is removed only from the pod it was judged for.
    pub uid: String,
    /// When it was created: a profile deleted after that is still used for it.
    pub created: Option<k8s_openapi::jiff::Timestamp>,
    /// The operator profiles it uses (empty: nothing to wait for).
    pub profiles: BTreeSet<ProfileId>,
}

/// Annotation the binding webhook puts on the pods it changed: the binding's name.
pub const BOUND_BY: &str = "seccomp-operator.dev/bound-by";

impl PodIndex {
    /// A pod was added or changed. Returns the profiles whose users changed.
    pub fn apply(&mut self, pod: &Pod) -> BTreeSet<ProfileId> {
        let key = pod_key(pod);
        if let Some(seen) = self.resync.as_mut() {
            seen.insert(key.clone());
        }
        match pod.annotations().get(BOUND_BY) {
            Some(b) if is_live(pod) => {
                self.bound_by.insert(
                    key.clone(),
                    format!("{}/{b}", pod.namespace().unwrap_or_default()),
                );
            }
            _ => {
                self.bound_by.remove(&key);
            }
        }
        self.confinement
            .apply(pod, k8s_openapi::jiff::Timestamp::now());
        let now = if is_live(pod) {
            profiles_of(pod)
        } else {
            BTreeSet::new()
        };
        if is_live(pod) && crds::has_scheduling_gate(pod) {
            self.gated.insert(
                key.clone(),
                GatedPod {
                    key: key.clone(),
                    uid: pod.metadata.uid.clone().unwrap_or_default(),
                    created: pod.metadata.creation_timestamp.as_ref().map(|t| t.0),
                    profiles: now.clone(),
                },
            );
        } else {
            self.gated.remove(&key);
        }
        // A container starting or stopping changes what the profile's status says of its
        // versions (`podsOnOlderVersion`, `ReadyToEnforce`): its profiles count as changed.
        let starts = if is_live(pod) {
            container_starts(pod)
        } else {
            Vec::new()
        };
        let before = if starts.is_empty() {
            self.starts.remove(&key)
        } else {
            self.starts.insert(key.clone(), starts.clone())
        };
        let mut changed = self.set(key, now);
        if before.as_ref() != Some(&starts) && !(before.is_none() && starts.is_empty()) {
            changed.extend(before.into_iter().flatten().map(|(id, _)| id));
            changed.extend(starts.into_iter().map(|(id, _)| id));
        }
        changed
    }

    /// Each live pod using profile `id` with the start times of its running containers under
    /// it (pods whose containers under it do not run are absent).
    pub fn running_under(
        &self,
        id: &ProfileId,
    ) -> Vec<(String, Vec<k8s_openapi::jiff::Timestamp>)> {
        self.users
            .get(id)
            .into_iter()
            .flatten()
            .filter_map(|k| {
                let times: Vec<_> = self
                    .starts
                    .get(k)?
                    .iter()
                    .filter(|(p, _)| p == id)
                    .map(|(_, t)| *t)
                    .collect();
                (!times.is_empty()).then(|| (k.clone(), times))
            })
            .collect()
    }

    /// The pod `key` if it waits at the operator's scheduling gate.
    pub fn gated(&self, key: &str) -> Option<&GatedPod> {
        self.gated.get(key)
    }

    /// Every pod that waits at the operator's scheduling gate.
    pub fn all_gated(&self) -> impl Iterator<Item = &GatedPod> {
        self.gated.values()
    }

    /// The pods waiting at the scheduling gate that use profile `id`.
    pub fn gated_users(&self, id: &ProfileId) -> Vec<GatedPod> {
        self.users
            .get(id)
            .into_iter()
            .flatten()
            .filter_map(|k| self.gated.get(k).cloned())
            .collect()
    }

    /// Which pods run unconfined, per namespace.
    pub fn confinement(&self) -> &crate::pods::confinement::ConfinementTally {
        &self.confinement
    }

    /// See [`PodIndex::confinement`] (to take the new policy-breaking pods).
    pub fn confinement_mut(&mut self) -> &mut crate::pods::confinement::ConfinementTally {
        &mut self.confinement
    }

    /// A pod is gone. Returns the profiles whose users changed.
    pub fn delete(&mut self, pod: &Pod) -> BTreeSet<ProfileId> {
        let key = pod_key(pod);
        self.bound_by.remove(&key);
        self.gated.remove(&key);
        self.starts.remove(&key);
        self.confinement.delete(pod);
        self.set(key, BTreeSet::new())
    }

    fn set(&mut self, key: String, now: BTreeSet<ProfileId>) -> BTreeSet<ProfileId> {
        let before = self.by_pod.remove(&key).unwrap_or_default();
        for p in before.difference(&now) {
            if let Some(users) = self.users.get_mut(p) {
                users.remove(&key);
                if users.is_empty() {
                    self.users.remove(p);
                }
            }
        }
        for p in now.difference(&before) {
            self.users.entry(p.clone()).or_default().insert(key.clone());
        }
        let changed = before.symmetric_difference(&now).cloned().collect();
        if !now.is_empty() {
            self.by_pod.insert(key, now);
        }
        changed
    }

    /// A relist starts: pods not seen again before [`PodIndex::end_resync`] are dropped.
    pub fn begin_resync(&mut self) {
        self.resync = Some(BTreeSet::new());
    }

    /// A relist ended. Returns the profiles whose users changed.
    pub fn end_resync(&mut self) -> BTreeSet<ProfileId> {
        let Some(seen) = self.resync.take() else {
            return BTreeSet::new();
        };
        let gone: Vec<String> = self
            .by_pod
            .keys()
            .filter(|k| !seen.contains(*k))
            .cloned()
            .collect();
        self.bound_by.retain(|k, _| seen.contains(k));
        self.gated.retain(|k, _| seen.contains(k));
        self.starts.retain(|k, _| seen.contains(k));
        self.confinement.retain(&seen);
        let mut changed = BTreeSet::new();
        for k in gone {
            changed.extend(self.set(k, BTreeSet::new()));
        }
        changed
    }

    /// Live pods (`<namespace>/<name>`) that use a profile.
    pub fn users(&self, id: &ProfileId) -> Vec<String> {
        self.users
            .get(id)
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Live pods a binding (`<namespace>/<name>`) bound.
    pub fn bound_count(&self, binding: &str) -> usize {
        self.bound_by.values().filter(|b| *b == binding).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pods::references::tests::{localhost, pod};

    #[test]
    fn a_profile_named_only_in_an_annotation_is_not_held_for_the_pod() {
        let mut idx = PodIndex::default();
        let web = ("shop".to_string(), "web".to_string());
        let legacy = pod(
            "legacy",
            serde_json::json!({"metadata": {"name":"legacy","namespace":"shop","annotations":{
                    "seccomp.security.alpha.kubernetes.io/pod":"localhost/operator/shop/web.json",
                    "container.seccomp.security.alpha.kubernetes.io/a":"localhost/operator/shop/web.json"}},
                "spec":{"containers":[{"name":"a","image":"x"}]}}),
        );
        assert_eq!(idx.apply(&legacy), BTreeSet::new());
        assert!(idx.users(&web).is_empty());
        // A sidecar's own profile holds it.
        let sidecar = pod(
            "sidecar",
            serde_json::json!({"spec":{"initContainers":[{"name":"proxy","image":"x","restartPolicy":"Always","securityContext":localhost("operator/shop/web.json")}],
                "containers":[{"name":"a","image":"x"}]}}),
        );
        assert_eq!(idx.apply(&sidecar), BTreeSet::from([web.clone()]));
        assert_eq!(idx.users(&web), vec!["shop/sidecar"]);
    }

    #[test]
    fn index_tracks_users_through_changes_completion_and_relists() {
        let mut idx = PodIndex::default();
        let id = ("shop".to_string(), "web".to_string());
        let p1 = pod(
            "p1",
            serde_json::json!({"spec":{"containers":[{"name":"a","image":"x","securityContext":localhost("operator/shop/web.json")}]}}),
        );
        assert_eq!(idx.apply(&p1), BTreeSet::from([id.clone()]));
        assert_eq!(idx.apply(&p1), BTreeSet::new(), "no change");
        assert_eq!(idx.users(&id), vec!["shop/p1"]);
        // completion frees the profile
        let mut done = p1.clone();
        done.status =
            Some(serde_json::from_value(serde_json::json!({"phase":"Succeeded"})).unwrap());
        assert_eq!(idx.apply(&done), BTreeSet::from([id.clone()]));
        assert!(idx.users(&id).is_empty());
        // a relist that no longer has the pod drops it
        idx.apply(&p1);
        idx.begin_resync();
        assert_eq!(idx.end_resync(), BTreeSet::from([id.clone()]));
        assert!(idx.users(&id).is_empty());
        idx.apply(&p1);
        assert_eq!(idx.delete(&p1), BTreeSet::from([id.clone()]));
    }

    #[test]
    fn index_knows_the_pods_waiting_at_the_scheduling_gate() {
        let mut idx = PodIndex::default();
        let id = ("shop".to_string(), "web".to_string());
        let gated = pod(
            "p1",
            serde_json::json!({"metadata":{"name":"p1","namespace":"shop","uid":"u1"},"spec":{
                "schedulingGates":[{"name":crds::SCHEDULING_GATE}],
                "containers":[{"name":"a","image":"x","securityContext":localhost("operator/shop/web.json")}]}}),
        );
        idx.apply(&gated);
        let g = idx.gated("shop/p1").cloned().unwrap();
        assert_eq!(
            (g.uid.as_str(), g.profiles.clone()),
            ("u1", BTreeSet::from([id.clone()]))
        );
        assert_eq!(idx.gated_users(&id), vec![g]);
        // Ungated: still a user of the profile, no longer waiting.
        let mut open = gated.clone();
        open.spec.as_mut().unwrap().scheduling_gates = None;
        idx.apply(&open);
        assert!(idx.gated("shop/p1").is_none() && idx.gated_users(&id).is_empty());
        assert_eq!(idx.users(&id), vec!["shop/p1"]);
        // Deleted or gone in a relist: forgotten.
        idx.apply(&gated);
        idx.delete(&gated);
        assert_eq!(idx.all_gated().count(), 0);
        idx.apply(&gated);
        idx.begin_resync();
        idx.end_resync();
        assert_eq!(idx.all_gated().count(), 0);
    }

    #[test]
    fn index_knows_when_each_container_under_a_profile_started() {
        let mut idx = PodIndex::default();
        let web = ("shop".to_string(), "web".to_string());
        let mut p1 = pod(
            "p1",
            serde_json::json!({"spec":{"containers":[
                {"name":"a","image":"x","securityContext":localhost("operator/shop/web.json")},
                {"name":"b","image":"x","securityContext":{"seccompProfile":{"type":"RuntimeDefault"}}}]}}),
        );
        idx.apply(&p1);
        assert!(idx.running_under(&web).is_empty(), "nothing runs yet");
        p1.status = Some(
            serde_json::from_value(serde_json::json!({"phase":"Running","containerStatuses":[
                {"name":"a","image":"x","imageID":"","ready":true,"restartCount":0,"state":{"running":{"startedAt":"2026-12-06T10:00:00Z"}}},
                {"name":"b","image":"x","imageID":"","ready":true,"restartCount":0,"state":{"running":{"startedAt":"2026-12-06T09:00:00Z"}}}]}))
            .unwrap(),
        );
        assert_eq!(
            idx.apply(&p1),
            BTreeSet::from([web.clone()]),
            "a container starting changes the profile's status"
        );
        let r = idx.running_under(&web);
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].0, "shop/p1");
        assert_eq!(
            r[0].1,
            vec!["2026-12-06T10:00:00Z".parse().unwrap()],
            "only the container under it"
        );
        assert_eq!(idx.apply(&p1), BTreeSet::new(), "no change");
        idx.delete(&p1);
        assert!(idx.running_under(&web).is_empty());
    }
}
