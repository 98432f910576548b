//! Node agents write only their own node's objects (validating, CREATE/UPDATE of the agents'
//! heartbeat Leases and the recorders' RecordingReports). A node's SeccompNodeStatus, written
//! far more often, is checked inside the API server from the token's node claim
//! (`config/webhook/node-reports-policy.yaml`), so reports go on while the operator is down.
//!
//! RBAC cannot say "your own node": every agent has the same ServiceAccount. The agent's pod
//! mounts a bound (projected) ServiceAccount token, so the API server tells the webhook which
//! pod makes the request (`authentication.kubernetes.io/pod-name` and `pod-uid` in the user's
//! extra information); the pod's `spec.nodeName` is the only node whose objects it may write.
//! A request of the agent's account without those claims (a legacy token, a stolen secret)
//! is refused. Requests of any other user are RBAC's business and pass.

use super::ClusterView;
use k8s_openapi::api::coordination::v1::Lease;
use kube::core::admission::{AdmissionRequest, AdmissionResponse, Operation};
use kube::core::DynamicObject;

/// The user-info keys a bound ServiceAccount token adds.
pub const POD_NAME_KEY: &str = "authentication.kubernetes.io/pod-name";
/// See [`POD_NAME_KEY`].
pub const POD_UID_KEY: &str = "authentication.kubernetes.io/pod-uid";

/// The node whose objects the requesting agent pod may write, or why it may write none.
fn requester_node(
    req: &AdmissionRequest<DynamicObject>,
    view: &dyn ClusterView,
    agent_namespace: &str,
) -> Result<String, String> {
    let one = |k: &str| {
        req.user_info
            .extra
            .as_ref()
            .and_then(|e| e.get(k))
            .and_then(|v| v.first())
            .cloned()
    };
    let (Some(pod), Some(uid)) = (one(POD_NAME_KEY), one(POD_UID_KEY)) else {
        return Err(
            "the node agent's request carries no pod claims: its pod must use a \
                    bound ServiceAccount token (a projected serviceAccountToken volume), so \
                    that the node it runs on can be checked"
                .into(),
        );
    };
    let Some(p) = view.pod(agent_namespace, &pod) else {
        return Err(format!(
            "pod {agent_namespace}/{pod} is not known (yet); retry"
        ));
    };
    if p.metadata.uid.as_deref() != Some(uid.as_str()) {
        return Err(format!(
            "pod {agent_namespace}/{pod} is not the pod the token was issued to"
        ));
    }
    p.spec
        .as_ref()
        .and_then(|s| s.node_name.clone())
        .filter(|n| !n.is_empty())
        .ok_or_else(|| format!("pod {agent_namespace}/{pod} runs on no node"))
}

/// The node an object written by an agent is about, or why it cannot say: for a heartbeat
/// Lease its holder, which must equal its agent-node label and match its name; for a
/// RecordingReport its `spec.nodeName`, which its name and node label must carry.
fn object_node(req: &AdmissionRequest<DynamicObject>) -> Result<Option<String>, String> {
    let Some(obj) = req.object.as_ref() else {
        return Ok(None);
    };
    let name = obj.metadata.name.clone().unwrap_or_default();
    match (req.kind.group.as_str(), req.kind.kind.as_str()) {
        ("coordination.k8s.io", "Lease") => {
            let lease: Lease = serde_json::to_value(obj)
                .and_then(serde_json::from_value)
                .map_err(|e| format!("cannot read the Lease: {e}"))?;
            let holder = lease.spec.as_ref().and_then(|s| s.holder_identity.clone());
            let label = lease
                .metadata
                .labels
                .as_ref()
                .and_then(|l| l.get(crds::LABEL_AGENT_NODE))
                .cloned();
            let node = holder.or(label.clone()).unwrap_or_default();
            if label.is_some_and(|l| l != node) || name != crds::agent_lease_name(&node) {
                return Err(format!(
                    "Lease {name}: an agent's heartbeat is `{}` held by and labelled with its node",
                    crds::agent_lease_name(&node)
                ));
            }
            Ok(Some(node))
        }
        ("seccomp-operator.dev", "RecordingReport") => {
            let spec = obj.data.get("spec");
            let field = |f: &str| {
                spec.and_then(|s| s.get(f))
                    .and_then(|n| n.as_str())
                    .unwrap_or_default()
                    .to_owned()
            };
            let (node, recording) = (field("nodeName"), field("recording"));
            let label = obj
                .metadata
                .labels
                .as_ref()
                .and_then(|l| l.get(crds::LABEL_NODE));
            let expected = crds::report_name(&recording, &node);
            if name != expected || label != Some(&node) {
                return Err(format!(
                    "RecordingReport {name}: a node's report for recording {recording} is `{expected}`, labelled {}={node}",
                    crds::LABEL_NODE
                ));
            }
            Ok(Some(node))
        }
        _ => Ok(None),
    }
}

/// The webhook: `agent_users` are the node agents' ServiceAccount user names (installer and
/// recorder), `agent_namespace` where their pods run.
pub fn agent_writes(
    req: &AdmissionRequest<DynamicObject>,
    view: &dyn ClusterView,
    agent_users: &[String],
    agent_namespace: &str,
) -> AdmissionResponse {
    let resp = AdmissionResponse::from(req);
    let is_agent = req
        .user_info
        .username
        .as_ref()
        .is_some_and(|u| agent_users.contains(u));
    if !is_agent || !matches!(req.operation, Operation::Create | Operation::Update) {
        return resp;
    }
    let node = match object_node(req) {
        Ok(Some(n)) => n,
        Ok(None) => return resp,
        Err(e) => return resp.deny(format!("seccomp-operator: {e}")),
    };
    match requester_node(req, view, agent_namespace) {
        Ok(own) if own == node => resp,
        Ok(own) => resp.deny(format!(
            "seccomp-operator: the node agent of {own} may write only its own node's objects, not {node}'s"
        )),
        Err(e) => resp.deny(format!("seccomp-operator: {e}")),
    }
}
