//! The operator's one watch of Pods: it keeps the [`PodIndex`] (which pods use which profile,
//! which binding bound them) current on every replica, and tells subscribers which profiles'
//! users changed. The profile controller reconciles those profiles (the in-use finalizer);
//! the binding controller the bindings of those profiles (their bound-pod counts). It also
//! tells the recording controller which recordings select a pod that changed, so that a
//! container that runs for a moment still enters the recording's ledger.

use crate::pods::index::PodIndex;
use crate::pods::references::ProfileId;
use crds::{ProfileRecording, SeccompProfile};
use futures::{Stream, StreamExt};
use k8s_openapi::api::core::v1::Pod;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;
use std::sync::{Arc, RwLock};
use tokio::sync::broadcast;

/// Changes a subscriber may fall behind before it loses some (a lagging subscriber is told
/// nothing more about those: the profile controller then resyncs through its periodic
/// requeues; see [`Changes`]).
const BUFFER: usize = 16 * 1024;

/// Follow the pod watch ([`crate::runtime::caches::pods`]); `index` is kept current from it;
/// `recordings` says which recordings a changed pod concerns.
pub fn start(
    events: crate::runtime::caches::Events<Pod>,
    index: Arc<RwLock<PodIndex>>,
    recordings: Store<ProfileRecording>,
) -> Publisher {
    let (tx, _) = broadcast::channel(BUFFER);
    let (rec_tx, _) = broadcast::channel(RECORDING_BUFFER);
    let (gated_tx, _) = broadcast::channel(GATED_BUFFER);
    let sender = tx.clone();
    let rec_sender = rec_tx.clone();
    let gated_sender = gated_tx.clone();
    tokio::spawn(events.for_each(move |ev| {
        if let Ok(watcher::Event::Apply(p) | watcher::Event::Delete(p)) = &ev {
            for r in selecting(&recordings, p) {
                let _ = rec_sender.send(r);
            }
        }
        // Told after the index has the pod.
        let gated = match &ev {
            Ok(watcher::Event::Apply(p) | watcher::Event::InitApply(p))
                if crds::has_scheduling_gate(p) =>
            {
                Some(crate::pods::references::pod_key(p))
            }
            _ => None,
        };
        let changed = apply(&index, ev);
        if let Some(k) = gated {
            let _ = gated_sender.send(k);
        }
        for id in changed {
            // No subscriber yet is fine: they reconcile everything when they start.
            let _ = sender.send(id);
        }
        async {}
    }));
    Publisher {
        tx,
        rec_tx,
        gated_tx,
    }
}

/// Gated pods the ungating controller may fall behind on (it also rescans every gated pod
/// periodically).
const GATED_BUFFER: usize = 4096;

/// Changes of pods the recording controller may fall behind on (it also requeues itself).
const RECORDING_BUFFER: usize = 1024;

/// The active recordings in `pod`'s namespace that select it.
fn selecting(recordings: &Store<ProfileRecording>, pod: &Pod) -> Vec<ObjectRef<ProfileRecording>> {
    let ns = pod.metadata.namespace.as_deref();
    let now = k8s_openapi::jiff::Timestamp::now();
    recordings
        .state()
        .iter()
        .filter(|r| r.metadata.namespace.as_deref() == ns && r.is_active(now))
        .filter(|r| r.selects_pod(pod))
        .map(|r| ObjectRef::from_obj(r.as_ref()))
        .collect()
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
    rec_tx: broadcast::Sender<ObjectRef<ProfileRecording>>,
    gated_tx: broadcast::Sender<String>,
}

impl Publisher {
    /// A new subscription, from now on.
    pub fn subscribe(&self) -> Changes {
        Changes(self.tx.subscribe())
    }

    /// Recordings that select a pod that changed, from now on (lagging skips what was
    /// missed: the controller's periodic requeue catches up).
    pub fn recording_changes(
        &self,
    ) -> impl Stream<Item = ObjectRef<ProfileRecording>> + Send + 'static {
        futures::stream::unfold(self.rec_tx.subscribe(), |mut rx| async move {
            loop {
                match rx.recv().await {
                    Ok(r) => return Some((r, rx)),
                    Err(broadcast::error::RecvError::Lagged(_)) => {}
                    Err(broadcast::error::RecvError::Closed) => return None,
                }
            }
        })
    }
}

impl Publisher {
    /// Pods (`<namespace>/<name>`) seen with the operator's scheduling gate, from now on
    /// (lagging skips what was missed: the ungating controller rescans periodically).
    pub fn gated_pods(&self) -> impl Stream<Item = String> + Send + 'static {
        futures::stream::unfold(self.gated_tx.subscribe(), |mut rx| async move {
            loop {
                match rx.recv().await {
                    Ok(k) => return Some((k, rx)),
                    Err(broadcast::error::RecvError::Lagged(_)) => {}
                    Err(broadcast::error::RecvError::Closed) => return None,
                }
            }
        })
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
