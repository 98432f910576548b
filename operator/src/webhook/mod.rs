//! Admission webhooks. The decisions are pure functions of an admission request and a view of
//! the cluster's profiles and bindings, so they are tested on AdmissionReview fixtures.
//!
//! - binding (mutating, pod CREATE): containers whose image matches a ProfileBinding get the
//!   bound profile as their container-level `seccompProfile`;
//! - gate (mutating, pod CREATE, before Kubernetes 1.36 only): a pod that references an
//!   operator profile gets the scheduling gate and waits for it unscheduled;
//! - gate (validating, pod CREATE and `pods/ephemeralcontainers`): a pod that does not wait at
//!   the scheduling gate may reference an operator profile only when it exists and is
//!   Installed on every node;
//! - isolation (validating, pod CREATE/UPDATE and `pods/ephemeralcontainers`): a pod may
//!   reference only profiles of its own namespace and of the namespaces the operator shares;
//! - policy (validating, pod CREATE and `pods/ephemeralcontainers`, in namespaces labelled
//!   `seccomp-operator.dev/profile-policy`): warn about or refuse unconfined containers;
//! - profile (validating, SeccompProfile CREATE/UPDATE): size limits and the cluster's profile
//!   policy (listeners, filter flags);
//! - agent writes (validating, heartbeat Leases and RecordingReports): a node agent or
//!   recorder writes only its own node's objects ([`agent_writes`]; node reports are checked
//!   by the API server's policy `seccomp-operator-node-reports`).
//!
//! Every container counts alike: init containers, native sidecars (init containers with
//! `restartPolicy: Always`), containers, and ephemeral containers where a pod can get them.
//! The legacy seccomp annotations have no effect since Kubernetes 1.27
//! ([`crds::confinement`]): the gate and the policy decide from the fields alone; isolation
//! alone still refuses an annotation naming another namespace's profile
//! ([`isolation`](mod@isolation)).

pub mod agent_writes;
pub mod bind;
pub mod certificates;
pub mod gate;
pub mod hold;
pub mod isolation;
pub mod policy;
pub mod profile;
pub mod server;

pub use bind::bind;
pub use gate::{add_gate, gate, gated_profiles};
pub use isolation::isolation;
pub use profile::profile;

use crate::pods::references::{parse_localhost, references};
use crds::{ProfileBinding, ProfileRecording, SeccompProfile};
use k8s_openapi::api::core::v1::Pod;
use kube::core::admission::{AdmissionRequest, AdmissionResponse, AdmissionReview, Operation};
use kube::core::DynamicObject;
use kube::ResourceExt;
use std::sync::Arc;

/// The operator's MutatingWebhookConfigurations in `config/` (the CA bundle is injected into
/// those that exist: `seccomp-operator-profile-gate` only before Kubernetes 1.36). RBAC's
/// `resourceNames` and `config/` are held to this list by `operator/tests/manifests.rs`.
pub const MUTATING_CONFIGURATIONS: &[&str] =
    &["seccomp-operator-binding", "seccomp-operator-profile-gate"];

/// The operator's ValidatingWebhookConfigurations in `config/` (see [`MUTATING_CONFIGURATIONS`]).
pub const VALIDATING_CONFIGURATIONS: &[&str] = &[
    "seccomp-operator-gate",
    "seccomp-operator-isolation",
    "seccomp-operator-pod-policy",
    "seccomp-operator-profiles",
    "seccomp-operator-agents",
];

/// What the webhooks need to know about the cluster.
pub trait ClusterView: Send + Sync {
    /// A profile by namespace and name, with the status the leader computed for it if that is
    /// newer than the stored one ([`crate::profile::writes`]).
    fn profile(&self, namespace: &str, name: &str) -> Option<Arc<SeccompProfile>>;
    /// `p` (read from the API server) with the leader's newer status, if any.
    fn fresher(&self, p: Arc<SeccompProfile>) -> Arc<SeccompProfile> {
        p
    }
    /// The bindings of a namespace.
    fn bindings(&self, namespace: &str) -> Vec<Arc<ProfileBinding>>;
    /// The recordings of a namespace.
    fn recordings(&self, namespace: &str) -> Vec<Arc<ProfileRecording>>;
    /// A node agent pod (in the operator's namespace) by name.
    fn pod(&self, namespace: &str, name: &str) -> Option<Arc<Pod>>;
    /// What a node's kubelet does with a container that sets no seccomp profile, as the node's
    /// agent reported it.
    fn node_default(&self, node: &str) -> crds::confinement::NodeDefault;
}

/// The operator's caches, as the webhooks see them.
pub struct Caches {
    /// SeccompProfiles.
    pub profiles: kube::runtime::reflector::Store<SeccompProfile>,
    /// ProfileBindings.
    pub bindings: kube::runtime::reflector::Store<ProfileBinding>,
    /// ProfileRecordings.
    pub recordings: kube::runtime::reflector::Store<ProfileRecording>,
    /// The node agents' pods.
    pub agent_pods: kube::runtime::reflector::Store<Pod>,
    /// What each node's agent reports (kept by the profile controller's node report watch).
    pub node_reports: Arc<std::sync::RwLock<crate::nodes::reports::NodeReports>>,
    /// The statuses the leader computed and has not written yet.
    pub writes: Arc<crate::profile::writes::StatusWrites>,
}

fn in_namespace<K>(store: &kube::runtime::reflector::Store<K>, ns: &str) -> Vec<Arc<K>>
where
    K: kube::Resource + Clone,
    K::DynamicType: Eq + std::hash::Hash + Clone,
{
    store
        .state()
        .into_iter()
        .filter(|o| o.namespace().as_deref() == Some(ns))
        .collect()
}

impl ClusterView for Caches {
    fn profile(&self, namespace: &str, name: &str) -> Option<Arc<SeccompProfile>> {
        self.profiles
            .get(&kube::runtime::reflector::ObjectRef::new(name).within(namespace))
            .map(|p| self.writes.fresher(p))
    }
    fn fresher(&self, p: Arc<SeccompProfile>) -> Arc<SeccompProfile> {
        self.writes.fresher(p)
    }
    fn bindings(&self, namespace: &str) -> Vec<Arc<ProfileBinding>> {
        in_namespace(&self.bindings, namespace)
    }
    fn recordings(&self, namespace: &str) -> Vec<Arc<ProfileRecording>> {
        in_namespace(&self.recordings, namespace)
    }
    fn pod(&self, namespace: &str, name: &str) -> Option<Arc<Pod>> {
        self.agent_pods
            .get(&kube::runtime::reflector::ObjectRef::new(name).within(namespace))
    }
    fn node_default(&self, node: &str) -> crds::confinement::NodeDefault {
        let reports = self.node_reports.read().unwrap_or_else(|p| p.into_inner());
        crate::nodes::reports::node_default(&reports, node)
    }
}

/// Parse an AdmissionReview body. `Err` carries a message for a 400 answer (there is no
/// request UID to answer to).
pub fn parse_review(body: &[u8]) -> Result<AdmissionRequest<DynamicObject>, String> {
    let review: AdmissionReview<DynamicObject> =
        serde_json::from_slice(body).map_err(|e| format!("not an AdmissionReview: {e}"))?;
    review
        .try_into()
        .map_err(|_| "AdmissionReview without a request".to_owned())
}

/// The pod in a request, if the request is about a pod (the pod itself, or its
/// `ephemeralcontainers` subresource). `Err` when it is a pod that cannot be read (the answer
/// is a denial naming why).
pub(crate) fn pod_of(req: &AdmissionRequest<DynamicObject>) -> Option<Result<Pod, String>> {
    pod_in(req, req.object.as_ref()?)
}

/// The pod an UPDATE replaces (None for CREATE).
/// The pod a validating webhook checks: the object of a pod CREATE or UPDATE (or of the
/// ephemeral-containers subresource). `Err` is the answer to give at once: allowed for other
/// operations and kinds, denied for a pod that cannot be read.
pub(crate) fn checked_pod(
    req: &AdmissionRequest<DynamicObject>,
) -> Result<Pod, Box<AdmissionResponse>> {
    let resp = AdmissionResponse::from(req);
    if !matches!(req.operation, Operation::Create | Operation::Update) {
        return Err(Box::new(resp));
    }
    match pod_of(req) {
        None => Err(Box::new(resp)),
        Some(Err(e)) => Err(Box::new(resp.deny(e))),
        Some(Ok(p)) => Ok(p),
    }
}

pub(crate) fn old_pod_of(req: &AdmissionRequest<DynamicObject>) -> Option<Result<Pod, String>> {
    pod_in(req, req.old_object.as_ref()?)
}

fn pod_in(
    req: &AdmissionRequest<DynamicObject>,
    obj: &DynamicObject,
) -> Option<Result<Pod, String>> {
    if !req.kind.group.is_empty() {
        return None;
    }
    let mut value = match serde_json::to_value(obj) {
        Ok(v) => v,
        Err(e) => return Some(Err(format!("cannot read the pod: {e}"))),
    };
    match (req.kind.kind.as_str(), req.sub_resource.as_deref()) {
        // The pod, or (Kubernetes 1.22 and later) the pod sent for its ephemeral containers.
        ("Pod", None | Some("ephemeralcontainers")) => {}
        // Kubernetes 1.16 to 1.21 send an `EphemeralContainers` object: its containers are
        // what the pod gets.
        ("EphemeralContainers", Some("ephemeralcontainers")) => {
            let meta = value.get("metadata").cloned().unwrap_or_default();
            let list = value
                .get("ephemeralContainers")
                .cloned()
                .unwrap_or_default();
            value = serde_json::json!({
                "metadata": meta,
                "spec": {"containers": [], "ephemeralContainers": list},
            });
        }
        _ => return None,
    }
    if let Some(m) = value.as_object_mut() {
        m.insert("apiVersion".into(), "v1".into());
        m.insert("kind".into(), "Pod".into());
    }
    Some(
        serde_json::from_value::<Pod>(value)
            .map_err(|e| format!("cannot read the pod: {e}"))
            .map(|mut p| {
                // CREATE requests may come before the namespace is defaulted into the object.
                if p.metadata.namespace.is_none() {
                    p.metadata.namespace = req.namespace.clone();
                }
                p
            }),
    )
}

/// Appended to a refusal that concerns a legacy annotation.
pub(crate) const INERT_ANNOTATION: &str =
    " (the annotation has no effect since Kubernetes 1.27: remove it)";

/// Which of a pod's references a webhook looks at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Annotations {
    /// Only what the kubelet applies: the fields.
    Ignore,
    /// The legacy annotations too, although they have no effect since Kubernetes 1.27.
    Include,
}

/// The operator profiles a pod references, with where (the legacy annotations as `annotations`
/// says). A reference that must be refused (it escapes the seccomp directory or is a
/// malformed operator path) goes to `problems` instead; references to files outside the
/// operator's directory are left out.
pub(crate) fn operator_references(
    pod: &Pod,
    annotations: Annotations,
    problems: &mut Vec<String>,
) -> Vec<(
    crate::pods::references::Reference,
    crate::pods::references::ProfileId,
)> {
    references(pod)
        .into_iter()
        .filter(|r| r.in_effect || annotations == Annotations::Include)
        .filter_map(|r| match parse_localhost(&r.path) {
            Ok(Some(id)) => Some((r, id)),
            Ok(None) => None,
            Err(e) => {
                let inert = if r.in_effect { "" } else { INERT_ANNOTATION };
                problems.push(format!("{} uses {}: {e}{inert}", r.place, r.path));
                None
            }
        })
        .collect()
}

#[cfg(test)]
mod tests;
