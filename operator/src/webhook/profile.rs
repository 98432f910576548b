//! The validating profile webhook: what a schema cannot say (size limits over all rules) and
//! the cluster's profile policy (listeners, filter flags, the registries `oci://` bases may
//! come from).

use crds::SeccompProfile;
use kube::core::admission::{AdmissionRequest, AdmissionResponse, Operation};
use kube::core::DynamicObject;
use seccomp_profile::Policy;

/// Profile admission (validating, SeccompProfile CREATE/UPDATE): the sizes a schema cannot
/// express and the cluster's profile policy. Validity beyond that (unknown syscall names,
/// contradicting rules) is reported in the profile's status, not refused here. An UPDATE that
/// leaves the spec as it was (finalizers, labels) is always allowed, so a profile stored
/// before a limit or policy existed can still be released and deleted.
pub fn profile(
    req: &AdmissionRequest<DynamicObject>,
    policy: &Policy,
    registries: &crate::profile::artifacts::RegistryConfig,
) -> AdmissionResponse {
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
                    seccomp_profile::limits::truncate(
                        &format!("cannot read the SeccompProfile: {e}"),
                        seccomp_profile::limits::MAX_MESSAGE_BYTES,
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
    let mut problems = seccomp_profile::validate::check_limits(doc, "spec.");
    problems.extend(policy.check(doc, "spec."));
    // A registry the admin did not list: refused here as well as in the status, so that the
    // author learns it at once.
    if let Some(base) = new
        .spec
        .base_profile_name
        .as_deref()
        .filter(|b| b.starts_with(seccomp_profile::OCI_PREFIX))
    {
        let checked =
            seccomp_profile::OciReference::parse(base).and_then(|r| registries.check_allowed(&r));
        if let Err(why) = checked {
            problems.push(seccomp_profile::FieldError::new(
                "spec.baseProfileName",
                why,
            ));
        }
    }
    if problems.is_empty() {
        resp
    } else {
        resp.deny(format!(
            "seccomp-operator: {}",
            seccomp_profile::limits::summarize(problems.iter().map(ToString::to_string))
        ))
    }
}
