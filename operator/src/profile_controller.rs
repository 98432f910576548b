//! The SeccompProfile controller: validation, base resolution, status (server-side apply),
//! events, and the `in-use` finalizer held exactly while pods use the profile.

use crate::index::{PodIndex, ProfileId};
use crate::metrics::Metrics;
use crate::profile_status::{compute, with_transition_times, Observed};
use crate::{Error, Result};
use crds::{SeccompNodeStatus, SeccompProfile, SeccompProfileStatus, FINALIZER_IN_USE};
use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Patch, PatchParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::{Event as KEvent, EventType, Recorder};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{watcher, WatchStreamExt};
use kube::{Api, Client, Resource, ResourceExt};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

/// Field manager for server-side apply.
pub const MANAGER: &str = "seccomp-operator";

/// Shared state of the controller.
pub struct Context {
    /// API client.
    pub client: Client,
    /// All SeccompProfiles (the controller's own cache).
    pub profiles: Store<SeccompProfile>,
    /// All SeccompNodeStatus objects.
    pub nodes: Store<SeccompNodeStatus>,
    /// Pods by the profiles they use.
    pub index: Arc<RwLock<PodIndex>>,
    /// Event recorder.
    pub recorder: Recorder,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// Which nodes count.
    pub liveness: Arc<crate::node_controller::Shared>,
    /// What tenants' profiles may use.
    pub policy: Arc<crds::model::Policy>,
}

fn profile_id(p: &SeccompProfile) -> ProfileId {
    (p.namespace().unwrap_or_default(), p.name_any())
}

/// Reconcile one profile.
pub async fn reconcile(p: Arc<SeccompProfile>, ctx: Arc<Context>) -> Result<Action> {
    let started = Instant::now();
    let ns = p.namespace().ok_or(Error::MissingNamespace)?;
    let api: Api<SeccompProfile> = Api::namespaced(ctx.client.clone(), &ns);
    let users = ctx
        .index
        .read()
        .map_err(|_| Error::Poisoned)?
        .users(&profile_id(&p));
    let has_finalizer = p.finalizers().iter().any(|f| f == FINALIZER_IN_USE);
    let deleting = p.metadata.deletion_timestamp.is_some();

    // The finalizer is held exactly while pods use the profile: a delete waits for them and
    // completes as soon as the last one is gone; a profile nobody uses is never held up, even
    // with the operator down.
    let want_finalizer = !users.is_empty();
    if want_finalizer != has_finalizer && !(deleting && want_finalizer) {
        set_finalizer(&api, &p, want_finalizer).await?;
        if deleting && !want_finalizer {
            ctx.metrics
                .reconciled("SeccompProfile", started.elapsed(), true);
            return Ok(Action::await_change());
        }
    }

    // Bases are looked up in the cache as the chain is followed: nothing is copied.
    let lookup = |base: &str| {
        ctx.profiles
            .get(&ObjectRef::new(base).within(&ns))
            .map(|o| o.spec.clone())
    };
    let nodes = ctx.nodes.state();
    let live = ctx.liveness.get();
    let table = seccomp_filter::Libseccomp;
    let computed = compute(&Observed {
        profile: &p,
        namespace_profiles: &lookup,
        nodes: &nodes,
        live: &live,
        users,
        table: Some(&table),
        policy: &ctx.policy,
    });
    let old = p.status.as_ref();
    let now = Time(k8s_openapi::jiff::Timestamp::now());
    let new = with_transition_times(computed, old, now);
    if old != Some(&new) {
        let patch = serde_json::json!({
            "apiVersion": "seccomp-operator.dev/v1alpha1",
            "kind": "SeccompProfile",
            "status": new,
        });
        api.patch_status(
            &p.name_any(),
            &PatchParams::apply(MANAGER).force(),
            &Patch::Apply(&patch),
        )
        .await
        .map_err(Error::Kube)?;
        if old.and_then(|o| o.phase) != new.phase {
            publish_phase_event(&ctx, &p, &new).await;
        }
    }
    ctx.metrics
        .reconciled("SeccompProfile", started.elapsed(), true);
    ctx.metrics.set_phase(&profile_id(&p), new.phase);
    Ok(Action::requeue(Duration::from_secs(300)))
}

async fn publish_phase_event(ctx: &Context, p: &SeccompProfile, s: &SeccompProfileStatus) {
    let ready = s.conditions.iter().find(|c| c.type_ == "Ready");
    let valid = s.conditions.iter().find(|c| c.type_ == "Valid");
    let (type_, note) = match s.phase {
        Some(crds::ProfilePhase::Error) => (
            EventType::Warning,
            valid
                .filter(|v| v.status == "False")
                .or(ready)
                .map(|c| c.message.clone()),
        ),
        _ => (EventType::Normal, ready.map(|c| c.message.clone())),
    };
    let reason = s
        .phase
        .map(|ph| format!("{ph:?}"))
        .unwrap_or_else(|| "Unknown".into());
    let ev = KEvent {
        type_,
        reason,
        note,
        action: "Reconcile".into(),
        secondary: None,
    };
    if let Err(e) = ctx.recorder.publish(&ev, &p.object_ref(&())).await {
        tracing::warn!(error = %e, "publishing event failed");
    }
}

async fn set_finalizer(api: &Api<SeccompProfile>, p: &SeccompProfile, on: bool) -> Result<()> {
    let mut finalizers: Vec<String> = p
        .finalizers()
        .iter()
        .filter(|f| *f != FINALIZER_IN_USE)
        .cloned()
        .collect();
    if on {
        finalizers.push(FINALIZER_IN_USE.to_owned());
    }
    // resourceVersion makes the merge patch conditional: a concurrent change wins and this
    // reconcile is retried with fresh state.
    let patch = serde_json::json!({
        "metadata": {
            "finalizers": finalizers,
            "resourceVersion": p.resource_version(),
        }
    });
    api.patch(
        &p.name_any(),
        &PatchParams::default(),
        &Patch::Merge(&patch),
    )
    .await
    .map_err(Error::Kube)?;
    tracing::info!(profile = %format!("{}/{}", p.namespace().unwrap_or_default(), p.name_any()), finalizer = on, "finalizer updated");
    Ok(())
}

/// Retry soon after an error.
pub fn error_policy(p: Arc<SeccompProfile>, err: &Error, ctx: Arc<Context>) -> Action {
    tracing::warn!(profile = %p.name_any(), error = %err, "reconcile failed");
    ctx.metrics
        .reconciled("SeccompProfile", Duration::ZERO, false);
    Action::requeue(Duration::from_secs(5))
}

/// Run the controller until the stream ends.
pub async fn run(
    client: Client,
    index: Arc<RwLock<PodIndex>>,
    recorder: Recorder,
    metrics: Arc<Metrics>,
    nodes_cfg: crate::node_controller::Config,
    policy: Arc<crds::model::Policy>,
) {
    let profiles: Api<SeccompProfile> = Api::all(client.clone());
    // A bounded number of reconciles at once: a burst of thousands of profiles must not hold
    // thousands of working sets.
    let controller = Controller::new(profiles.clone(), watcher::Config::default().any_semantic())
        .with_config(kube::runtime::controller::Config::default().concurrency(4));
    let store = controller.store();

    // Node reports: a store for status, and a trigger for every profile a report lists.
    let (nodes, node_writer) = reflector::store();
    let node_stream = reflector::reflector(
        node_writer,
        watcher(
            Api::<SeccompNodeStatus>::all(client.clone()),
            watcher::Config::default(),
        ),
    )
    .default_backoff()
    .touched_objects();

    // Pods: the index, and a trigger for every profile whose users changed.
    let pod_stream = pod_events(client.clone(), index.clone());

    // Base profiles: a change of X reconciles the profiles built on X.
    let dependents_store = store.clone();
    let base_stream = watcher(profiles, watcher::Config::default())
        .default_backoff()
        .touched_objects();

    // Which nodes count: every profile is reconciled again when that changes.
    let liveness = Arc::new(crate::node_controller::Shared::default());
    let liveness_changes = liveness.changes();
    tokio::spawn(crate::node_controller::run(
        client.clone(),
        nodes_cfg,
        nodes.clone(),
        liveness.clone(),
    ));

    let ctx = Arc::new(Context {
        client,
        profiles: store,
        nodes,
        index,
        recorder,
        metrics,
        liveness,
        policy,
    });
    controller
        .reconcile_all_on(liveness_changes)
        .watches_stream(node_stream, |n: SeccompNodeStatus| {
            n.status
                .map(|s| s.profiles)
                .unwrap_or_default()
                .into_iter()
                .map(|e| ObjectRef::new(&e.name).within(&e.namespace))
                .collect::<Vec<_>>()
        })
        .watches_stream(pod_stream, |carrier: Pod| {
            carrier
                .annotations()
                .get(CHANGED)
                .map(|v| {
                    v.split(';')
                        .filter_map(|id| id.split_once('/'))
                        .map(|(ns, name)| ObjectRef::new(name).within(ns))
                        .collect::<Vec<_>>()
                })
                .unwrap_or_default()
        })
        .watches_stream(base_stream, move |changed: SeccompProfile| {
            let ns = changed.namespace();
            let name = changed.name_any();
            dependents_store
                .state()
                .iter()
                .filter(|o| {
                    o.namespace() == ns
                        && o.spec.base_profile_name.as_deref() == Some(name.as_str())
                })
                .map(|o| ObjectRef::from_obj(&**o))
                .collect::<Vec<_>>()
        })
        .shutdown_on_signal()
        .run(reconcile, error_policy, ctx)
        .for_each(|r| async move {
            if let Err(e) = r {
                tracing::debug!(error = %e, "reconcile loop");
            }
        })
        .await;
}

/// Annotation of the trigger objects [`pod_events`] yields: the profiles (`ns/name;...`) whose
/// users changed.
const CHANGED: &str = "seccomp-operator.dev/changed-profiles";

/// Pod events applied to the index; each change yields a trigger carrying the profiles whose
/// users changed (a relist can drop pods no event names, so the pod itself is not enough).
fn pod_events(
    client: Client,
    index: Arc<RwLock<PodIndex>>,
) -> impl futures::Stream<Item = std::result::Result<Pod, watcher::Error>> + Send {
    watcher(
        Api::<Pod>::all(client),
        watcher::Config::default().any_semantic(),
    )
    .default_backoff()
    .filter_map(move |ev| {
        let index = index.clone();
        async move {
            let mut idx = match index.write() {
                Ok(i) => i,
                Err(p) => p.into_inner(),
            };
            let changed = match ev {
                Ok(watcher::Event::Apply(p) | watcher::Event::InitApply(p)) => idx.apply(&p),
                Ok(watcher::Event::Delete(p)) => idx.delete(&p),
                Ok(watcher::Event::Init) => {
                    idx.begin_resync();
                    Default::default()
                }
                Ok(watcher::Event::InitDone) => idx.end_resync(),
                Err(e) => return Some(Err(e)),
            };
            if changed.is_empty() {
                return None;
            }
            let ids: Vec<String> = changed.iter().map(|(ns, n)| format!("{ns}/{n}")).collect();
            let mut carrier = Pod::default();
            carrier.metadata.name = Some("trigger".into());
            carrier.metadata.annotations = Some([(CHANGED.to_owned(), ids.join(";"))].into());
            Some(Ok(carrier))
        }
    })
}
