//! The validating unconfined-pod policy webhook: in a namespace labelled
//! `seccomp-operator.dev/profile-policy=warn` a pod that would run a container unconfined (no
//! seccomp profile, `Unconfined`, or a Localhost file that is not an operator profile) or
//! with privilege escalation allowed is admitted with a warning per container (kubectl prints
//! them); with `enforce` it is refused, the message naming each container and what to set.
//! `RuntimeDefault` and operator profiles with `allowPrivilegeEscalation: false` satisfy it.
//! The operator's namespace and `kube-system` are never affected.
//!
//! Every container counts: init containers, native sidecars, containers, and ephemeral
//! containers added later. The decision is what the kubelet applies ([`crds::confinement`]):
//! a legacy seccomp annotation has no effect since Kubernetes 1.27, so a container whose only
//! setting is one is unset, and the message says the annotation does nothing.
//!
//! A container that sets nothing runs under `RuntimeDefault` on a kubelet with
//! `seccompDefault: true`. The policy takes that into account only where the node is known
//! and its agent reported the setting (`SeccompNodeStatus` `status.kubelet.seccompDefault`):
//! a pod already bound to a node, such as one that gets an ephemeral container. A new pod is
//! seen at CREATE, before it is scheduled: it may land on a node without the default, so an
//! unset container is treated as unconfined (fail closed), and the message asks the tenant to
//! set `RuntimeDefault` explicitly.

use super::{checked_pod, ClusterView};
use crds::confinement::{containers, mark_complain, NodeDefault};
use kube::core::admission::{AdmissionRequest, AdmissionResponse, Operation};
use kube::core::DynamicObject;
use kube::ResourceExt;

pub use crds::LABEL_POLICY;
/// Warnings sent with one answer at most (kubectl prints each); the rest are counted.
const MAX_WARNINGS: usize = 20;

/// What the namespace's label asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Admit, with warnings.
    Warn,
    /// Refuse.
    Enforce,
}

impl Mode {
    /// The webhook's name in metrics and logs.
    pub fn webhook(self) -> &'static str {
        match self {
            Mode::Warn => "policy-warn",
            Mode::Enforce => "policy-enforce",
        }
    }
}

/// What the policy objects to in a pod on a node that does `node` with unset containers, one
/// sentence per container (only the ephemeral containers for the `ephemeralcontainers`
/// subresource: the others were checked when the pod was created).
pub fn violations(
    pod: &k8s_openapi::api::core::v1::Pod,
    ephemeral_only: bool,
    node: NodeDefault,
    view: &dyn ClusterView,
) -> Vec<String> {
    let mut all = containers(pod, node);
    // A complain profile refuses nothing: for the policy its containers are not confined
    // (a tenant cannot pass the policy by switching its own profile to Complain).
    mark_complain(&mut all, |(ns, name)| {
        view.profile(ns, name)
            .is_some_and(|p| p.spec.mode == seccomp_profile::Mode::Complain)
    });
    all.into_iter()
        .filter(|c| !ephemeral_only || c.kind == crds::confinement::EPHEMERAL_CONTAINER)
        .filter_map(|c| c.violation())
        .collect()
}

/// What the node a pod is bound to does with unset containers; `Unknown` for a pod not
/// scheduled yet.
fn node_default(pod: &k8s_openapi::api::core::v1::Pod, view: &dyn ClusterView) -> NodeDefault {
    pod.spec
        .as_ref()
        .and_then(|s| s.node_name.as_deref())
        .filter(|n| !n.is_empty())
        .map_or(NodeDefault::Unknown, |n| view.node_default(n))
}

/// The answer for a pod CREATE (or an ephemeral container added) in a namespace under
/// `mode`; `kube-system` and the operator's own namespace are always allowed. `view` says what
/// a bound pod's node does with unset containers.
pub fn pod_policy(
    req: &AdmissionRequest<DynamicObject>,
    mode: Mode,
    operator_namespace: &str,
    view: &dyn ClusterView,
) -> AdmissionResponse {
    let resp = AdmissionResponse::from(req);
    let subresource = req.sub_resource.as_deref() == Some("ephemeralcontainers");
    // A pod's security contexts cannot change after creation; new ephemeral containers can.
    if req.operation == Operation::Update && !subresource {
        return resp;
    }
    let pod = match checked_pod(req) {
        Ok(p) => p,
        Err(answer) => return *answer,
    };
    let ns = pod.namespace().unwrap_or_default();
    if ns == "kube-system" || ns == operator_namespace {
        return resp;
    }
    let found = violations(&pod, subresource, node_default(&pod, view), view);
    if found.is_empty() {
        return resp;
    }
    match mode {
        Mode::Enforce => resp.deny(seccomp_profile::limits::truncate(
            &format!(
                "seccomp-operator profile policy (namespace {ns} is labelled {LABEL_POLICY}=enforce): {}",
                found.join("; ")
            ),
            seccomp_profile::limits::MAX_MESSAGE_BYTES,
        )),
        Mode::Warn => {
            let mut warnings: Vec<String> = found
                .iter()
                .take(MAX_WARNINGS)
                .map(|v| seccomp_profile::limits::truncate(&format!("seccomp-operator profile policy: {v}"), 512))
                .collect();
            if found.len() > MAX_WARNINGS {
                warnings.push(format!("... and {} more containers", found.len() - MAX_WARNINGS));
            }
            let mut resp = resp;
            resp.warnings = Some(warnings);
            resp
        }
    }
}
