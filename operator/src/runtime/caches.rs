//! Every watch of the operator starts here, once per kind per process, and main starts them
//! all; the controllers only consume what these return.
//!
//! The kinds that several parts read (profiles, bindings, recordings) are watched once into a
//! shared reflector (kube's `store_shared`): the webhooks read its store, and every consumer
//! that reacts to the kind has its own named subscription to the same event stream, so adding
//! a consumer is adding a field. Subscriptions exert backpressure (a full subscriber buffer
//! holds the watch), so every subscriber is polled from process start on every replica: the
//! controllers run everywhere and do work only while their replica leads (see
//! [`crate::runtime::leader`]).
//!
//! The other watches have one consumer each: pods (the pod index), node reports, nodes and the
//! agents' heartbeat Leases (node liveness), the node recorders' `SyscallDenied` and
//! `SyscallWouldBeDenied` Events, and
//! the recorders' `RecordingReport`s.

use crds::{
    ProfileBinding, ProfileRecording, RecordingReport, SeccompNodeStatus, SeccompProfile,
    LABEL_AGENT_NODE,
};
use futures::{Stream, StreamExt};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Event, Node, Pod};
use kube::runtime::reflector::{self, ObjectRef, ReflectHandle, Store};
use kube::runtime::{watcher, WatchStreamExt};
use kube::{Api, Client};

/// Events a subscriber may fall behind before the watch waits for it.
const BUFFER: usize = 4096;

/// A watch's events, as the watcher yields them (with backoff on failures).
pub type Events<K> =
    std::pin::Pin<Box<dyn Stream<Item = watcher::Result<watcher::Event<K>>> + Send>>;

/// Objects a reflector applied or deleted, as they change.
pub type Touched<K> = std::pin::Pin<Box<dyn Stream<Item = watcher::Result<K>> + Send>>;

/// A change of a watched kind, as the shared store holds it right after taking it.
pub enum Change<K: reflector::Lookup> {
    /// An object added or changed: the store's own copy (shared, not cloned).
    Applied(std::sync::Arc<K>),
    /// An object deleted.
    Deleted(ObjectRef<K>),
    /// A relist ended: every object the store held at that moment, before any later change.
    Relisted(Vec<std::sync::Arc<K>>),
}

/// A watch's changes, deletes included (the store's subscriptions carry only applied
/// objects), each sent right after the store took it, so that a consumer folding them sees the
/// store's states in order. Like a subscription, a full channel holds the watch: its consumer
/// must be quick, and polled from process start (a relist's objects are sent once, as one
/// [`Change::Relisted`], so the first list, which the controllers wait for, never waits for
/// it). A change holds the store's copy: what is queued costs memory only for objects the
/// store has replaced since.
pub type Changes<K> = tokio::sync::mpsc::Receiver<Change<K>>;

/// Watch `api` once into a shared store, subscribed by `subscribe` before the watch starts;
/// its changes also go to `tap` when there is one ([`Changes`]).
fn shared<K, S>(
    api: Api<K>,
    cfg: watcher::Config,
    subscribe: impl FnOnce(&dyn Fn() -> ReflectHandle<K>) -> S,
    tap: Option<tokio::sync::mpsc::Sender<Change<K>>>,
) -> (Store<K>, S)
where
    K: kube::Resource<DynamicType = ()>
        + Clone
        + std::fmt::Debug
        + serde::de::DeserializeOwned
        + Send
        + Sync
        + 'static,
{
    let (store, writer) = reflector::store_shared::<K>(BUFFER);
    let subs = subscribe(&|| writer.subscribe().expect("a shared store has subscribers"));
    let reader = store.clone();
    tokio::spawn(async move {
        let mut events = std::pin::pin!(watcher(api, cfg)
            .default_backoff()
            .modify(forget_unread)
            .reflect_shared(writer));
        while let Some(ev) = events.next().await {
            let ev = match ev {
                Ok(ev) => ev,
                Err(e) => {
                    tracing::warn!(error = %e, "watch failed; retrying");
                    continue;
                }
            };
            let Some(tap) = &tap else { continue };
            // The store has taken the event; nothing else changes it before the next one.
            let change = match ev {
                watcher::Event::Init | watcher::Event::InitApply(_) => continue,
                watcher::Event::Apply(o) => {
                    reader.get(&ObjectRef::from_obj(&o)).map(Change::Applied)
                }
                watcher::Event::Delete(o) => Some(Change::Deleted(ObjectRef::from_obj(&o))),
                watcher::Event::InitDone => Some(Change::Relisted(reader.state())),
            };
            if let Some(change) = change {
                // A consumer that is gone (shutdown) leaves the store to the others.
                let _ = tap.send(change).await;
            }
        }
    });
    (store, subs)
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

/// The consumers of SeccompProfile events, one subscription each.
pub struct ProfileSubscriptions {
    /// The profile controller: what it reconciles.
    pub controller: ReflectHandle<SeccompProfile>,
    /// The profile controller again, every event: a change of a base profile reconciles
    /// those built on it ([`crate::profile::dependents`] keeps the index).
    pub changes: Changes<SeccompProfile>,
    /// The binding controller (a binding's profile appeared or changed).
    pub bindings: ReflectHandle<SeccompProfile>,
    /// The ungating controller (a profile became Installed).
    pub ungate: ReflectHandle<SeccompProfile>,
    /// The recording controller (its merged profiles).
    pub recordings: ReflectHandle<SeccompProfile>,
}

/// The shared watches: stores for every reader, subscriptions for the controllers.
pub struct Caches {
    /// SeccompProfiles (the webhooks, the controllers).
    pub profiles: Store<SeccompProfile>,
    /// Their subscribers.
    pub profile_events: ProfileSubscriptions,
    /// ProfileBindings (the binding webhook).
    pub bindings: Store<ProfileBinding>,
    /// The binding controller's subscription.
    pub binding_events: ReflectHandle<ProfileBinding>,
    /// ProfileRecordings (the binding webhook).
    pub recordings: Store<ProfileRecording>,
    /// The recording controller's subscription.
    pub recording_events: ReflectHandle<ProfileRecording>,
    /// The node agents' and recorders' pods (in the operator's namespace): who may write
    /// which node's objects.
    pub agent_pods: Store<Pod>,
}

/// Start the shared watches.
pub fn start(client: &Client, namespace: &str) -> Caches {
    let (profile_tap, changes) = tokio::sync::mpsc::channel(BUFFER);
    let (profiles, profile_events) = shared(
        Api::<SeccompProfile>::all(client.clone()),
        watcher::Config::default().any_semantic(),
        |sub| ProfileSubscriptions {
            controller: sub(),
            changes,
            bindings: sub(),
            ungate: sub(),
            recordings: sub(),
        },
        Some(profile_tap),
    );
    let (bindings, binding_events) = shared(
        Api::<ProfileBinding>::all(client.clone()),
        watcher::Config::default(),
        |sub| sub(),
        None,
    );
    let (recordings, recording_events) = shared(
        Api::<ProfileRecording>::all(client.clone()),
        watcher::Config::default(),
        |sub| sub(),
        None,
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
        profile_events,
        bindings,
        binding_events,
        recordings,
        recording_events,
        agent_pods,
    }
}

/// Every pod of the cluster (the pod index; [`crate::pods::watch`]).
pub fn pods(client: &Client) -> Events<Pod> {
    watcher(
        Api::<Pod>::all(client.clone()),
        watcher::Config::default().any_semantic(),
    )
    .default_backoff()
    .boxed()
}

/// The nodes' reports, into a store (node liveness reads it), with each report as it changes
/// (the profile controller: the profiles it moved).
pub fn node_reports(client: &Client) -> (Store<SeccompNodeStatus>, Touched<SeccompNodeStatus>) {
    let (store, writer) = reflector::store();
    let touched = reflector::reflector(
        writer,
        watcher(
            Api::<SeccompNodeStatus>::all(client.clone()),
            watcher::Config::default(),
        ),
    )
    .default_backoff()
    .touched_objects()
    .boxed();
    (store, touched)
}

/// The cluster's Nodes, into a store, with each event (node liveness).
pub fn nodes(client: &Client) -> (Store<Node>, Events<Node>) {
    let (store, writer) = reflector::store();
    let events = reflector::reflector(
        writer,
        watcher(Api::<Node>::all(client.clone()), watcher::Config::default()),
    )
    .default_backoff()
    .boxed();
    (store, events)
}

/// The node agents' heartbeat Leases in the operator's namespace, into a store, with each
/// event (node liveness).
pub fn agent_leases(client: &Client, namespace: &str) -> (Store<Lease>, Events<Lease>) {
    let (store, writer) = reflector::store();
    let events = reflector::reflector(
        writer,
        watcher(
            Api::<Lease>::namespaced(client.clone(), namespace),
            watcher::Config::default().labels(LABEL_AGENT_NODE),
        ),
    )
    .default_backoff()
    .boxed();
    (store, events)
}

/// The node recorders' `SyscallDenied` Events, cluster-wide (a profile's `status.denials`).
pub fn syscall_denied(client: &Client) -> Events<Event> {
    let cfg = watcher::Config::default()
        .fields(&format!("reason={}", crds::events::syscall_denied::REASON));
    watcher(Api::<Event>::all(client.clone()), cfg)
        .default_backoff()
        .boxed()
}

/// The node recorders' `SyscallWouldBeDenied` Events, cluster-wide (a complain profile's
/// `status.wouldDeny`).
pub fn syscall_would_be_denied(client: &Client) -> Events<Event> {
    let cfg = watcher::Config::default().fields(&format!(
        "reason={}",
        crds::events::syscall_would_be_denied::REASON
    ));
    watcher(Api::<Event>::all(client.clone()), cfg)
        .default_backoff()
        .boxed()
}

/// The node recorders' reports, cluster-wide, as they change (the recording controller).
pub fn recording_reports(client: &Client) -> Touched<RecordingReport> {
    watcher(
        Api::<RecordingReport>::all(client.clone()),
        watcher::Config::default(),
    )
    .default_backoff()
    .touched_objects()
    .boxed()
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::{Request, Response};
    use kube::client::Body;
    use std::time::Duration;

    fn profile_json(name: &str, generation: i64, rv: &str) -> serde_json::Value {
        serde_json::json!({
            "apiVersion": "seccomp-operator.dev/v1alpha1", "kind": "SeccompProfile",
            "metadata": {"name": name, "namespace": "team", "uid": format!("u-{name}"),
                         "generation": generation, "resourceVersion": rv},
            "spec": {"defaultAction": "SCMP_ACT_ERRNO"}})
    }

    /// A fake API server: `list` answers every list; the first watch gets `first_watch` (one
    /// event per line), later ones are held open and quiet.
    fn serve(
        mut handle: tower_test::mock::Handle<Request<Body>, Response<Body>>,
        list: serde_json::Value,
        first_watch: Vec<serde_json::Value>,
    ) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let mut held = Vec::new();
            let mut first = Some(first_watch);
            while let Some((req, send)) = handle.next_request().await {
                if !req.uri().query().unwrap_or_default().contains("watch=true") {
                    send.send_response(
                        Response::builder()
                            .body(Body::from(serde_json::to_vec(&list).unwrap()))
                            .unwrap(),
                    );
                } else if let Some(events) = first.take() {
                    let mut body = Vec::new();
                    for e in events {
                        body.extend(serde_json::to_vec(&e).unwrap());
                        body.push(b'\n');
                    }
                    send.send_response(Response::builder().body(Body::from(body)).unwrap());
                } else {
                    held.push(send);
                }
            }
        })
    }

    /// A relist's objects are passed as the store held them when the relist ended, not as it
    /// holds them when the consumer gets there: a change made after the relist must still be
    /// seen as a change.
    #[tokio::test]
    async fn a_relist_is_passed_as_it_ended_and_later_changes_after_it() {
        let (svc, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
        let list = serde_json::json!({"apiVersion": "seccomp-operator.dev/v1alpha1",
            "kind": "SeccompProfileList", "metadata": {"resourceVersion": "10"},
            "items": [profile_json("base", 1, "10")]});
        let server = serve(
            handle,
            list,
            vec![serde_json::json!({"type": "MODIFIED", "object": profile_json("base", 2, "11")})],
        );
        let (tap, mut changes) = tokio::sync::mpsc::channel(BUFFER);
        let (store, ()) = shared(
            Api::<SeccompProfile>::all(Client::new(svc, "default")),
            watcher::Config::default().any_semantic(),
            |_| (),
            Some(tap),
        );
        let generation = |p: &SeccompProfile| p.metadata.generation;
        // The consumer comes late: the store already holds generation 2.
        tokio::time::timeout(Duration::from_secs(20), async {
            while store.state().first().and_then(|p| generation(p)) != Some(2) {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await
        .expect("the change reached the store");
        match changes.recv().await {
            Some(Change::Relisted(all)) => {
                assert_eq!(
                    all.iter().map(|p| generation(p)).collect::<Vec<_>>(),
                    [Some(1)]
                );
            }
            _ => panic!("the relist first"),
        }
        match changes.recv().await {
            Some(Change::Applied(p)) => assert_eq!(generation(&p), Some(2)),
            _ => panic!("then the change"),
        }
        server.abort();
    }

    /// A relist of more profiles than a channel holds must not wait for the tap's consumer:
    /// main starts the controllers, and with them that consumer, only once the first list is
    /// in the store.
    #[tokio::test]
    async fn the_first_list_fills_the_store_while_nobody_reads_the_tap() {
        let (svc, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
        let client = Client::new(svc, "default");
        let count = BUFFER + 500;
        let items: Vec<_> = (0..count)
            .map(|i| profile_json(&format!("p{i}"), 1, "10"))
            .collect();
        let list = serde_json::json!({"apiVersion": "seccomp-operator.dev/v1alpha1",
            "kind": "SeccompProfileList", "metadata": {"resourceVersion": "10"}, "items": items});
        let server = serve(handle, list, Vec::new());
        let (tap, _unread) = tokio::sync::mpsc::channel(BUFFER);
        let (store, ()) = shared(
            Api::<SeccompProfile>::all(client),
            watcher::Config::default().any_semantic(),
            |_| (),
            Some(tap),
        );
        tokio::time::timeout(Duration::from_secs(20), store.wait_until_ready())
            .await
            .expect("the first list reached the store")
            .unwrap();
        assert_eq!(store.state().len(), count);
        server.abort();
    }
}
