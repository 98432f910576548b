//! The operator's one watch of Pods: it keeps the [`PodIndex`] (which pods use which profile,
//! which binding bound them) current on every replica, and tells subscribers which profiles'
//! users changed. The profile controller reconciles those profiles (the in-use finalizer);
//! the binding controller the bindings of those profiles (their bound-pod counts).

use crate::index::{PodIndex, ProfileId};
use crds::SeccompProfile;
use futures::{Stream, StreamExt};
use k8s_openapi::api::core::v1::Pod;
use kube::runtime::reflector::ObjectRef;
use kube::runtime::{watcher, WatchStreamExt};
use kube::{Api, Client};
use std::sync::{Arc, RwLock};
use tokio::sync::broadcast;

/// Changes a subscriber may fall behind before it loses some (a lagging subscriber is told
/// nothing more about those: the profile controller then resyncs through its periodic
/// requeues; see [`Changes`]).
const BUFFER: usize = 16 * 1024;

/// Start the watch; `index` is kept current from it.
pub fn start(client: Client, index: Arc<RwLock<PodIndex>>) -> Publisher {
    let (tx, _) = broadcast::channel(BUFFER);
    let sender = tx.clone();
    tokio::spawn(
        watcher(
            Api::<Pod>::all(client),
            watcher::Config::default().any_semantic(),
        )
        .default_backoff()
        .for_each(move |ev| {
            let changed = apply(&index, ev);
            for id in changed {
                // No subscriber yet is fine: they reconcile everything when they start.
                let _ = sender.send(id);
            }
            async {}
        }),
    );
    Publisher { tx }
}

/// Apply one watch event to the index; the profiles whose users changed.
fn apply(
    index: &RwLock<PodIndex>,
    ev: Result<watcher::Event<Pod>, watcher::Error>,
) -> std::collections::BTreeSet<ProfileId> {
    let mut idx = match index.write() {
        Ok(i) => i,
        Err(p) => p.into_inner(),
    };
    match ev {
        Ok(watcher::Event::Apply(p) | watcher::Event::InitApply(p)) => idx.apply(&p),
        Ok(watcher::Event::Delete(p)) => idx.delete(&p),
        Ok(watcher::Event::Init) => {
            idx.begin_resync();
            Default::default()
        }
        Ok(watcher::Event::InitDone) => idx.end_resync(),
        Err(e) => {
            tracing::warn!(error = %e, "watching pods failed; retrying");
            Default::default()
        }
    }
}

/// Where subscriptions come from.
#[derive(Clone)]
pub struct Publisher {
    tx: broadcast::Sender<ProfileId>,
}

impl Publisher {
    /// A new subscription, from now on.
    pub fn subscribe(&self) -> Changes {
        Changes(self.tx.subscribe())
    }
}

/// A subscription: profiles whose users changed.
pub struct Changes(broadcast::Receiver<ProfileId>);

impl Changes {
    /// As a stream of profile references (lagging skips what was missed, with a warning).
    pub fn into_stream(self) -> impl Stream<Item = ObjectRef<SeccompProfile>> + Send + 'static {
        futures::stream::unfold(self.0, |mut rx| async move {
            loop {
                match rx.recv().await {
                    Ok((ns, name)) => return Some((ObjectRef::new(&name).within(&ns), rx)),
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        tracing::warn!(missed = n, "fell behind on pod changes");
                    }
                    Err(broadcast::error::RecvError::Closed) => return None,
                }
            }
        })
    }
}
