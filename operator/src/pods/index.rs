//! Which pods use which profiles: a pod's seccomp references (from the one walk of a pod's
//! settings, [`crds::confinement::settings`]) and an index kept from a pod watch. Pure, tested
//! without an API server.
//!
//! A pod uses the operator profiles its fields name — the pod's (also its sandbox's profile,
//! even when every container sets its own) and every container's: init containers, native
//! sidecars, containers, ephemeral containers. A legacy annotation does nothing since
//! Kubernetes 1.27: a profile it names is not used, and its deletion is not held for that pod.

use crds::confinement::Seccomp;
use k8s_openapi::api::core::v1::Pod;
use kube::ResourceExt;
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// A profile, by namespace and name.
pub type ProfileId = (String, String);

/// The operator profile a `localhostProfile` value names, as the kubelet resolves it (see
/// [`crds::localhost`]): `Ok(None)` for a file outside the operator's directory, an error for a
/// value that must be refused.
pub fn parse_localhost(path: &str) -> Result<Option<ProfileId>, crds::localhost::RefError> {
    crds::localhost::operator_profile(path)
}

/// One place in a pod that names a Localhost seccomp profile.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Reference {
    /// Where: `pod`, `container <name>`, `initContainer <name>`, `ephemeralContainer <name>`,
    /// or `annotation <key>`.
    pub place: String,
    /// The `localhostProfile` value (for an annotation, what follows `localhost/`).
    pub path: String,
    /// Whether the kubelet applies it (false for a legacy annotation).
    pub in_effect: bool,
}

/// Every Localhost seccomp reference written in a pod, with whether the kubelet applies it:
/// the pod-level and container-level fields (init containers, native sidecars included,
/// containers and ephemeral containers), and the legacy annotations (not in effect).
pub fn references(pod: &Pod) -> Vec<Reference> {
    crds::confinement::settings(pod)
        .into_iter()
        .filter_map(|s| {
            let in_effect = s.in_effect();
            match s.seccomp {
                Seccomp::Localhost { path, .. } => Some(Reference {
                    place: s.place.to_string(),
                    path,
                    in_effect,
                }),
                _ => None,
            }
        })
        .collect()
}

/// The operator's profiles a pod uses.
pub fn profiles_of(pod: &Pod) -> BTreeSet<ProfileId> {
    references(pod)
        .iter()
        .filter(|r| r.in_effect)
        .filter_map(|r| parse_localhost(&r.path).ok().flatten())
        .collect()
}

/// Whether a pod still counts as a user: its containers can still start (not Succeeded or
/// Failed).
pub fn is_live(pod: &Pod) -> bool {
    !matches!(
        pod.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Succeeded" | "Failed")
    )
}

/// `<namespace>/<name>` of a pod.
pub fn pod_key(pod: &Pod) -> String {
    format!("{}/{}", pod.namespace().unwrap_or_default(), pod.name_any())
}

/// Profiles → live pods that use them, kept up to date from pod events.
#[derive(Debug, Default)]
pub struct PodIndex {
    users: BTreeMap<ProfileId, BTreeSet<String>>,
    by_pod: HashMap<String, BTreeSet<ProfileId>>,
    bound_by: HashMap<String, String>,
    resync: Option<BTreeSet<String>>,
    confinement: crate::pods::confinement::ConfinementTally,
    gated: BTreeMap<String, GatedPod>,
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
        self.set(key, now)
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

    fn pod(name: &str, json: serde_json::Value) -> Pod {
        let mut v = serde_json::json!({"apiVersion":"v1","kind":"Pod","metadata":{"name":name,"namespace":"shop"}});
        v.as_object_mut()
            .unwrap()
            .extend(json.as_object().unwrap().clone());
        serde_json::from_value(v).unwrap()
    }

    fn localhost(p: &str) -> serde_json::Value {
        serde_json::json!({"seccompProfile":{"type":"Localhost","localhostProfile":p}})
    }

    #[test]
    fn localhost_values_name_operator_profiles() {
        let ok = |v: &str| parse_localhost(v).unwrap();
        assert_eq!(
            ok("operator/shop/web.json"),
            Some(("shop".into(), "web".into()))
        );
        assert_eq!(
            ok("operator/shop/web.v2.json"),
            Some(("shop".into(), "web.v2".into()))
        );
        // Spelled as the kubelet resolves it (the full table is in crds::localhost).
        assert_eq!(
            ok("./operator/shop/web.json"),
            Some(("shop".into(), "web".into()))
        );
        assert_eq!(ok("profiles/web.json"), None);
        assert_eq!(ok("operatorx/shop/web.json"), None);
        for bad in [
            "operator/shop/web.yaml",
            "operator/shop/a/b.json",
            "operator//x.json",
            "../x.json",
        ] {
            assert!(parse_localhost(bad).is_err(), "{bad}");
        }
        // The index counts a pod that spells the path differently as a user of the profile;
        // a legacy annotation (no effect since Kubernetes 1.27) makes no user.
        let p = pod(
            "p",
            serde_json::json!({"metadata": {"name":"p","namespace":"shop","annotations":{"container.seccomp.security.alpha.kubernetes.io/a":"localhost/./operator/shop/web.json"}},
                "spec": {"containers": [{"name":"a","image":"x"},{"name":"b","image":"x","securityContext":localhost("operator//shop/api.json")}]}}),
        );
        assert_eq!(
            profiles_of(&p),
            BTreeSet::from([("shop".to_string(), "api".to_string())])
        );
    }

    #[test]
    fn finds_every_reference() {
        let p = pod(
            "p",
            serde_json::json!({
                "metadata": {"name":"p","namespace":"shop","annotations":{"container.seccomp.security.alpha.kubernetes.io/old":"localhost/operator/shop/legacy.json"}},
                "spec": {
                    "securityContext": localhost("operator/shop/podlevel.json"),
                    "containers": [{"name":"a","image":"x","securityContext":localhost("operator/shop/a.json")},
                                   {"name":"b","image":"x","securityContext":{"seccompProfile":{"type":"RuntimeDefault"}}}],
                    "initContainers": [{"name":"i","image":"x","securityContext":localhost("operator/other/i.json")},
                                       {"name":"proxy","image":"x","restartPolicy":"Always","securityContext":localhost("operator/shop/proxy.json")}],
                    "ephemeralContainers": [{"name":"e","image":"x","securityContext":localhost("operator/shop/e.json")}]
                }
            }),
        );
        let names: Vec<String> = profiles_of(&p)
            .into_iter()
            .map(|(ns, n)| format!("{ns}/{n}"))
            .collect();
        assert_eq!(
            names,
            vec!["other/i", "shop/a", "shop/e", "shop/podlevel", "shop/proxy"],
            "every field, the sidecar's too; not the legacy annotation"
        );
        // The annotation is still listed, for the webhooks that look at it, not in effect.
        let legacy: Vec<Reference> = references(&p)
            .into_iter()
            .filter(|r| !r.in_effect)
            .collect();
        assert_eq!(
            legacy,
            vec![Reference {
                place: "annotation container.seccomp.security.alpha.kubernetes.io/old".into(),
                path: "operator/shop/legacy.json".into(),
                in_effect: false
            }]
        );
    }

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
}
