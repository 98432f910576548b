//! Server-side apply: how every component writes the objects and statuses it owns, with the
//! resource's own kind and version, under the field manager of the binary that writes.

use kube::api::{Patch, PatchParams};
use kube::{Api, Resource};
use serde::de::DeserializeOwned;
use serde::Serialize;

/// The operator's field manager.
pub const OPERATOR: &str = "seccomp-operator";
/// The node agent's field manager (its SeccompNodeStatus, heartbeat Lease, profile holds).
pub const NODE_AGENT: &str = "seccomp-node-agent";
/// The node recorder's field manager (its RecordingReports).
pub const NODE_RECORDER: &str = "seccomp-node-recorder";
/// The scale benchmark's simulated nodes.
pub const SIM_NODES: &str = "seccomp-sim-nodes";

/// The apply body of an object of kind `K` with the given fields (`metadata`, `spec`, …).
pub fn body<K: Resource<DynamicType = ()>>(fields: serde_json::Value) -> serde_json::Value {
    let mut v = serde_json::json!({"apiVersion": K::api_version(&()), "kind": K::kind(&())});
    if let (Some(out), serde_json::Value::Object(fields)) = (v.as_object_mut(), fields) {
        out.extend(fields);
    }
    v
}

/// Apply `status` as the status of `name`, owned by `manager` (conflicts forced: the
/// manager owns these fields).
pub async fn apply_status<K, S>(
    api: &Api<K>,
    manager: &str,
    name: &str,
    status: &S,
) -> kube::Result<K>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + std::fmt::Debug,
    S: Serialize,
{
    let status = serde_json::to_value(status).map_err(kube::Error::SerdeError)?;
    let patch = body::<K>(serde_json::json!({ "status": status }));
    api.patch_status(
        name,
        &PatchParams::apply(manager).force(),
        &Patch::Apply(&patch),
    )
    .await
}

/// Apply `obj` (everything but its status) owned by `manager` (conflicts forced).
pub async fn apply_object<K>(api: &Api<K>, manager: &str, obj: &K) -> kube::Result<K>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Serialize + std::fmt::Debug,
{
    let name = obj.meta().name.clone().unwrap_or_default();
    let mut v = serde_json::to_value(obj).map_err(kube::Error::SerdeError)?;
    if let Some(m) = v.as_object_mut() {
        m.remove("status");
    }
    let patch = body::<K>(v);
    api.patch(
        &name,
        &PatchParams::apply(manager).force(),
        &Patch::Apply(&patch),
    )
    .await
}

/// An owner reference to `owner`, for objects garbage-collected with it: the controller
/// reference when `controller`, and never blocking the owner's deletion. `None` for an object
/// without a UID (not read from the API server).
pub fn owner_reference<K: Resource<DynamicType = ()>>(
    owner: &K,
    controller: bool,
) -> Option<k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference> {
    let mut r = owner.controller_owner_ref(&())?;
    r.controller = Some(controller);
    r.block_owner_deletion = Some(false);
    Some(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_body_carries_the_resources_own_kind_and_version() {
        let v = body::<crate::ProfileBinding>(serde_json::json!({"status": {"x": 1}}));
        assert_eq!(v["apiVersion"], "seccomp-operator.dev/v1alpha1");
        assert_eq!(v["kind"], "ProfileBinding");
        assert_eq!(v["status"]["x"], 1);
        let v = body::<k8s_openapi::api::core::v1::ConfigMap>(serde_json::json!({}));
        assert_eq!(
            (v["apiVersion"].as_str(), v["kind"].as_str()),
            (Some("v1"), Some("ConfigMap"))
        );
    }

    #[test]
    fn owner_references_name_the_owner_and_never_block_its_deletion() {
        let mut rec: crate::ProfileRecording = serde_json::from_value(serde_json::json!({
            "apiVersion": "seccomp-operator.dev/v1alpha1", "kind": "ProfileRecording",
            "metadata": {"name": "rec", "namespace": "shop"}, "spec": {"podSelector": {}}}))
        .unwrap();
        assert!(
            owner_reference(&rec, true).is_none(),
            "no UID, no reference"
        );
        rec.metadata.uid = Some("u1".into());
        let r = owner_reference(&rec, false).unwrap();
        assert_eq!(
            (
                r.api_version.as_str(),
                r.kind.as_str(),
                r.name.as_str(),
                r.uid.as_str()
            ),
            (
                "seccomp-operator.dev/v1alpha1",
                "ProfileRecording",
                "rec",
                "u1"
            )
        );
        assert_eq!(
            (r.controller, r.block_owner_deletion),
            (Some(false), Some(false))
        );
        assert_eq!(owner_reference(&rec, true).unwrap().controller, Some(true));
    }
}
