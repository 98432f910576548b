//! The mutating binding webhook: containers whose image a ProfileBinding matches get the bound
//! profile; pods a `Logs` recording selects get its `SCMP_ACT_LOG` profile.

use super::{pod_of, ClusterView};
use crds::{ProfileBinding, ProfileRecording, SeccompProfile};
use k8s_openapi::api::core::v1::{Container, Pod};
use kube::core::admission::{AdmissionRequest, AdmissionResponse, Operation};
use kube::core::DynamicObject;
use kube::ResourceExt;
use std::collections::BTreeMap;
use std::sync::Arc;

/// The binding that applies to a container, if any: exact image matches beat `*`, then the
/// binding's name decides, so the choice is deterministic.
fn binding_for<'a>(
    bindings: &'a [Arc<ProfileBinding>],
    pod_labels: &BTreeMap<String, String>,
    c: &Container,
) -> Option<&'a ProfileBinding> {
    let mut candidates: Vec<&ProfileBinding> = bindings
        .iter()
        .map(|b| &**b)
        .filter(|b| b.spec.image == "*" || Some(&b.spec.image) == c.image.as_ref())
        .filter(|b| {
            b.spec
                .pod_selector
                .as_ref()
                .is_none_or(|s| crds::selector_matches(s, pod_labels))
        })
        .filter(|b| {
            b.spec
                .container_names
                .as_ref()
                .is_none_or(|names| names.contains(&c.name))
        })
        .collect();
    candidates.sort_by_key(|b| (b.spec.image == "*", b.name_any()));
    candidates.into_iter().next()
}

/// The active `Logs` recording that selects a container, if any (by name, so the choice is
/// deterministic).
fn logs_recording_for<'a>(
    recordings: &'a [Arc<ProfileRecording>],
    pod: &Pod,
    c: &Container,
) -> Option<&'a ProfileRecording> {
    recordings
        .iter()
        .map(|r| &**r)
        .filter(|r| r.selects_pod(pod))
        .filter(|r| {
            r.spec
                .containers
                .as_ref()
                .is_none_or(|names| names.contains(&c.name))
        })
        .min_by_key(|r| r.name_any())
}

/// The binding webhook: sets the container-level `seccompProfile` of matching containers that
/// set none (and whose pod sets none), and marks the pod with the binding's name. Containers an
/// active `Logs` recording selects get the recording's `SCMP_ACT_LOG` profile instead, and the
/// pod is marked with the recording's name.
///
/// Init containers count, native sidecars (`restartPolicy: Always`) included: a sidecar runs
/// for the pod's whole life and is bound by its own image like any container. Only the fields
/// decide whether a container sets a profile: a legacy annotation has no effect since
/// Kubernetes 1.27, so a container whose only setting is one is bound. The API server still
/// refuses a pod whose container annotation and field disagree, so the binding removes that
/// container's (inert) annotation in the same patch.
pub fn bind(req: &AdmissionRequest<DynamicObject>, view: &dyn ClusterView) -> AdmissionResponse {
    let resp = AdmissionResponse::from(req);
    if req.operation != Operation::Create {
        return resp;
    }
    let pod = match pod_of(req) {
        None => return resp,
        // Binding fails open: a pod it cannot read is left as it is.
        Some(Err(_)) => return resp,
        Some(Ok(p)) => p,
    };
    let ns = pod.namespace().unwrap_or_default();
    let bindings = view.bindings(&ns);
    let now = k8s_openapi::jiff::Timestamp::now();
    let recordings: Vec<Arc<ProfileRecording>> = view
        .recordings(&ns)
        .into_iter()
        .filter(|r| r.spec.recorder == crds::Recorder::Logs && r.is_active(now))
        .collect();
    let Some(spec) = pod.spec.as_ref() else {
        return resp;
    };
    if (bindings.is_empty() && recordings.is_empty())
        || spec
            .security_context
            .as_ref()
            .and_then(|s| s.seccomp_profile.as_ref())
            .is_some()
    {
        return resp;
    }
    let labels = pod.labels().clone();
    let annotations = pod.annotations();
    let mut ops = Vec::new();
    let mut inert = Vec::new();
    let mut bound_by = None;
    let mut recorded_by = None;
    for (list, containers) in [
        ("containers", Some(&spec.containers)),
        ("initContainers", spec.init_containers.as_ref()),
    ] {
        for (i, c) in containers.into_iter().flatten().enumerate() {
            if c.security_context
                .as_ref()
                .and_then(|s| s.seccomp_profile.as_ref())
                .is_some()
            {
                continue;
            }
            // A Logs recording that selects the container wins over bindings: the user asked
            // to learn what it does.
            let target = if let Some(r) = logs_recording_for(&recordings, &pod, c) {
                recorded_by.get_or_insert_with(|| r.name_any());
                ProfileRecording::audit_profile_name(&r.name_any())
            } else if let Some(b) = binding_for(&bindings, &labels, c) {
                bound_by.get_or_insert_with(|| b.name_any());
                b.spec.profile_ref.name.clone()
            } else {
                continue;
            };
            let profile = serde_json::json!({
                "type": "Localhost",
                "localhostProfile": SeccompProfile::localhost_path(&ns, &target),
            });
            let (path, value) = if c.security_context.is_none() {
                (
                    format!("/spec/{list}/{i}/securityContext"),
                    serde_json::json!({"seccompProfile": profile}),
                )
            } else {
                (
                    format!("/spec/{list}/{i}/securityContext/seccompProfile"),
                    profile,
                )
            };
            ops.push(add_op(&path, value));
            let legacy = format!(
                "{}{}",
                crds::confinement::ANNOTATION_CONTAINER_PREFIX,
                c.name
            );
            if annotations.contains_key(&legacy) {
                inert.push(legacy);
            }
        }
    }
    let marks: Vec<(&str, String)> = [
        (crate::pods::index::BOUND_BY, bound_by),
        (crds::ANNOTATION_RECORDED_BY, recorded_by),
    ]
    .into_iter()
    .filter_map(|(k, v)| Some((k, v?)))
    .collect();
    if marks.is_empty() {
        return resp;
    }
    for key in inert {
        ops.push(serde_json::json!({"op": "remove", "path": annotation_path(&key)}));
    }
    if pod.metadata.annotations.is_none() {
        let all: serde_json::Map<String, serde_json::Value> = marks
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone().into()))
            .collect();
        ops.push(add_op("/metadata/annotations", all.into()));
    } else {
        for (k, v) in marks {
            ops.push(add_op(&annotation_path(k), v.into()));
        }
    }
    match serde_json::from_value::<json_patch::Patch>(serde_json::Value::Array(ops)) {
        Ok(patch) => resp.clone().with_patch(patch).unwrap_or(resp),
        Err(_) => resp,
    }
}

/// The JSON pointer to an annotation (`~` and `/` escaped).
fn annotation_path(key: &str) -> String {
    format!(
        "/metadata/annotations/{}",
        key.replace('~', "~0").replace('/', "~1")
    )
}

fn add_op(path: &str, value: serde_json::Value) -> serde_json::Value {
    serde_json::json!({"op": "add", "path": path, "value": value})
}
