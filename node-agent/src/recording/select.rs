//! Which containers of this node the active recordings select, and when a recorded one is
//! done. Pure: decided from the watched recordings and pods, tested without an API server.
//! Selection itself is `ProfileRecording::selects_pod` (the API crate's one rule, which the
//! operator and the binding webhook use too).
//!
//! Containers and init containers are recorded, native sidecars (init containers with
//! `restartPolicy: Always`) included: a sidecar is found by its own status entry, is recorded
//! under its own name (its profile is `<recording>-<sidecar>`, never merged into another
//! container's) and, running for the pod's whole life, is done only when it ends itself.

use crds::ProfileRecording;
use k8s_openapi::api::core::v1::{Container, Pod};
use kube::ResourceExt;
use std::borrow::Borrow;
use std::collections::HashMap;

/// A container to record. Kept as the recorder's note about its namespace (JSON), so that a
/// restarted agent knows which container a namespace it finds recording belongs to, even when
/// the pod went away in the meantime.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Target {
    /// The recording.
    pub recording: String,
    /// The recording's UID (owner of partial profiles).
    pub recording_uid: String,
    /// Namespace of the recording and the pod.
    pub namespace: String,
    /// The pod.
    pub pod: String,
    /// The container.
    pub container: String,
    /// Whether the container runs with NoNewPrivileges (`allowPrivilegeEscalation: false`).
    pub no_new_privs: bool,
    /// How the container is recorded.
    #[serde(default)]
    pub recorder: crds::Recorder,
}

/// Whether a recording of this kind is recording now.
pub fn any_active<R: Borrow<ProfileRecording>>(
    recordings: &[R],
    kind: crds::Recorder,
    now: k8s_openapi::jiff::Timestamp,
) -> bool {
    recordings
        .iter()
        .map(Borrow::borrow)
        .any(|r| r.spec.recorder == kind && r.is_active(now))
}

/// Whether a recorded container is done: it ended (or is no longer listed), or its
/// recording stopped.
pub fn container_done<R: Borrow<ProfileRecording>>(
    t: &Target,
    id: &str,
    recordings: &[R],
    known: &HashMap<String, bool>,
    now: k8s_openapi::jiff::Timestamp,
) -> bool {
    let rec_live = recordings.iter().map(Borrow::borrow).any(|r| {
        r.name_any() == t.recording
            && r.namespace().as_deref() == Some(t.namespace.as_str())
            && r.is_active(now)
    });
    known.get(id).copied().unwrap_or(true) || !rec_live
}

fn spec_container<'a>(pod: &'a Pod, name: &str) -> Option<&'a Container> {
    let spec = pod.spec.as_ref()?;
    spec.containers
        .iter()
        .chain(spec.init_containers.iter().flatten())
        .find(|c| c.name == name)
}

/// Container ID → target, for every container of `pods` that an active recording in the same
/// namespace selects (pod labels, optional container names, pod created after the recording).
pub fn targets<P: Borrow<Pod>, R: Borrow<ProfileRecording>>(
    pods: &[P],
    recordings: &[R],
    now: k8s_openapi::jiff::Timestamp,
) -> HashMap<String, Target> {
    let mut out = HashMap::new();
    for rec in recordings
        .iter()
        .map(Borrow::borrow)
        .filter(|r| r.is_active(now))
    {
        let ns = rec.namespace().unwrap_or_default();
        for pod in pods
            .iter()
            .map(Borrow::borrow)
            .filter(|p| rec.selects_pod(p))
        {
            for inst in crds::container_instances(pod) {
                if !rec.records_container(&inst.name) {
                    continue;
                }
                let id = inst.id;
                let no_new_privs = spec_container(pod, &inst.name)
                    .and_then(|c| c.security_context.as_ref())
                    .and_then(|s| s.allow_privilege_escalation)
                    == Some(false);
                out.insert(
                    id,
                    Target {
                        recording: rec.name_any(),
                        recording_uid: rec.uid().unwrap_or_default(),
                        namespace: ns.clone(),
                        pod: pod.name_any(),
                        container: inst.name.clone(),
                        no_new_privs,
                        recorder: rec.spec.recorder,
                    },
                );
            }
        }
    }
    out
}

/// Whether this node needs the eBPF recorder loaded: an active `Bpf` recording selects a pod
/// that runs on this node (`node_pods`, not finished) or that no node runs yet (`unscheduled`:
/// it may land here, and the recorder must be in place before its first container starts).
/// A node where no selected pod runs or may start pays nothing.
pub fn needs_recorder<R, P>(
    recordings: &[R],
    node_pods: &[P],
    unscheduled: &[P],
    now: k8s_openapi::jiff::Timestamp,
) -> bool
where
    R: Borrow<ProfileRecording>,
    P: Borrow<Pod>,
{
    let finished = |p: &Pod| {
        p.status
            .as_ref()
            .and_then(|s| s.phase.as_deref())
            .is_some_and(|ph| ph == "Succeeded" || ph == "Failed")
    };
    recordings
        .iter()
        .map(Borrow::borrow)
        .filter(|r| r.spec.recorder == crds::Recorder::Bpf && r.is_active(now))
        .any(|r| {
            node_pods
                .iter()
                .map(Borrow::borrow)
                .chain(unscheduled.iter().map(Borrow::borrow))
                .any(|p| !finished(p) && r.selects_pod(p))
        })
}

/// Container ID → whether it has ended, for every container this node's pods report.
pub fn known_containers<P: Borrow<Pod>>(pods: &[P]) -> HashMap<String, bool> {
    let mut out = HashMap::new();
    for pod in pods.iter().map(Borrow::borrow) {
        let gone = pod.metadata.deletion_timestamp.is_some();
        for inst in crds::container_instances(pod) {
            out.insert(inst.id, inst.ended || gone);
        }
    }
    out
}

/// A target for tests: container `web` of pod `web-1` for recording `rec` in `shop`.
#[cfg(test)]
pub(crate) fn sample_target() -> Target {
    Target {
        recording: "rec".into(),
        recording_uid: "u1".into(),
        namespace: "shop".into(),
        pod: "web-1".into(),
        container: "web".into(),
        no_new_privs: true,
        recorder: crds::Recorder::Bpf,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(json: serde_json::Value) -> ProfileRecording {
        serde_json::from_value(json).unwrap()
    }

    fn pod(
        name: &str,
        labels: serde_json::Value,
        created: &str,
        id: &str,
        terminated: bool,
    ) -> Pod {
        let state = if terminated {
            serde_json::json!({"terminated": {"exitCode": 0}})
        } else {
            serde_json::json!({"running": {}})
        };
        serde_json::from_value(serde_json::json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": "shop", "labels": labels, "creationTimestamp": created},
            "spec": {"containers": [{"name": "web", "image": "x", "securityContext": {"allowPrivilegeEscalation": false}}, {"name": "side", "image": "y"}]},
            "status": {"containerStatuses": [
                {"name": "web", "containerID": format!("containerd://{id}"), "image": "x", "imageID": "", "ready": true, "restartCount": 0, "state": state},
                {"name": "side", "containerID": format!("containerd://{id}-side"), "image": "y", "imageID": "", "ready": true, "restartCount": 0, "state": {"running": {}}}
            ]}
        }))
        .unwrap()
    }

    fn recording(extra: serde_json::Value) -> ProfileRecording {
        let mut spec = serde_json::json!({"podSelector": {"matchLabels": {"app": "web"}}});
        spec.as_object_mut()
            .unwrap()
            .extend(extra.as_object().cloned().unwrap_or_default());
        rec(
            serde_json::json!({"apiVersion": "seccomp-operator.dev/v1alpha1", "kind": "ProfileRecording",
            "metadata": {"name": "rec", "namespace": "shop", "uid": "u1", "creationTimestamp": "2026-01-01T00:00:00Z"}, "spec": spec}),
        )
    }

    #[test]
    fn selects_new_matching_pods_and_allowed_containers() {
        let now = "2026-01-01T00:10:00Z".parse().unwrap();
        let pods = vec![
            pod(
                "new",
                serde_json::json!({"app": "web"}),
                "2026-01-01T00:01:00Z",
                "aaa",
                false,
            ),
            pod(
                "old",
                serde_json::json!({"app": "web"}),
                "2025-12-31T00:00:00Z",
                "bbb",
                false,
            ),
            pod(
                "other",
                serde_json::json!({"app": "db"}),
                "2026-01-01T00:01:00Z",
                "ccc",
                false,
            ),
        ];
        let t = targets(
            &pods,
            &[recording(serde_json::json!({"containers": ["web"]}))],
            now,
        );
        assert_eq!(t.keys().collect::<Vec<_>>(), vec!["aaa"]);
        assert!(t["aaa"].no_new_privs);
        let all = targets(&pods, &[recording(serde_json::json!({}))], now);
        assert_eq!(all.len(), 2, "both containers of the new pod");
        // a recording whose duration passed selects nothing
        assert!(targets(
            &pods,
            &[recording(serde_json::json!({"durationSeconds": 60}))],
            now
        )
        .is_empty());
    }

    #[test]
    fn the_recorder_is_needed_only_for_selected_pods_here_or_not_yet_placed() {
        let now = "2026-01-01T00:10:00Z".parse().unwrap();
        let web = |name: &str| {
            pod(
                name,
                serde_json::json!({"app": "web"}),
                "2026-01-01T00:01:00Z",
                name,
                false,
            )
        };
        let bpf = [recording(serde_json::json!({}))];
        let logs = [recording(serde_json::json!({"recorder": "Logs"}))];
        let db = pod(
            "db",
            serde_json::json!({"app": "db"}),
            "2026-01-01T00:01:00Z",
            "d",
            false,
        );
        // An idle recording (selects nothing here, nothing pending): no recorder.
        assert!(!needs_recorder(&bpf, std::slice::from_ref(&db), &[], now));
        assert!(needs_recorder(&bpf, &[web("here")], &[], now));
        assert!(
            needs_recorder(&bpf, std::slice::from_ref(&db), &[web("pending")], now),
            "a selected pod not placed yet may come here"
        );
        assert!(
            !needs_recorder(&logs, &[web("here")], &[], now),
            "Logs needs no eBPF"
        );
        let mut done = web("done");
        done.status.as_mut().unwrap().phase = Some("Succeeded".into());
        assert!(!needs_recorder(&bpf, &[done], &[], now));
        let expired = [recording(serde_json::json!({"durationSeconds": 60}))];
        assert!(!needs_recorder(&expired, &[web("here")], &[], now));
        let old = pod(
            "old",
            serde_json::json!({"app": "web"}),
            "2025-12-31T00:00:00Z",
            "o",
            false,
        );
        assert!(
            !needs_recorder(&bpf, &[old], &[], now),
            "created before the recording"
        );
    }

    #[test]
    fn a_native_sidecar_is_selected_under_its_own_name_for_the_pods_whole_life() {
        let now = "2026-01-01T00:10:00Z".parse().unwrap();
        let status = |name: &str, id: &str, state: serde_json::Value| serde_json::json!({"name": name, "containerID": format!("containerd://{id}"), "image": "x", "imageID": "", "ready": true, "restartCount": 0, "state": state});
        let running = serde_json::json!({"running": {}});
        let p: Pod = serde_json::from_value(serde_json::json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "p", "namespace": "shop", "labels": {"app": "web"}, "creationTimestamp": "2026-01-01T00:01:00Z"},
            "spec": {
                "initContainers": [
                    {"name": "setup", "image": "x"},
                    {"name": "proxy", "image": "envoy", "restartPolicy": "Always", "securityContext": {"allowPrivilegeEscalation": false}},
                ],
                "containers": [{"name": "web", "image": "x"}],
            },
            "status": {
                "initContainerStatuses": [
                    status("setup", "init", serde_json::json!({"terminated": {"exitCode": 0}})),
                    status("proxy", "side", running.clone()),
                ],
                "containerStatuses": [status("web", "main", running)],
            }
        }))
        .unwrap();
        let pods = [p];
        let all = targets(&pods, &[recording(serde_json::json!({}))], now);
        let mut ids: Vec<&str> = all.keys().map(String::as_str).collect();
        ids.sort_unstable();
        assert_eq!(
            ids,
            ["init", "main", "side"],
            "init container, sidecar and container"
        );
        let side = &all["side"];
        assert_eq!(side.container, "proxy", "recorded as itself");
        assert!(side.no_new_privs, "from the sidecar's own security context");
        assert!(!all["main"].no_new_privs);
        let only = targets(
            &pods,
            &[recording(serde_json::json!({"containers": ["proxy"]}))],
            now,
        );
        assert_eq!(only.keys().collect::<Vec<_>>(), ["side"]);
        // The ordinary init container is done; the sidecar runs on with the pod.
        let known = known_containers(&pods);
        let recs = [recording(serde_json::json!({}))];
        assert!(container_done(&all["init"], "init", &recs, &known, now));
        assert!(!container_done(side, "side", &recs, &known, now));
    }

    #[test]
    fn knows_ended_containers() {
        let pods = vec![pod(
            "p",
            serde_json::json!({}),
            "2026-01-01T00:01:00Z",
            "aaa",
            true,
        )];
        let k = known_containers(&pods);
        assert_eq!(k.get("aaa"), Some(&true));
        assert_eq!(k.get("aaa-side"), Some(&false));
    }
}
