//! The operator's watches: one per kind per process. Each kind is watched once into a shared
//! reflector (kube's `store_shared`): the webhooks read its store, and every controller that
//! reacts to the kind gets its own subscription to the same event stream.
//!
//! Subscriptions exert backpressure (a full subscriber buffer holds the watch), so every
//! subscriber is polled from process start on every replica: the controllers run everywhere
//! and do work only while their replica leads (see [`crate::runtime::leader`]).

use crds::{ProfileBinding, ProfileRecording, SeccompProfile};
use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::runtime::reflector::{self, ReflectHandle, Store};
use kube::runtime::{watcher, WatchStreamExt};
use kube::{Api, Client};

/// Events a subscriber may fall behind before the watch waits for it.
const BUFFER: usize = 4096;

/// A shared watch: its store and the subscriptions handed out at start.
pub struct Shared<K>
where
    K: kube::Resource<DynamicType = ()> + Clone + 'static,
{
    /// The store every reader shares.
    pub store: Store<K>,
    subs: Vec<ReflectHandle<K>>,
}

impl<K> Shared<K>
where
    K: kube::Resource<DynamicType = ()>
        + Clone
        + std::fmt::Debug
        + serde::de::DeserializeOwned
        + Send
        + Sync
        + 'static,
{
    /// Watch `api` once, with `subscribers` subscriptions to its events.
    fn start(api: Api<K>, cfg: watcher::Config, subscribers: usize) -> Self {
        let (store, writer) = reflector::store_shared::<K>(BUFFER);
        let subs = (0..subscribers)
            .map(|_| writer.subscribe().expect("a shared store has subscribers"))
            .collect();
        tokio::spawn(
            watcher(api, cfg)
                .default_backoff()
                .modify(forget_unread)
                .reflect_shared(writer)
                .for_each(|ev| async move {
                    if let Err(e) = ev {
                        tracing::warn!(error = %e, "watch failed; retrying");
                    }
                }),
        );
        Shared { store, subs }
    }

    /// One of the subscriptions made at start (each is handed out once).
    pub fn subscription(&mut self) -> ReflectHandle<K> {
        self.subs
            .pop()
            .expect("every subscriber was counted when the watch started")
    }
}

/// Drop what the operator never reads before the store keeps an object: `managedFields` (an
/// entry per writer, with every field it owns) and kubectl's last-applied copy of the whole
/// object. At 10,000 profiles this is most of the store.
fn forget_unread<K: kube::Resource>(o: &mut K) {
    let meta = o.meta_mut();
    meta.managed_fields = None;
    if let Some(a) = meta.annotations.as_mut() {
        a.remove("kubectl.kubernetes.io/last-applied-configuration");
    }
}

/// Every shared watch of the operator.
pub struct Caches {
    /// SeccompProfiles: the webhooks; the profile controller, its base-profile trigger, the
    /// recording controller, the binding controller and the ungating controller subscribe.
    pub profiles: Shared<SeccompProfile>,
    /// ProfileBindings: the binding webhook; the binding controller.
    pub bindings: Shared<ProfileBinding>,
    /// ProfileRecordings: the binding webhook; the recording controller.
    pub recordings: Shared<ProfileRecording>,
    /// The node agents' and recorders' pods (in the operator's namespace): who may write
    /// which node's objects.
    pub agent_pods: Store<Pod>,
}

/// Start every shared watch.
pub fn start(client: &Client, namespace: &str) -> Caches {
    let profiles = Shared::start(
        Api::<SeccompProfile>::all(client.clone()),
        watcher::Config::default().any_semantic(),
        5,
    );
    let bindings = Shared::start(
        Api::<ProfileBinding>::all(client.clone()),
        watcher::Config::default(),
        1,
    );
    let recordings = Shared::start(
        Api::<ProfileRecording>::all(client.clone()),
        watcher::Config::default(),
        1,
    );
    let (agent_pods, writer) = reflector::store::<Pod>();
    tokio::spawn(
        reflector::reflector(
            writer,
            watcher(
                Api::namespaced(client.clone(), namespace),
                watcher::Config::default()
                    .labels("app.kubernetes.io/name in (seccomp-node-agent,seccomp-node-recorder)"),
            ),
        )
        .default_backoff()
        .for_each(|_| async {}),
    );
    Caches {
        profiles,
        bindings,
        recordings,
        agent_pods,
    }
}
