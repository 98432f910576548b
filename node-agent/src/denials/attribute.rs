//! Container ID → the workload and operator profile it runs under, from the pods on this
//! node. Pure: tested without an API server.
//!
//! A `Logs` ProfileRecording's containers run under an operator profile too — the recording's
//! `SCMP_ACT_LOG` profile `<recording>.log`, where the binding webhook puts them, marking the
//! pod with [`crds::ANNOTATION_RECORDED_BY`] — and log every call they make. Such a container is
//! marked ([`Workload::logs_recording`]): its logged calls are the recording's, and the loop
//! drops them without reading the profile.

use crds::confinement::{containers, NodeDefault, Seccomp};
use crds::runtime_id;
use k8s_openapi::api::core::v1::Pod;
use kube::ResourceExt;
use std::borrow::Borrow;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

/// A container under an operator profile.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Workload {
    /// The pod's namespace (also the profile's: a pod can only use its namespace's profiles
    /// through the install gate).
    pub namespace: String,
    /// The pod's name.
    pub pod: String,
    /// The pod's UID.
    pub pod_uid: String,
    /// The container's name.
    pub container: String,
    /// `containers`, `initContainers` or `ephemeralContainers`: where the container is in the
    /// pod's spec.
    pub field: &'static str,
    /// The operator profile (namespace, name).
    pub profile: (String, String),
    /// Put under a `Logs` recording's profile ([`is_logs_recording`]): its logged calls are
    /// the recording's, never classified nor reported as would-be denials.
    pub logs_recording: bool,
}

/// Whether a container of `pod` under the operator profile named `profile` is a `Logs`
/// recording's: the pod carries [`crds::ANNOTATION_RECORDED_BY`] (the binding webhook put at
/// least one of its containers under a recording's profile) and the profile has the name of a
/// recording's audit profile ([`crds::ProfileRecording::audit_profile_name`], `<recording>.log`:
/// the annotation names one recording, and two recordings may select different containers of a
/// pod). Its other containers — under profiles of their own, perhaps in complain mode — are
/// not. A container put under a recording's profile by hand (no annotation) is classified like
/// any other: its profile logs everything, so its records count as not refused.
pub fn is_logs_recording(pod: &Pod, profile: &str) -> bool {
    let suffix = crds::ProfileRecording::audit_profile_name("");
    pod.annotations().contains_key(crds::ANNOTATION_RECORDED_BY)
        && profile
            .strip_suffix(suffix.as_str())
            .is_some_and(|recording| !recording.is_empty())
}

/// Every container of `pods` that runs under an operator profile, by container ID. A
/// container's previous instance (`lastState.terminated`) is included: a container its filter
/// killed has often been replaced by the time its record is read.
pub fn operator_containers<P: Borrow<Pod>>(pods: &[P]) -> HashMap<String, Arc<Workload>> {
    let mut out = HashMap::new();
    for pod in pods.iter().map(Borrow::borrow) {
        // Only operator profiles matter here: what the node does with unset ones does not.
        let confined = containers(pod, NodeDefault::Unknown);
        for st in crds::confinement::container_statuses(pod) {
            let Some(c) = confined.iter().find(|c| c.name == st.name) else {
                continue;
            };
            let Seccomp::Localhost {
                operator: Some(profile),
                ..
            } = &c.seccomp
            else {
                continue;
            };
            let w = Arc::new(Workload {
                namespace: pod.namespace().unwrap_or_default(),
                pod: pod.name_any(),
                pod_uid: pod.uid().unwrap_or_default(),
                container: st.name.clone(),
                field: match c.kind {
                    crds::confinement::INIT_CONTAINER => "initContainers",
                    crds::confinement::EPHEMERAL_CONTAINER => "ephemeralContainers",
                    _ => "containers",
                },
                profile: profile.clone(),
                logs_recording: is_logs_recording(pod, &profile.1),
            });
            let previous = st
                .last_state
                .as_ref()
                .and_then(|s| s.terminated.as_ref())
                .and_then(|t| t.container_id.as_deref())
                .map(runtime_id);
            let current = st.container_id.as_deref().map(runtime_id);
            for id in current.into_iter().chain(previous) {
                out.insert(id, w.clone());
            }
        }
    }
    out
}

/// The ID of every container of `pods` the kubelet has reported (current and previous
/// instances), whatever it runs under: a record of one of them that is not in
/// [`operator_containers`] is known to be someone else's, without waiting.
pub fn known_containers<P: Borrow<Pod>>(pods: &[P]) -> HashSet<String> {
    pods.iter()
        .map(Borrow::borrow)
        .flat_map(crds::confinement::container_statuses)
        .flat_map(|st| {
            let previous = st
                .last_state
                .as_ref()
                .and_then(|s| s.terminated.as_ref())
                .and_then(|t| t.container_id.as_deref());
            st.container_id.as_deref().into_iter().chain(previous)
        })
        .map(runtime_id)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn containers_under_operator_profiles_by_current_and_previous_id() {
        let pod: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "web", "namespace": "t", "uid": "u1"},
            "spec": {
                "securityContext": {"seccompProfile": {"type": "Localhost", "localhostProfile": "operator/t/web.json"}},
                "containers": [
                    {"name": "app"},
                    {"name": "side", "securityContext": {"seccompProfile": {"type": "RuntimeDefault"}}},
                ]
            },
            "status": {"containerStatuses": [
                {"name": "app", "containerID": "containerd://aaa", "image": "", "imageID": "", "ready": true, "restartCount": 1,
                 "lastState": {"terminated": {"exitCode": 159, "containerID": "containerd://old"}}},
                {"name": "side", "containerID": "containerd://bbb", "image": "", "imageID": "", "ready": true, "restartCount": 0},
            ]}
        }))
        .unwrap();
        let pod_again = pod.clone();
        let m = operator_containers(&[pod]);
        assert_eq!(m.len(), 2, "{m:?}");
        let w = &m["aaa"];
        assert_eq!(
            (
                w.namespace.as_str(),
                w.pod.as_str(),
                w.container.as_str(),
                w.field
            ),
            ("t", "web", "app", "containers")
        );
        assert_eq!(w.profile, ("t".to_owned(), "web".to_owned()));
        assert_eq!(
            m["old"], m["aaa"],
            "the killed instance is still attributed"
        );
        assert!(
            !m.contains_key("bbb"),
            "RuntimeDefault is not the operator's"
        );
        assert!(!w.logs_recording);
        let known = known_containers(&[pod_again]);
        assert_eq!(
            known,
            HashSet::from(["aaa".to_owned(), "old".to_owned(), "bbb".to_owned()]),
            "every reported container, whatever its profile"
        );
    }

    #[test]
    fn containers_a_logs_recording_put_under_its_profile_are_marked() {
        let pod = |annotations: serde_json::Value| -> Pod {
            serde_json::from_value(serde_json::json!({
                "metadata": {"name": "web", "namespace": "t", "uid": "u1", "annotations": annotations},
                "spec": {"containers": [
                    {"name": "app", "securityContext": {"seccompProfile": {"type": "Localhost", "localhostProfile": "operator/t/learn.log.json"}}},
                    {"name": "other", "securityContext": {"seccompProfile": {"type": "Localhost", "localhostProfile": "operator/t/other-rec.log.json"}}},
                    {"name": "side", "securityContext": {"seccompProfile": {"type": "Localhost", "localhostProfile": "operator/t/side.json"}}},
                ]},
                "status": {"containerStatuses": [
                    {"name": "app", "containerID": "containerd://aaa", "image": "", "imageID": "", "ready": true, "restartCount": 0},
                    {"name": "other", "containerID": "containerd://ccc", "image": "", "imageID": "", "ready": true, "restartCount": 0},
                    {"name": "side", "containerID": "containerd://bbb", "image": "", "imageID": "", "ready": true, "restartCount": 0},
                ]}
            }))
            .unwrap()
        };
        let recorded = pod(serde_json::json!({crds::ANNOTATION_RECORDED_BY: "learn"}));
        assert_eq!(
            crds::ProfileRecording::audit_profile_name("learn"),
            "learn.log",
            "the fixture's profile is the recording's"
        );
        let m = operator_containers(&[recorded]);
        assert_eq!(m.len(), 3, "{m:?}");
        assert!(m["aaa"].logs_recording, "under the recording's profile");
        assert!(
            m["ccc"].logs_recording,
            "under another recording's profile in the same pod"
        );
        assert!(
            !m["bbb"].logs_recording,
            "a profile of its own in a recorded pod: classified"
        );
        let by_hand = operator_containers(&[pod(serde_json::json!({}))]);
        assert!(
            by_hand.values().all(|w| !w.logs_recording),
            "no annotation: not the webhook's doing"
        );
        let p = pod(serde_json::json!({crds::ANNOTATION_RECORDED_BY: "learn"}));
        assert!(!is_logs_recording(&p, ".log"), "no recording name");
        assert!(!is_logs_recording(&p, "learn.logs"));
    }
}
