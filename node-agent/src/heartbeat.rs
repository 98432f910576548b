//! The node agent's heartbeat: a `coordination.k8s.io` Lease per node
//! (`seccomp-agent-<node>` in the operator's namespace), renewed every
//! [`crds::AGENT_RENEW_SECONDS`] once the agent has finished its first full sync.
//!
//! A Lease rather than a time in `SeccompNodeStatus`: renewals do not wake the operator's
//! profile controller (which watches node reports), so a heartbeat costs one small write per
//! node and period and nothing else. The Lease is owned by the Node, so it goes with it.

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::api::core::v1::Node;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, OwnerReference};
use kube::api::{ObjectMeta, Patch, PatchParams};
use kube::{Api, Client};
use std::time::Duration;
use tokio::sync::watch;

/// Field manager of the agent's writes.
const MANAGER: &str = crds::apply::NODE_AGENT;

/// Why an owner reference to the node could not be made.
#[derive(Debug, thiserror::Error)]
pub enum OwnerError {
    /// Reading the Node failed.
    #[error("reading Node {name}")]
    Get {
        /// The node.
        name: String,
        /// The API error.
        #[source]
        source: kube::Error,
    },
    /// The Node has no uid (never from a real API server).
    #[error("Node {0} has no uid")]
    NoUid(String),
}

/// A non-controller owner reference to the node `name`. Fails when the Node cannot be read:
/// objects of the node must never be left without an owner (they would outlive the node).
pub async fn node_owner(client: &Client, name: &str) -> Result<OwnerReference, OwnerError> {
    let node = Api::<Node>::all(client.clone())
        .get(name)
        .await
        .map_err(|source| OwnerError::Get {
            name: name.to_owned(),
            source,
        })?;
    crds::apply::owner_reference(&node, false).ok_or_else(|| OwnerError::NoUid(name.to_owned()))
}

/// The Lease as the agent applies it.
pub fn lease(
    namespace: &str,
    node: &str,
    owner: OwnerReference,
    now: k8s_openapi::jiff::Timestamp,
) -> Lease {
    Lease {
        metadata: ObjectMeta {
            name: Some(crds::agent_lease_name(node)),
            namespace: Some(namespace.to_owned()),
            labels: Some([(crds::LABEL_AGENT_NODE.to_owned(), label_value(node))].into()),
            owner_references: Some(vec![owner]),
            ..Default::default()
        },
        spec: Some(LeaseSpec {
            holder_identity: Some(node.to_owned()),
            lease_duration_seconds: Some(crds::AGENT_LEASE_SECONDS),
            renew_time: Some(MicroTime(now)),
            ..Default::default()
        }),
    }
}

/// A node name as a label value (at most 63 characters; longer names are cut, the holder
/// identity keeps the full name).
fn label_value(node: &str) -> String {
    let cut: String = node.chars().take(63).collect();
    cut.trim_end_matches(|c: char| !c.is_ascii_alphanumeric())
        .to_owned()
}

/// Renew the Lease every period while `ready` is true, until `shutdown`. Errors are logged and
/// retried at the next period: the operator then sees the heartbeat age and stops counting
/// the node after [`crds::AGENT_LEASE_SECONDS`].
pub async fn run(
    client: Client,
    namespace: String,
    node: String,
    mut ready: watch::Receiver<bool>,
    mut shutdown: watch::Receiver<bool>,
) {
    let api: Api<Lease> = Api::namespaced(client.clone(), &namespace);
    let name = crds::agent_lease_name(&node);
    let mut owner: Option<OwnerReference> = None;
    let period = Duration::from_secs(crds::AGENT_RENEW_SECONDS);
    let mut failing = false;
    loop {
        if !*ready.borrow() {
            tokio::select! {
                r = ready.changed() => if r.is_err() { return },
                _ = shutdown.changed() => return,
            }
            continue;
        }
        if owner.is_none() {
            match node_owner(&client, &node).await {
                Ok(o) => owner = Some(o),
                Err(e) => {
                    tracing::warn!(error = %crate::error_chain(&e), "reading the Node for the heartbeat Lease failed; retrying")
                }
            }
        }
        if let Some(o) = &owner {
            let obj = lease(
                &namespace,
                &node,
                o.clone(),
                k8s_openapi::jiff::Timestamp::now(),
            );
            match api
                .patch(
                    &name,
                    &PatchParams::apply(MANAGER).force(),
                    &Patch::Apply(&obj),
                )
                .await
            {
                Ok(_) if failing => {
                    tracing::info!("heartbeat Lease renewed again");
                    failing = false;
                }
                Ok(_) => {}
                Err(e) => {
                    if !failing {
                        tracing::warn!(error = %e, lease = %name, "renewing the heartbeat Lease failed; retrying");
                    }
                    failing = true;
                }
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(period) => {},
            _ = shutdown.changed() => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lease_names_the_node_and_is_owned_by_it() {
        let owner = OwnerReference {
            api_version: "v1".into(),
            kind: "Node".into(),
            name: "n1".into(),
            uid: "u".into(),
            ..Default::default()
        };
        let now = k8s_openapi::jiff::Timestamp::from_second(1000).unwrap();
        let l = lease("seccomp-operator", "n1", owner.clone(), now);
        assert_eq!(l.metadata.name.as_deref(), Some("seccomp-agent-n1"));
        assert_eq!(l.metadata.owner_references, Some(vec![owner]));
        let spec = l.spec.unwrap();
        assert_eq!(spec.holder_identity.as_deref(), Some("n1"));
        assert_eq!(spec.lease_duration_seconds, Some(crds::AGENT_LEASE_SECONDS));
        let long = "n".repeat(253);
        assert!(crds::agent_lease_name(&long).len() <= 253);
        assert_eq!(label_value(&long).len(), 63);
    }
}
