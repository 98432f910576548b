//! Pods no node runs yet, as the recorder needs to know them: a pod a recording selects may be
//! scheduled onto this node, and the recorder must be loaded before its first container starts.
//!
//! The scheduler places a pod within milliseconds, faster than one turn of the recording loop,
//! so a store of the pods unplaced *now* would often have dropped it already. Every pod seen
//! unplaced is therefore also remembered for [`MEMORY`] after it was last seen so, and each
//! sighting wakes the loop at once.

use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{watcher, WatchStreamExt};
use kube::{Api, Client, ResourceExt};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Notify;

/// A pod seen unplaced counts this long after it was last seen so (one still unplaced counts
/// as long as it is).
pub const MEMORY: Duration = Duration::from_secs(10);

/// Recently seen pods, by namespace and name.
type Seen = HashMap<(String, String), (Instant, Arc<Pod>)>;

/// The pods not placed on a node, now or a moment ago.
pub struct Unplaced {
    now: Store<Pod>,
    recent: Arc<Mutex<Seen>>,
    wake: Arc<Notify>,
}

impl Unplaced {
    /// Watch pods without `spec.nodeName`, in every namespace.
    pub fn watch(client: Client) -> Self {
        let (now, writer) = reflector::store::<Pod>();
        let recent: Arc<Mutex<Seen>> = Default::default();
        let wake = Arc::new(Notify::new());
        let (seen, woken) = (recent.clone(), wake.clone());
        tokio::spawn(
            watcher(
                Api::<Pod>::all(client),
                crate::watch_config().fields("spec.nodeName="),
            )
            .default_backoff()
            .reflect(writer)
            .touched_objects()
            .for_each(move |ev| {
                if let Ok(pod) = ev {
                    if !is_placed(&pod) {
                        let key = (pod.namespace().unwrap_or_default(), pod.name_any());
                        seen.lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .insert(key, (Instant::now(), Arc::new(pod)));
                        woken.notify_one();
                    }
                }
                async {}
            }),
        );
        Unplaced { now, recent, wake }
    }

    /// The pods unplaced now or within [`MEMORY`].
    pub fn pods(&self) -> Vec<Arc<Pod>> {
        let mut out = self.now.state();
        let mut recent = self.recent.lock().unwrap_or_else(|e| e.into_inner());
        recent.retain(|_, (seen, _)| seen.elapsed() < MEMORY);
        out.extend(recent.values().map(|(_, p)| Arc::clone(p)));
        out
    }

    /// Resolves when an unplaced pod was seen.
    pub async fn changed(&self) {
        self.wake.notified().await
    }
}

/// Whether the pod has a node.
fn is_placed(pod: &Pod) -> bool {
    pod.spec
        .as_ref()
        .and_then(|s| s.node_name.as_deref())
        .is_some_and(|n| !n.is_empty())
}
