//! ProfileBinding status: the number of live pods each binding changed (pods the binding
//! webhook annotated), and whether the bound profile exists.

use crate::index::PodIndex;
use crds::{ProfileBinding, ProfileBindingStatus, SeccompProfile};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::api::{Patch, PatchParams};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Api, Client, ResourceExt};
use std::sync::{Arc, RwLock};
use std::time::Duration;

/// Keep every binding's status current, checking every `period`.
pub async fn run(
    client: Client,
    bindings: Store<ProfileBinding>,
    profiles: Store<SeccompProfile>,
    index: Arc<RwLock<PodIndex>>,
    period: Duration,
) {
    loop {
        for b in bindings.state() {
            let ns = b.namespace().unwrap_or_default();
            let key = format!("{ns}/{}", b.name_any());
            let bound = index.read().map(|i| i.bound_count(&key)).unwrap_or(0) as u32;
            let exists = profiles
                .get(&ObjectRef::new(&b.spec.profile_ref.name).within(&ns))
                .is_some();
            let old = b.status.clone().unwrap_or_default();
            let (status, reason, message) = if exists {
                (
                    "True",
                    "ProfileFound",
                    format!("binds SeccompProfile {ns}/{}", b.spec.profile_ref.name),
                )
            } else {
                ("False", "ProfileNotFound", format!("SeccompProfile {ns}/{} does not exist; pods it binds are rejected by the install gate", b.spec.profile_ref.name))
            };
            let prev = old.conditions.iter().find(|c| c.type_ == "Ready");
            if old.bound_pods == bound
                && prev.is_some_and(|p| p.status == status && p.message == message)
            {
                continue;
            }
            let new = ProfileBindingStatus {
                bound_pods: bound,
                conditions: vec![Condition {
                    type_: "Ready".into(),
                    status: status.into(),
                    reason: reason.into(),
                    message,
                    observed_generation: b.metadata.generation,
                    last_transition_time: match prev {
                        Some(p) if p.status == status => p.last_transition_time.clone(),
                        _ => Time(k8s_openapi::jiff::Timestamp::now()),
                    },
                }],
            };
            let patch = serde_json::json!({"apiVersion": "seccomp-operator.dev/v1alpha1", "kind": "ProfileBinding", "status": new});
            let api: Api<ProfileBinding> = Api::namespaced(client.clone(), &ns);
            if let Err(e) = api
                .patch_status(
                    &b.name_any(),
                    &PatchParams::apply(crate::profile_controller::MANAGER).force(),
                    &Patch::Apply(&patch),
                )
                .await
            {
                tracing::warn!(binding = %key, error = %e, "status update failed");
            }
        }
        tokio::time::sleep(period).await;
    }
}
