//! The validating isolation webhook: a pod may reference only profiles of its own namespace
//! and of the namespaces the operator shares.
//!
//! Legacy annotations (`seccomp.security.alpha.kubernetes.io/pod`,
//! `container.seccomp.security.alpha.kubernetes.io/<name>`) are held to the same rule as the
//! fields, although the kubelet ignores them since Kubernetes 1.27: an annotation naming
//! another namespace's operator profile (or a path that escapes the seccomp directory or is a
//! malformed operator path) is refused, with a message saying it has no effect. This is a
//! deliberate, defensive choice:
//!
//! - it is harmless: no legitimate pod names another tenant's profile, and a pod refused for
//!   an inert annotation is admitted once the annotation is removed;
//! - the annotations still travel with the pod to readers other than the kubelet (the
//!   container runtime receives the pod's annotations; policy engines and audit tools read
//!   them), so the tenant boundary should not depend on every such reader ignoring them;
//! - it keeps the rule simple to state: a pod never names another tenant's profile, wherever.
//!
//! Everything else ignores them: the install gate does not wait for a profile named only in
//! an annotation, and the in-use index does not hold its deletion.

use super::{checked_pod, operator_references, Annotations, INERT_ANNOTATION};
use kube::core::admission::{AdmissionRequest, AdmissionResponse};
use kube::core::DynamicObject;
use kube::ResourceExt;
use std::collections::BTreeSet;

/// Tenant isolation: a pod may reference only `operator/<its namespace>/...` profiles and
/// those of `shared` namespaces.
pub fn isolation(
    req: &AdmissionRequest<DynamicObject>,
    shared: &BTreeSet<String>,
) -> AdmissionResponse {
    let pod = match checked_pod(req) {
        Ok(p) => p,
        Err(answer) => return *answer,
    };
    let resp = AdmissionResponse::from(req);
    let own = pod.namespace().unwrap_or_default();
    let mut problems = Vec::new();
    for (r, (ns, _)) in operator_references(&pod, Annotations::Include, &mut problems) {
        if ns != own && !shared.contains(&ns) {
            problems.push(format!(
                "{} uses {}: a pod in namespace {own} may only use profiles of namespace {own}{}{}",
                r.place,
                r.path,
                if shared.is_empty() {
                    String::new()
                } else {
                    format!(
                        " or of the shared namespaces ({})",
                        shared.iter().cloned().collect::<Vec<_>>().join(", ")
                    )
                },
                if r.in_effect { "" } else { INERT_ANNOTATION }
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
