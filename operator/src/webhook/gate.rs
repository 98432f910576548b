//! The install gate. A pod created with the operator's scheduling gate
//! ([`crds::SCHEDULING_GATE`], put there by the MutatingAdmissionPolicy on Kubernetes 1.36+ or
//! by [`add_gate`] below) is admitted at once and waits unscheduled until the operator removes
//! the gate ([`crate::pods::ungate`]). Every other pod (one with `spec.nodeName` set, which cannot be
//! gated; one created while the gate could not be added) and every added ephemeral container
//! is checked here: every operator profile it references must exist and be Installed on every
//! node, or it is refused.
//!
//! It looks at what the kubelet applies: the pod's and every container's fields (init
//! containers, native sidecars, containers, ephemeral containers). A legacy annotation has no
//! effect since Kubernetes 1.27, so the gate does not wait for a profile named only there (nor
//! hold it, [`gated_profiles`]); the isolation webhook refuses one naming another tenant's
//! profile.

use super::{checked_pod, old_pod_of, operator_references, Annotations, ClusterView};
use crate::pods::references::{references, ProfileId};
use crds::ProfilePhase;
use kube::core::admission::{AdmissionRequest, AdmissionResponse, Operation};
use kube::core::DynamicObject;
use kube::ResourceExt;
use std::collections::BTreeSet;

/// What a review adds that the gate checks: the operator profiles the pod references that
/// it did not reference before, each with where. References it refuses outright (another
/// tenant's profile, a malformed path) go to `problems`. `None` when the review is not a pod.
fn added_references(
    req: &AdmissionRequest<DynamicObject>,
    shared: &BTreeSet<String>,
    problems: &mut Vec<String>,
) -> Result<Vec<(crate::pods::references::Reference, ProfileId)>, Box<AdmissionResponse>> {
    let pod = checked_pod(req)?;
    // An UPDATE is held to the gate only for what it adds (an ephemeral container: the other
    // fields cannot change): what the pod already used was checked when it came.
    let before: BTreeSet<crate::pods::references::Reference> = match old_pod_of(req) {
        Some(Ok(old)) => references(&old).into_iter().collect(),
        _ => BTreeSet::new(),
    };
    let own = pod.namespace().unwrap_or_default();
    let mut out = Vec::new();
    for (r, (ns, name)) in operator_references(&pod, Annotations::Ignore, problems) {
        if before.contains(&r) {
            continue;
        }
        // Another tenant's profile: whether it exists, and its state, are not this pod's
        // business (tenant isolation refuses the reference).
        if ns != own && !shared.contains(&ns) {
            problems.push(format!(
                "{} uses {}: not allowed for pods of namespace {own}",
                r.place, r.path
            ));
            continue;
        }
        out.push((r, (ns, name)));
    }
    Ok(out)
}

/// Whether the review creates a pod that carries the scheduling gate: it waits for its
/// profiles unscheduled, so the gate admits it whatever their state.
pub fn waits_at_scheduling_gate(req: &AdmissionRequest<DynamicObject>) -> bool {
    req.operation == Operation::Create
        && req.sub_resource.is_none()
        && matches!(checked_pod(req), Ok(p) if crds::has_scheduling_gate(&p))
}

/// The profiles an admitted review makes a pod use from now on: those the in-use finalizer
/// must hold before the pod is stored ([`crate::webhook::hold`]). For a pod that waits at the
/// scheduling gate, the caller holds only those that exist (the pod is admitted either way).
pub fn gated_profiles(
    req: &AdmissionRequest<DynamicObject>,
    shared: &BTreeSet<String>,
) -> BTreeSet<ProfileId> {
    added_references(req, shared, &mut Vec::new())
        .map(|v| v.into_iter().map(|(_, id)| id).collect())
        .unwrap_or_default()
}

/// The mutating half of the gate, for clusters without MutatingAdmissionPolicy (before
/// Kubernetes 1.36): a pod created with a reference to an operator profile gets the scheduling
/// gate, unless it has `spec.nodeName` (the API server refuses gates there) or has the gate
/// already. The same rule as `config/gate-policy/`.
pub fn add_gate(req: &AdmissionRequest<DynamicObject>) -> AdmissionResponse {
    let resp = AdmissionResponse::from(req);
    if req.operation != Operation::Create || req.sub_resource.is_some() {
        return resp;
    }
    let Ok(pod) = checked_pod(req) else {
        return resp;
    };
    let spec = pod.spec.as_ref();
    if crds::has_scheduling_gate(&pod)
        || spec
            .and_then(|s| s.node_name.as_deref())
            .is_some_and(|n| !n.is_empty())
        || operator_references(&pod, Annotations::Ignore, &mut Vec::new()).is_empty()
    {
        return resp;
    }
    let gate = serde_json::json!({"name": crds::SCHEDULING_GATE});
    let op = if spec.is_some_and(|s| s.scheduling_gates.is_some()) {
        serde_json::json!({"op": "add", "path": "/spec/schedulingGates/-", "value": gate})
    } else {
        serde_json::json!({"op": "add", "path": "/spec/schedulingGates", "value": [gate]})
    };
    match serde_json::from_value::<json_patch::Patch>(serde_json::json!([op])) {
        Ok(patch) => resp.clone().with_patch(patch).unwrap_or(resp),
        Err(_) => resp,
    }
}

/// The validating gate: every operator profile a new pod references must exist and be
/// Installed on every node.
pub fn gate(
    req: &AdmissionRequest<DynamicObject>,
    view: &dyn ClusterView,
    shared: &BTreeSet<String>,
) -> AdmissionResponse {
    let resp = AdmissionResponse::from(req);
    let mut problems = Vec::new();
    let added = match added_references(req, shared, &mut problems) {
        Ok(a) => a,
        Err(answer) => return *answer,
    };
    // A pod that waits at the scheduling gate is admitted whatever its profiles' state.
    let added = if waits_at_scheduling_gate(req) {
        Vec::new()
    } else {
        added
    };
    for (r, (ns, name)) in added {
        let why = match view.profile(&ns, &name) {
            None => Some(format!("SeccompProfile {ns}/{name} does not exist")),
            Some(p) => {
                let status = p.status.clone().unwrap_or_default();
                let nodes = status
                    .installed_nodes
                    .clone()
                    .unwrap_or_else(|| "0/0".into());
                let ready_msg = status.ready_message();
                if p.metadata.deletion_timestamp.is_some() {
                    Some(format!("SeccompProfile {ns}/{name} is being deleted"))
                } else {
                    match status.phase {
                        Some(ProfilePhase::Installed) => None,
                        Some(ProfilePhase::Disabled) => Some(format!("SeccompProfile {ns}/{name} is disabled")),
                        Some(ProfilePhase::Error) => Some(format!("SeccompProfile {ns}/{name} is in Error: {ready_msg}")),
                        _ => Some(format!("SeccompProfile {ns}/{name} is not installed on every node yet ({nodes} nodes)")),
                    }
                }
            }
        };
        if let Some(why) = why {
            problems.push(format!("{} uses {}: {why}", r.place, r.path));
        }
    }
    if problems.is_empty() {
        resp
    } else {
        resp.deny(format!(
            "seccomp-operator install gate: {}; the pod can be created once the profile is Installed",
            problems.join("; ")
        ))
    }
}
