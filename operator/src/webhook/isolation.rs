//! The validating isolation webhook: a pod may reference only profiles of its own namespace
//! and of the namespaces the operator shares.

use super::{checked_pod, operator_references};
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
