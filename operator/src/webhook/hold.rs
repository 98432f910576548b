//! Writing the install gate's hold ([`crate::profile::hold`]) on the profiles a pod being
//! admitted uses, within the API server's webhook timeout.

use crate::profile::hold::held_recently;
use crate::webhook::ClusterView;
use crds::{SeccompProfile, ANNOTATION_ADMITTED_AT, FINALIZER_IN_USE};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Patch, PatchParams};
use kube::{Api, Client, ResourceExt};

/// Attempts when the profile changes between read and write.
const ATTEMPTS: usize = 3;

/// Hold every profile in `ids` for a pod being admitted. `Err` with the reason to refuse the
/// pod when a profile is gone or being deleted, or the hold cannot be written.
pub async fn hold(
    client: &Client,
    view: &dyn ClusterView,
    ids: impl IntoIterator<Item = (String, String)>,
) -> Result<(), String> {
    let now = Timestamp::now();
    for (ns, name) in ids {
        if view
            .profile(&ns, &name)
            .is_some_and(|p| held_recently(&p, now))
        {
            continue;
        }
        hold_one(client, &ns, &name, now).await?;
    }
    Ok(())
}

async fn hold_one(client: &Client, ns: &str, name: &str, now: Timestamp) -> Result<(), String> {
    let api: Api<SeccompProfile> = Api::namespaced(client.clone(), ns);
    let mut last = String::new();
    for _ in 0..ATTEMPTS {
        let p = match api.get_opt(name).await {
            Ok(Some(p)) => p,
            Ok(None) => return Err(format!("SeccompProfile {ns}/{name} does not exist")),
            Err(e) => {
                last = e.to_string();
                continue;
            }
        };
        if p.metadata.deletion_timestamp.is_some() {
            return Err(format!("SeccompProfile {ns}/{name} is being deleted"));
        }
        let mut finalizers: Vec<String> = p.finalizers().to_vec();
        if !finalizers.iter().any(|f| f == FINALIZER_IN_USE) {
            finalizers.push(FINALIZER_IN_USE.to_owned());
        }
        // Conditional on the version read: a delete or another change in between is seen on
        // the next attempt.
        let patch = serde_json::json!({
            "metadata": {
                "resourceVersion": p.resource_version(),
                "finalizers": finalizers,
                "annotations": {ANNOTATION_ADMITTED_AT: now.to_string()},
            }
        });
        match api
            .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            Ok(_) => return Ok(()),
            Err(kube::Error::Api(e)) if e.code == 404 => {
                return Err(format!("SeccompProfile {ns}/{name} does not exist"))
            }
            Err(e) => last = e.to_string(),
        }
    }
    Err(format!(
        "could not hold SeccompProfile {ns}/{name} for the pod ({last}); retry"
    ))
}

/// [`hold`] within the API server's 5 s webhook timeout, with room to
/// answer.
pub async fn hold_in_time(
    client: &kube::Client,
    view: &dyn ClusterView,
    ids: impl IntoIterator<Item = (String, String)>,
) -> Result<(), String> {
    tokio::time::timeout(std::time::Duration::from_secs(3), hold(client, view, ids))
        .await
        .unwrap_or_else(|_| Err("holding the pod's profiles took too long; retry".into()))
}
