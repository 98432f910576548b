//! The SeccompProfile controller: validation, base resolution, status (server-side apply),
//! events, and the `in-use` finalizer held exactly while pods use the profile.

use crate::nodes::reports::{NodeReport, NodeReports, SpecVersions, Touched};
use crate::pods::index::PodIndex;
use crate::pods::references::ProfileId;
use crate::profile::artifacts::Base;
use crate::profile::status::{compute_with_recheck, with_transition_times, Observed};
use crate::runtime::metrics::Metrics;
use crate::{Error, Result};
use crds::{SeccompNodeStatus, SeccompProfile, FINALIZER_IN_USE};
use futures::StreamExt;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Patch, PatchParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::Recorder;
use kube::runtime::reflector::{ObjectRef, ReflectHandle, Store};
use kube::{Api, Client, ResourceExt};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

/// A profile not yet on every node is looked at again this often (node reports wake it only
/// when its phase may change).
pub const PROGRESS_RECOUNT: Duration = Duration::from_secs(30);

/// Reconcile requests for one profile arriving closer than this are one reconcile.
pub const DEBOUNCE: Duration = Duration::from_millis(500);

/// Profiles reconciled at once. A reconcile computes the status in memory and hands it to
/// the status writers ([`crate::profile::writes`]); it waits on the API server only to change
/// the in-use finalizer. (Before the writes were coalesced, 16 at once were slower than 4:
/// every reconcile wrote an intermediate `Installing n/100` to an API server that was the
/// bottleneck.)
pub const CONCURRENCY: u16 = 8;

/// Shared state of the controller.
pub struct Context {
    /// API client.
    pub client: Client,
    /// All SeccompProfiles (the controller's own cache).
    pub profiles: Store<SeccompProfile>,
    /// What each node's report says (kept by the node report watch, see [`node_triggers`]).
    pub reports: Arc<RwLock<NodeReports>>,
    /// When each profile's spec last changed.
    pub versions: Arc<Mutex<SpecVersions>>,
    /// Pods by the profiles they use.
    pub index: Arc<RwLock<PodIndex>>,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// Which nodes count.
    pub liveness: Arc<crate::nodes::controller::Shared>,
    /// What tenants' profiles may use.
    pub policy: Arc<seccomp_profile::Policy>,
    /// Open while this replica leads.
    pub gate: crate::runtime::leader::Gate,
    /// The runtime default recorded profiles are compared with (`--runtime-default-profile`).
    pub runtime_default: Option<Arc<crate::profile::runtime_default::RuntimeDefault>>,
    /// Recent denials by profile, from the node agents' `SyscallDenied` Events.
    pub denials: Arc<RwLock<crate::profile::denials::DenialIndex>>,
    /// What the enforced forms of complain profiles would deny, from the node agents'
    /// `SyscallWouldBeDenied` Events.
    pub would_deny: Arc<RwLock<crate::profile::denials::DenialIndex>>,
    /// When a complain profile is ready to enforce.
    pub readiness: crate::profile::complain::Readiness,
    /// The statuses computed and not yet written.
    pub writes: Arc<crate::profile::writes::StatusWrites>,
    /// Registry bases (`oci://`), fetched by the operator.
    pub artifacts: Arc<crate::profile::artifacts::Artifacts>,
}

fn profile_id(p: &SeccompProfile) -> ProfileId {
    (p.namespace().unwrap_or_default(), p.name_any())
}

/// Reconcile one profile.
pub async fn reconcile(p: Arc<SeccompProfile>, ctx: Arc<Context>) -> Result<Action> {
    if !ctx.gate.leads() {
        return Ok(Action::await_change());
    }
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

    // The finalizer is held exactly while pods use the profile, and for a minute after the
    // install gate admitted a pod for it (that pod may not be in the index yet): a delete
    // waits for them and completes as soon as the last one is gone; a profile nobody uses is
    // never held up longer, even with the operator down.
    let admission_hold = crate::profile::hold::hold_left(&p, k8s_openapi::jiff::Timestamp::now());
    let want_finalizer = !users.is_empty() || admission_hold.is_some();
    if want_finalizer != has_finalizer && !(deleting && want_finalizer) {
        set_finalizer(&api, &p, want_finalizer).await?;
        if deleting && !want_finalizer {
            if let Ok(mut v) = ctx.versions.lock() {
                v.forget(&profile_id(&p));
            }
            ctx.writes.forget(&profile_id(&p));
            ctx.artifacts.forget(&profile_id(&p));
            ctx.metrics
                .reconciled("SeccompProfile", started.elapsed(), true);
            return Ok(Action::await_change());
        }
    }

    // A registry base: fetched by the operator, or recorded in status
    // ([`crate::profile::artifacts`]).
    let registry_base = ctx.artifacts.base_for(&p);
    let own_base = match &registry_base {
        Base::Ready(r) => Some(r),
        _ => None,
    };
    // Bases are looked up in the cache as the chain is followed. A base built on a registry
    // artifact is read as the node agents read it: with its own `status.resolvedBase` folded
    // in (or, not fetched yet, with its registry base unresolved). The profile's own registry
    // base is only what was fetched for it.
    let lookup = |base: &str| {
        if base.starts_with(seccomp_profile::OCI_PREFIX) {
            return own_base
                .filter(|r| r.reference == base)
                .map(|r| seccomp_profile::ProfileSpec::from(r.profile.clone()));
        }
        let o = ctx.profiles.get(&ObjectRef::new(base).within(&ns))?;
        let mut spec = o.spec.profile.clone();
        let resolved = o.status.as_ref().and_then(|s| s.resolved_base.as_ref());
        let _ = crds::fold_registry_base(&mut spec, resolved);
        Some(spec)
    };
    let spec_version = spec_version(&ctx, &p, &lookup)?;
    let live = ctx.liveness.get();
    let table = seccomp_filter::Libseccomp;
    let denials = ctx
        .denials
        .read()
        .map_err(|_| Error::Poisoned)?
        .summary(&profile_id(&p));
    let versions = crate::profile::status::VersionsObserved {
        would_deny: ctx
            .would_deny
            .read()
            .map_err(|_| Error::Poisoned)?
            .summary(&profile_id(&p)),
        running: ctx
            .index
            .read()
            .map_err(|_| Error::Poisoned)?
            .running_under(&profile_id(&p)),
        readiness: ctx.readiness,
        now: k8s_openapi::jiff::Timestamp::now(),
    };
    let (computed, recheck) = {
        let reports = ctx.reports.read().map_err(|_| Error::Poisoned)?;
        compute_with_recheck(&Observed {
            profile: &p,
            namespace_profiles: &lookup,
            reports: &reports,
            spec_version,
            live: &live,
            users,
            table: Some(&table),
            policy: &ctx.policy,
            runtime_default: ctx.runtime_default.as_deref(),
            denials,
            versions,
        })
    };
    let (computed, registry_recheck) =
        with_registry_base(computed, &registry_base, p.status.as_ref());
    // Written by the status writers, coalesced; admission reads it at once.
    let now = Time(k8s_openapi::jiff::Timestamp::now());
    let in_progress = matches!(
        computed.phase,
        Some(crds::ProfilePhase::Pending | crds::ProfilePhase::Installing)
    );
    ctx.writes
        .submit(&p, with_transition_times(computed, p.status.as_ref(), now));
    ctx.metrics
        .reconciled("SeccompProfile", started.elapsed(), true);
    // An admission hold ends by time: look again then.
    // A complain profile's readiness comes with time: look again then.
    let next = admission_hold
        .map(|left| left + Duration::from_secs(1))
        .unwrap_or(Duration::from_secs(300))
        .min(recheck.map_or(Duration::MAX, |d| d + Duration::from_secs(1)))
        .min(registry_recheck.unwrap_or(Duration::MAX))
        // Node reports wake a profile only when they may change its phase: its progress
        // (`Installing n/m`) is recounted by time.
        .min(if in_progress {
            PROGRESS_RECOUNT
        } else {
            Duration::from_secs(300)
        });
    Ok(Action::requeue(next))
}

/// `status` with what is known of the profile's registry base: the resolved base recorded
/// (the agents build the profile from it), or, while it is fetched or after a failed fetch,
/// the reason in place of the resolver's "does not exist" (the last resolved base is kept, so
/// nodes keep their files); and when to look again.
fn with_registry_base(
    mut status: crds::SeccompProfileStatus,
    base: &Base,
    old: Option<&crds::SeccompProfileStatus>,
) -> (crds::SeccompProfileStatus, Option<Duration>) {
    let (phase, valid, reason, message, recheck) = match base {
        Base::None => return (status, None),
        Base::Ready(r) => {
            status.resolved_base = Some(r.clone());
            return (status, None);
        }
        Base::Fetching => (
            crds::ProfilePhase::Pending,
            "Unknown",
            "BaseProfileFetching",
            "fetching spec.baseProfileName from the registry".to_owned(),
            // Woken when the fetch ends; a fetch waiting for its turn is looked at again.
            Duration::from_secs(15),
        ),
        Base::Failed { why, retry_in } => (
            crds::ProfilePhase::Error,
            "False",
            "BaseProfileUnavailable",
            why.clone(),
            *retry_in + Duration::from_secs(1),
        ),
    };
    status.resolved_base = old.and_then(|o| o.resolved_base.clone());
    // Only the resolver's complaint is replaced: an invalid spec says so first.
    let unresolved = status
        .conditions
        .iter()
        .any(|c| c.type_ == "Valid" && c.reason == "BaseProfileUnresolved");
    if unresolved {
        for c in &mut status.conditions {
            if c.type_ == "Valid" {
                c.status = valid.to_owned();
                c.reason = reason.to_owned();
                c.message = seccomp_profile::limits::truncate(
                    &message,
                    seccomp_profile::limits::MAX_MESSAGE_BYTES,
                );
            } else if c.type_ == "Ready" {
                c.message = seccomp_profile::limits::truncate(
                    &message,
                    seccomp_profile::limits::MAX_MESSAGE_BYTES,
                );
            }
        }
        status.phase = Some(phase);
    }
    (status, Some(recheck))
}

/// The version at which `p`'s spec or a base's last changed (see [`SpecVersions`]), recorded
/// so that node reports find the profile by it.
fn spec_version(
    ctx: &Context,
    p: &SeccompProfile,
    lookup: &dyn seccomp_profile::ProfileLookup,
) -> Result<u64> {
    let ns = p.namespace().unwrap_or_default();
    let id = profile_id(p);
    let mut versions = ctx.versions.lock().map_err(|_| Error::Poisoned)?;
    let own = |v: &mut SpecVersions, o: &SeccompProfile| {
        v.own(
            &profile_id(o),
            o.metadata.uid.as_deref().unwrap_or_default(),
            o.metadata.generation.unwrap_or(0),
            o.metadata.resource_version.as_deref(),
        )
    };
    let mut version = own(&mut versions, p);
    for base in seccomp_profile::base_chain(&id.1, &p.spec, lookup) {
        if let Some(b) = ctx.profiles.get(&ObjectRef::new(&base).within(&ns)) {
            version = version.max(own(&mut versions, &b));
        }
    }
    versions.set_effective(&id, version);
    Ok(version)
}

async fn set_finalizer(api: &Api<SeccompProfile>, p: &SeccompProfile, on: bool) -> Result<()> {
    // resourceVersion makes the merge patch conditional, so a concurrent change of the
    // finalizers wins. The status writers change the resourceVersion too, often during a
    // burst: on a conflict the object is read again and the patch made from it, a few times,
    // before the reconcile is retried.
    let mut current = std::borrow::Cow::Borrowed(p);
    for attempt in 1..=FINALIZER_ATTEMPTS {
        let has = current.finalizers().iter().any(|f| f == FINALIZER_IN_USE);
        if has == on {
            return Ok(());
        }
        let mut finalizers: Vec<String> = current
            .finalizers()
            .iter()
            .filter(|f| *f != FINALIZER_IN_USE)
            .cloned()
            .collect();
        if on {
            finalizers.push(FINALIZER_IN_USE.to_owned());
        }
        let patch = serde_json::json!({
            "metadata": {
                "finalizers": finalizers,
                "resourceVersion": current.resource_version(),
            }
        });
        match api
            .patch(
                &p.name_any(),
                &PatchParams::default(),
                &Patch::Merge(&patch),
            )
            .await
        {
            Ok(_) => {
                tracing::info!(profile = %format!("{}/{}", p.namespace().unwrap_or_default(), p.name_any()), finalizer = on, "finalizer updated");
                return Ok(());
            }
            Err(kube::Error::Api(e)) if e.code == 409 && attempt < FINALIZER_ATTEMPTS => {
                match api.get_opt(&p.name_any()).await.map_err(Error::Kube)? {
                    Some(fresh) => current = std::borrow::Cow::Owned(fresh),
                    None => return Ok(()),
                }
            }
            Err(e) => return Err(Error::Kube(e)),
        }
    }
    Ok(())
}

/// Tries of a finalizer change that conflicts with another write of the profile.
const FINALIZER_ATTEMPTS: u32 = 4;

/// Turns each node report seen into the profiles it moved, and keeps `reports` current: the
/// work of a report follows what it changed, not the number of profiles (see node_reports).
fn node_triggers(
    reports: Arc<RwLock<NodeReports>>,
    versions: Arc<Mutex<SpecVersions>>,
    profiles: Store<SeccompProfile>,
    liveness: Arc<crate::nodes::controller::Shared>,
) -> impl Fn(SeccompNodeStatus) -> Vec<ObjectRef<SeccompProfile>> + Send + Sync + 'static {
    move |n: SeccompNodeStatus| {
        let name = n.name_any();
        let new = n
            .status
            .as_ref()
            .map(NodeReport::from_status)
            .unwrap_or_default();
        let (Ok(mut reports), Ok(mut versions)) = (reports.write(), versions.lock()) else {
            return Vec::new();
        };
        // Only what may change a profile's phase: the counted nodes' floor passing it, or a
        // failure on the node (see phase_movers); its progress count is looked at by time.
        let live = liveness.get();
        let floor_before = crate::nodes::reports::floor(&reports, live.counted.keys());
        let old = reports.insert(name.clone(), new);
        let floor_after = crate::nodes::reports::floor(&reports, live.counted.keys());
        let touched = crate::nodes::reports::phase_movers(
            old.as_ref(),
            reports.get(&name).unwrap_or(&NodeReport::default()),
            &versions,
            floor_before,
            floor_after,
        );
        drop(reports);
        let ids: Vec<_> = match touched {
            Touched::All => {
                return profiles
                    .state()
                    .iter()
                    .map(|p| ObjectRef::from_obj(&**p))
                    .collect()
            }
            Touched::Some(ids) => ids.into_iter().collect(),
        };
        // Profiles gone from the store are forgotten here (the controller skips them).
        let mut out = Vec::with_capacity(ids.len());
        for (ns, name) in ids {
            let r = ObjectRef::new(&name).within(&ns);
            if profiles.get(&r).is_some() {
                out.push(r);
            } else {
                versions.forget(&(ns, name));
            }
        }
        out
    }
}

/// Retry soon after an error.
pub fn error_policy(p: Arc<SeccompProfile>, err: &Error, ctx: Arc<Context>) -> Action {
    tracing::warn!(profile = %p.name_any(), error = %seccomp_profile::error::chain(&err), "reconcile failed");
    ctx.metrics
        .reconciled("SeccompProfile", Duration::ZERO, false);
    Action::requeue(Duration::from_secs(5))
}

/// What the profile controller is built from.
pub struct Inputs {
    /// Where the loop proves it runs.
    pub watchdog: Arc<crate::runtime::watchdog::Watchdog>,
    /// The shared SeccompProfile store.
    pub profiles: Store<SeccompProfile>,
    /// A subscription to SeccompProfile events: what the controller reconciles.
    pub events: ReflectHandle<SeccompProfile>,
    /// The SeccompProfile watch's changes, deletes included: a change of a base profile
    /// reconciles the profiles built on it ([`crate::profile::dependents`]).
    pub changes: crate::runtime::caches::Changes<SeccompProfile>,
    /// Pods by the profiles they use.
    pub index: Arc<RwLock<PodIndex>>,
    /// Profiles whose users changed.
    pub pod_changes: crate::pods::watch::Changes,
    /// Event recorder.
    pub recorder: Recorder,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// Each node report as it changes ([`crate::runtime::caches::node_reports`]).
    pub report_events: crate::runtime::caches::Touched<SeccompNodeStatus>,
    /// Which nodes count (the node controller's; every profile is reconciled again when that
    /// changes).
    pub liveness: Arc<crate::nodes::controller::Shared>,
    /// The node recorders' `SyscallDenied` Events ([`crate::runtime::caches::syscall_denied`]).
    pub denial_events: crate::runtime::caches::Events<k8s_openapi::api::core::v1::Event>,
    /// The node recorders' `SyscallWouldBeDenied` Events
    /// ([`crate::runtime::caches::syscall_would_be_denied`]).
    pub would_deny_events: crate::runtime::caches::Events<k8s_openapi::api::core::v1::Event>,
    /// When a complain profile is ready to enforce.
    pub readiness: crate::profile::complain::Readiness,
    /// What tenants' profiles may use.
    pub policy: Arc<seccomp_profile::Policy>,
    /// Open while this replica leads.
    pub gate: crate::runtime::leader::Gate,
    /// The runtime default recorded profiles are compared with.
    pub runtime_default: Option<Arc<crate::profile::runtime_default::RuntimeDefault>>,
    /// What each node's agent reports: kept current here, read elsewhere too (the webhooks
    /// and the confinement counts read a node's `seccompDefault`).
    pub reports: Arc<RwLock<NodeReports>>,
    /// The statuses computed and not yet written (admission reads them too); written here.
    pub writes: Arc<crate::profile::writes::StatusWrites>,
    /// Which registries `oci://` bases may come from, and how to reach them.
    pub registry: crate::profile::artifacts::RegistryConfig,
}

/// Run the controller until the stream ends.
pub async fn run(client: Client, inputs: Inputs) {
    let Inputs {
        profiles,
        events,
        changes,
        index,
        pod_changes,
        recorder,
        metrics,
        report_events,
        liveness,
        denial_events,
        would_deny_events,
        readiness,
        policy,
        gate,
        runtime_default,
        watchdog,
        reports,
        writes,
        registry,
    } = inputs;
    tokio::spawn(
        writes
            .clone()
            .run(client.clone(), recorder.clone(), gate.clone()),
    );
    watchdog.beat("profiles");
    // A bounded number of reconciles at once: a burst of thousands of profiles must not hold
    // thousands of working sets. Requests for one profile are batched (trailing edge,
    // [`DEBOUNCE`]): while a hundred nodes report a new profile one after another, it is
    // reconciled (and its status written) about once, not once per node.
    let controller = Controller::for_shared_stream(events, profiles.clone()).with_config(
        kube::runtime::controller::Config::default()
            .concurrency(CONCURRENCY)
            .debounce(DEBOUNCE),
    );

    let versions = Arc::new(Mutex::new(SpecVersions::default()));
    let triggers = node_triggers(
        reports.clone(),
        versions.clone(),
        profiles.clone(),
        liveness.clone(),
    );
    let liveness_changes = liveness.changes();

    let denials = Arc::new(RwLock::new(crate::profile::denials::DenialIndex::default()));
    let denial_changes = crate::profile::denials::follow(denial_events, denials.clone());
    let would_deny = Arc::new(RwLock::new(
        crate::profile::denials::DenialIndex::would_deny(),
    ));
    let would_deny_changes = crate::profile::denials::follow(would_deny_events, would_deny.clone());
    let (artifacts, fetched) = crate::profile::artifacts::Artifacts::new(client.clone(), registry);
    // The fetches of profiles deleted without a reconcile (no finalizer) are let go.
    {
        let (artifacts, profiles) = (artifacts.clone(), profiles.clone());
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(300));
            loop {
                tick.tick().await;
                artifacts
                    .keep_only(|id| profiles.get(&ObjectRef::new(&id.1).within(&id.0)).is_some());
            }
        });
    }
    let ctx = Arc::new(Context {
        artifacts,
        denials,
        would_deny,
        readiness,
        client,
        profiles,
        reports,
        versions,
        index,
        metrics,
        liveness,
        policy,
        gate: gate.clone(),
        runtime_default,
        writes,
    });
    controller
        .reconcile_all_on(futures::stream::select(
            liveness_changes,
            gate.became_leader(),
        ))
        .reconcile_on(pod_changes.into_stream())
        .reconcile_on(futures::stream::select(denial_changes, would_deny_changes))
        .reconcile_on(crate::runtime::watchdog::ticks())
        .watches_stream(report_events, triggers)
        .reconcile_on(crate::profile::dependents::follow(changes))
        .reconcile_on(futures::stream::unfold(fetched, |mut rx| async move {
            rx.recv().await.map(|r| (r, rx))
        }))
        .shutdown_on_signal()
        .run(reconcile, error_policy, ctx)
        .for_each(|r| {
            watchdog.beat("profiles");
            if let Err(e) = r {
                tracing::debug!(error = %seccomp_profile::error::chain(&e), "reconcile loop");
            }
            async {}
        })
        .await;
}
