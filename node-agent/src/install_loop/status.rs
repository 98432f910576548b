//! The node's SeccompNodeStatus writer: creates the object (owned by its Node) and applies the
//! latest status the sync loop sends, at most once per [`STATUS_INTERVAL`].

use super::{InstallError, MANAGER, STATUS_INTERVAL};
use crds::{KubeletSettings, SeccompNodeStatus, SeccompNodeStatusSpec, SeccompNodeStatusStatus};
use kube::{Api, Client, Resource};
use tokio::sync::watch;

/// Writes the node's SeccompNodeStatus with server-side apply, at most once per
/// [`STATUS_INTERVAL`], always the latest state (the sync's, with the kubelet's settings);
/// retries failed writes.
pub(super) async fn status_writer(
    client: Client,
    node_name: String,
    mut rx: watch::Receiver<Option<SeccompNodeStatusStatus>>,
    mut kubelet: watch::Receiver<Option<KubeletSettings>>,
) {
    let api: Api<SeccompNodeStatus> = Api::all(client.clone());
    let mut created = false;
    let mut last_written: Option<SeccompNodeStatusStatus> = None;
    let mut kubelet_open = true;
    loop {
        tokio::select! {
            r = rx.changed() => if r.is_err() { break },
            r = kubelet.changed(), if kubelet_open => if r.is_err() {
                // Nothing more will be learnt; what was is kept.
                kubelet_open = false;
            },
        }
        let Some(mut status) = rx.borrow_and_update().clone() else {
            continue;
        };
        status.kubelet = kubelet.borrow_and_update().clone();
        if last_written.as_ref() == Some(&status) {
            continue;
        }
        if !created {
            match ensure_object(&client, &api, &node_name).await {
                Ok(()) => created = true,
                Err(e) => {
                    tracing::warn!(error = %crate::error_chain(&e), "cannot create SeccompNodeStatus; retrying");
                    tokio::time::sleep(STATUS_INTERVAL).await;
                    rx.mark_changed();
                    continue;
                }
            }
        }
        match crds::apply::apply_status(&api, MANAGER, &node_name, &status).await {
            Ok(_) => last_written = Some(status),
            Err(e) => {
                tracing::warn!(error = %e, "writing SeccompNodeStatus failed; retrying");
                if matches!(&e, kube::Error::Api(s) if s.code == 404) {
                    created = false;
                }
                rx.mark_changed();
            }
        }
        tokio::time::sleep(STATUS_INTERVAL).await;
    }
}

/// Create (or adopt) the node's SeccompNodeStatus, owned by the Node so it goes with it.
/// The Node must be readable: an object without its owner would outlive a deleted node, so
/// a failed GET is an error (retried), never a silent skip.
async fn ensure_object(
    client: &Client,
    api: &Api<SeccompNodeStatus>,
    node_name: &str,
) -> Result<(), InstallError> {
    let mut obj = SeccompNodeStatus::new(
        node_name,
        SeccompNodeStatusSpec {
            node_name: node_name.to_owned(),
        },
    );
    let owner = crate::heartbeat::node_owner(client, node_name)
        .await
        .map_err(InstallError::Owner)?;
    obj.meta_mut().owner_references = Some(vec![owner]);
    crds::apply::apply_object(api, MANAGER, &obj)
        .await
        .map_err(InstallError::Kube)?;
    Ok(())
}
