//! Admission webhooks. The decisions are pure functions of an admission request and a view of
//! the cluster's profiles and bindings, so they are tested on AdmissionReview fixtures.
//!
//! - binding (mutating, pod CREATE): containers whose image matches a ProfileBinding get the
//!   bound profile as their container-level `seccompProfile`;
//! - gate (validating, pod CREATE/UPDATE and `pods/ephemeralcontainers`): a pod may reference
//!   an operator profile only when it exists and is Installed on every node;
//! - isolation (validating, pod CREATE/UPDATE and `pods/ephemeralcontainers`): a pod may reference only profiles of its own
//!   namespace and of the namespaces the operator shares;
//! - profile (validating, SeccompProfile CREATE/UPDATE): size limits and the cluster's profile
//!   policy (listeners, filter flags);
//! - agent writes (validating, SeccompNodeStatus and heartbeat Leases): a node agent writes
//!   only its own node's objects ([`agent_writes`]).

pub mod agent_writes;
pub mod tls;

use crate::index::{parse_localhost, references};
use crds::model::Policy;
use crds::{ProfileBinding, ProfilePhase, ProfileRecording, SeccompProfile};
use k8s_openapi::api::core::v1::{Container, Pod};
use kube::core::admission::{AdmissionRequest, AdmissionResponse, AdmissionReview, Operation};
use kube::core::DynamicObject;
use kube::ResourceExt;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// What the webhooks need to know about the cluster.
pub trait ClusterView: Send + Sync {
    /// A profile by namespace and name.
    fn profile(&self, namespace: &str, name: &str) -> Option<Arc<SeccompProfile>>;
    /// The bindings of a namespace.
    fn bindings(&self, namespace: &str) -> Vec<Arc<ProfileBinding>>;
    /// The recordings of a namespace.
    fn recordings(&self, namespace: &str) -> Vec<Arc<ProfileRecording>>;
    /// A node agent pod (in the operator's namespace) by name.
    fn pod(&self, namespace: &str, name: &str) -> Option<Arc<Pod>>;
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
fn pod_of(req: &AdmissionRequest<DynamicObject>) -> Option<Result<Pod, String>> {
    pod_in(req, req.object.as_ref()?)
}

/// The pod an UPDATE replaces (None for CREATE).
fn old_pod_of(req: &AdmissionRequest<DynamicObject>) -> Option<Result<Pod, String>> {
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

/// The operator profiles a pod references, with where. A reference that must be refused (it
/// escapes the seccomp directory or is a malformed operator path) goes to `problems` instead;
/// references to files outside the operator's directory are left out.
fn operator_references(
    pod: &Pod,
    problems: &mut Vec<String>,
) -> Vec<(crate::index::Reference, crate::index::ProfileId)> {
    references(pod)
        .into_iter()
        .filter_map(|r| match parse_localhost(&r.path) {
            Ok(Some(id)) => Some((r, id)),
            Ok(None) => None,
            Err(e) => {
                problems.push(format!("{} uses {}: {e}", r.place, r.path));
                None
            }
        })
        .collect()
}

/// The validating gate: every operator profile a new pod references must exist and be
/// Installed on every node.
pub fn gate(
    req: &AdmissionRequest<DynamicObject>,
    view: &dyn ClusterView,
    shared: &BTreeSet<String>,
) -> AdmissionResponse {
    let resp = AdmissionResponse::from(req);
    if !matches!(req.operation, Operation::Create | Operation::Update) {
        return resp;
    }
    let pod = match pod_of(req) {
        None => return resp,
        Some(Err(e)) => return resp.deny(e),
        Some(Ok(p)) => p,
    };
    // An UPDATE is held to the gate only for what it adds (an ephemeral container, a legacy
    // annotation): what the pod already used was checked when it came.
    let before: BTreeSet<crate::index::Reference> = match old_pod_of(req) {
        Some(Ok(old)) => references(&old).into_iter().collect(),
        _ => BTreeSet::new(),
    };
    let own = pod.namespace().unwrap_or_default();
    let mut problems = Vec::new();
    let added = operator_references(&pod, &mut problems)
        .into_iter()
        .filter(|(r, _)| !before.contains(r));
    for (r, (ns, name)) in added {
        // Another tenant's profile: whether it exists, and its state, are not this pod's
        // business (tenant isolation refuses the reference).
        if ns != own && !shared.contains(&ns) {
            problems.push(format!(
                "{} uses {}: not allowed for pods of namespace {own}",
                r.place, r.path
            ));
            continue;
        }
        let why = match view.profile(&ns, &name) {
            None => Some(format!("SeccompProfile {ns}/{name} does not exist")),
            Some(p) => {
                let status = p.status.clone().unwrap_or_default();
                let nodes = status
                    .installed_nodes
                    .clone()
                    .unwrap_or_else(|| "0/0".into());
                let ready_msg = status
                    .conditions
                    .iter()
                    .find(|c| c.type_ == "Ready")
                    .map(|c| c.message.clone())
                    .unwrap_or_default();
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

/// Tenant isolation: a pod may reference only `operator/<its namespace>/...` profiles and
/// those of `shared` namespaces.
pub fn isolation(
    req: &AdmissionRequest<DynamicObject>,
    shared: &BTreeSet<String>,
) -> AdmissionResponse {
    let resp = AdmissionResponse::from(req);
    if !matches!(req.operation, Operation::Create | Operation::Update) {
        return resp;
    }
    let pod = match pod_of(req) {
        None => return resp,
        Some(Err(e)) => return resp.deny(e),
        Some(Ok(p)) => p,
    };
    let own = pod.namespace().unwrap_or_default();
    let mut problems = Vec::new();
    for (r, (ns, _)) in operator_references(&pod, &mut problems) {
        if ns != own && !shared.contains(&ns) {
            problems.push(format!(
                "{} uses {}: a pod in namespace {own} may only use profiles of namespace {own}{}",
                r.place,
                r.path,
                if shared.is_empty() {
                    String::new()
                } else {
                    format!(
                        " or of the shared namespaces ({})",
                        shared.iter().cloned().collect::<Vec<_>>().join(", ")
                    )
                }
            ));
        }
    }
    if problems.is_empty() {
        resp
    } else {
        resp.deny(format!(
            "seccomp-operator tenant isolation: {}",
            problems.join("; ")
        ))
    }
}

/// Profile admission (validating, SeccompProfile CREATE/UPDATE): the sizes a schema cannot
/// express and the cluster's profile policy. Validity beyond that (unknown syscall names,
/// contradicting rules) is reported in the profile's status, not refused here. An UPDATE that
/// leaves the spec as it was (finalizers, labels) is always allowed, so a profile stored
/// before a limit or policy existed can still be released and deleted.
pub fn profile(req: &AdmissionRequest<DynamicObject>, policy: &Policy) -> AdmissionResponse {
    let resp = AdmissionResponse::from(req);
    if !matches!(req.operation, Operation::Create | Operation::Update)
        || req.kind.kind != "SeccompProfile"
        || req.sub_resource.is_some()
    {
        return resp;
    }
    let read = |o: Option<&DynamicObject>| -> Option<Result<SeccompProfile, String>> {
        let o = o?;
        Some(
            serde_json::to_value(o)
                .and_then(serde_json::from_value::<SeccompProfile>)
                .map_err(|e| {
                    crds::limits::truncate(
                        &format!("cannot read the SeccompProfile: {e}"),
                        crds::limits::MAX_MESSAGE_BYTES,
                    )
                }),
        )
    };
    let new = match read(req.object.as_ref()) {
        None => return resp,
        Some(Err(e)) => return resp.deny(e),
        Some(Ok(p)) => p,
    };
    if let Some(Ok(old)) = read(req.old_object.as_ref()) {
        if old.spec == new.spec {
            return resp;
        }
    }
    let doc = &new.spec.document;
    let mut problems = crds::model::validate::check_limits(doc, "spec.");
    problems.extend(policy.check(doc, "spec."));
    if problems.is_empty() {
        resp
    } else {
        resp.deny(format!(
            "seccomp-operator: {}",
            crds::limits::summarize(problems.iter().map(ToString::to_string))
        ))
    }
}

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
    let mut ops = Vec::new();
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
        }
    }
    let marks: Vec<(&str, String)> = [
        (crate::index::BOUND_BY, bound_by),
        (crds::ANNOTATION_RECORDED_BY, recorded_by),
    ]
    .into_iter()
    .filter_map(|(k, v)| Some((k, v?)))
    .collect();
    if marks.is_empty() {
        return resp;
    }
    if pod.metadata.annotations.is_none() {
        let all: serde_json::Map<String, serde_json::Value> = marks
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone().into()))
            .collect();
        ops.push(add_op("/metadata/annotations", all.into()));
    } else {
        for (k, v) in marks {
            ops.push(add_op(
                &format!(
                    "/metadata/annotations/{}",
                    k.replace('~', "~0").replace('/', "~1")
                ),
                v.into(),
            ));
        }
    }
    match serde_json::from_value::<json_patch::Patch>(serde_json::Value::Array(ops)) {
        Ok(patch) => resp.clone().with_patch(patch).unwrap_or(resp),
        Err(_) => resp,
    }
}

fn add_op(path: &str, value: serde_json::Value) -> serde_json::Value {
    serde_json::json!({"op": "add", "path": path, "value": value})
}

#[cfg(test)]
mod tests;
