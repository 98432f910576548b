//! The ProfileRecording controller, sole writer of recorded profiles. Node recorders report
//! what each recorded container did into RecordingReports (one per recording and node); this
//! controller
//! - takes in every final report entry as the per-pod profile `<recording>-<pod>-<container>`
//!   (a partial for `Containers`, the result for `None`), then marks it consumed in the
//!   report's status so the recorder drops it;
//! - keeps a ledger of every selected container instance that ran ([`ledger`], in
//!   `status.containers`) and decides when the recording has ended (its duration passed, or
//!   no selected pod is live) and every instance was reported final by its node: nodes that
//!   are gone or not Ready are not waited for, nor is a live node that said nothing about an
//!   instance within [`ledger::REPORT_DEADLINE`] (the recording then ends `Partial`, with a
//!   `ContainerNotRecorded` Event and the `Reported` condition naming what is missing);
//! - then merges the partials per container into `<recording>-<container>` ([`merge`]), which
//!   folds in its own earlier result: a report that arrives late only adds.
//!
//! A finalizer keeps the recording until its reports are taken in and merged.
//!
//! - [`intake`]: reports → per-pod profiles (pure); [`merge`]: the one merge;
//! - [`ledger`]: which instances ran and whether they were reported (pure);
//! - [`conditions`]: the conditions a recording reports.

pub mod conditions;
pub mod intake;
pub mod ledger;
pub mod merge;

use crate::runtime::metrics::Metrics;
use crate::{Error, Result};
use conditions::{binding_webhook_condition, reports_condition, set_condition};
use crds::apply::{apply_object, apply_status, OPERATOR};
use crds::{
    MergeStrategy, ProfileRecording, ProfileRecordingStatus, RecordingPhase, RecordingReport,
    RecordingReportStatus, SeccompProfile, SeccompProfileSpec, LABEL_AUDIT_LOG_FOR, LABEL_PARTIAL,
    LABEL_RECORDING,
};
use futures::StreamExt;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::ListParams;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::finalizer::{finalizer, Event as Finalizer};
use kube::runtime::reflector::{ObjectRef, ReflectHandle, Store};
use kube::{Api, Client, ResourceExt};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Finalizer on recordings whose reports are not all taken in and merged yet.
pub const FINALIZER: &str = "seccomp-operator.dev/recording";

/// A deleted recording waits at most this long for nodes still recording one of its
/// containers before it merges what it has.
pub const DELETE_WAIT: Duration = Duration::from_secs(120);

/// Shared state.
pub struct Context {
    /// API client.
    pub client: Client,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// Open while this replica leads.
    pub gate: crate::runtime::leader::Gate,
    /// Publishes the recording's Events.
    pub recorder: kube::runtime::events::Recorder,
    /// Instances already announced as not reported (recording UID, container ID): a
    /// reconcile that runs on a cached recording older than the last status write must not
    /// announce them again.
    pub announced: std::sync::Mutex<Announced>,
}

/// Instances already announced, bounded (forgotten wholesale past [`Announced::MAX`]: an
/// Event at most twice then, never a lost one).
#[derive(Debug, Default)]
pub struct Announced(BTreeSet<(String, String, crds::TrackedState)>);

impl Announced {
    const MAX: usize = 10_000;

    /// Whether this is the first time (recording, instance, state) is announced.
    fn first(&mut self, uid: &str, id: &str, state: crds::TrackedState) -> bool {
        if self.0.len() >= Self::MAX {
            self.0.clear();
        }
        self.0.insert((uid.to_owned(), id.to_owned(), state))
    }
}

/// What the controller watches besides its own API calls.
pub struct Inputs<S> {
    /// Recordings (shared store).
    pub recordings: Store<ProfileRecording>,
    /// Recording events (shared stream).
    pub events: ReflectHandle<ProfileRecording>,
    /// Profile events (shared stream): a produced profile changed.
    pub profile_events: ReflectHandle<SeccompProfile>,
    /// Recordings that select a pod that changed ([`crate::pods::watch`]).
    pub pod_changes: S,
    /// The recorders' reports as they change ([`crate::runtime::caches::recording_reports`]).
    pub reports: crate::runtime::caches::Touched<RecordingReport>,
    /// Publishes Events.
    pub recorder: kube::runtime::events::Recorder,
}

/// Reconcile one recording.
pub async fn reconcile(rec: Arc<ProfileRecording>, ctx: Arc<Context>) -> Result<Action> {
    if !ctx.gate.leads() {
        return Ok(Action::await_change());
    }
    let started = Instant::now();
    let ns = rec.namespace().ok_or(Error::MissingNamespace)?;
    let api: Api<ProfileRecording> = Api::namespaced(ctx.client.clone(), &ns);
    let r = finalizer(&api, FINALIZER, rec, |ev| async {
        match ev {
            Finalizer::Apply(rec) => apply(&rec, &ctx, &ns).await,
            Finalizer::Cleanup(rec) => cleanup(&rec, &ctx, &ns).await,
        }
    })
    .await
    .map_err(|e| Error::Finalizer(Box::new(e)));
    ctx.metrics
        .reconciled("ProfileRecording", started.elapsed(), r.is_ok());
    r
}

async fn partials(ctx: &Context, ns: &str, rec: &str) -> Result<Vec<SeccompProfile>> {
    let api: Api<SeccompProfile> = Api::namespaced(ctx.client.clone(), ns);
    let lp = ListParams::default().labels(&format!("{LABEL_RECORDING}={rec},{LABEL_PARTIAL}=true"));
    Ok(api.list(&lp).await.map_err(Error::Kube)?.items)
}

/// What taking in the reports found.
struct Intake {
    /// The recording's reports, as listed before the intake.
    reports: Vec<RecordingReport>,
    /// Nodes (live ones) still recording a selected container, with how many.
    still_recording: BTreeMap<String, usize>,
    /// Nodes that are gone or not Ready whose reports list containers never finished.
    lost: BTreeSet<String>,
    /// Nodes whose liveness was looked up, and whether they are live.
    live: BTreeMap<String, bool>,
}

/// Whether `node` exists and is Ready.
async fn node_live(ctx: &Context, node: &str) -> Result<bool> {
    let nodes: Api<Node> = Api::all(ctx.client.clone());
    Ok(nodes
        .get_opt(node)
        .await
        .map_err(Error::Kube)?
        .is_some_and(|n| crate::nodes::liveness::node_ready(&n)))
}

/// Take in every final entry of the recording's reports: write its per-pod profile (folding
/// in the one written before), then mark it consumed.
async fn take_in(rec: &ProfileRecording, ctx: &Context, ns: &str) -> Result<Intake> {
    let name = rec.name_any();
    let reports: Api<RecordingReport> = Api::namespaced(ctx.client.clone(), ns);
    let list = reports
        .list(&ListParams::default().labels(&format!("{LABEL_RECORDING}={name}")))
        .await
        .map_err(Error::Kube)?
        .items;
    // Only reports about this recording (the label is the recorder's word; the spec too).
    let list: Vec<RecordingReport> = list
        .into_iter()
        .filter(|r| r.spec.recording == name)
        .collect();
    let profiles: Api<SeccompProfile> = Api::namespaced(ctx.client.clone(), ns);
    for report in &list {
        let mut taken = Vec::new();
        for entry in intake::to_take_in(report) {
            let pname = intake::per_pod_name(&name, entry);
            let earlier = profiles
                .get_opt(&pname)
                .await
                .map_err(Error::Kube)?
                .filter(|p| intake::same_source(p, &name, entry));
            let p = intake::per_pod_profile(rec, entry, earlier.as_ref().map(|p| &p.spec.profile))?;
            apply_profile(&profiles, &p).await?;
            tracing::info!(recording = %name, profile = %pname, node = %report.spec.node_name, syscalls = entry.syscalls.len(), "recorded container taken in");
            taken.push(entry.container_id.clone());
        }
        let consumed = intake::consumed_after(report, &taken);
        let now = report
            .status
            .as_ref()
            .map(|s| &s.consumed[..])
            .unwrap_or(&[]);
        if consumed != now {
            let status = RecordingReportStatus { consumed };
            apply_status(&reports, OPERATOR, &report.name_any(), &status)
                .await
                .map_err(Error::Kube)?;
        }
    }
    let mut still = intake::still_recording(&list);
    let mut lost = BTreeSet::new();
    let mut live = BTreeMap::new();
    for node in still.keys() {
        live.insert(node.clone(), node_live(ctx, node).await?);
    }
    for (node, _) in live.iter().filter(|(_, l)| !**l) {
        still.remove(node);
        lost.insert(node.clone());
    }
    Ok(Intake {
        reports: list,
        still_recording: still,
        lost,
        live,
    })
}

/// Server-side apply of a profile the operator writes.
async fn apply_profile(api: &Api<SeccompProfile>, p: &SeccompProfile) -> Result<()> {
    apply_object(api, OPERATOR, p).await.map_err(Error::Kube)?;
    Ok(())
}

/// A recording being deleted: take in what was reported, wait a little for nodes still
/// recording, merge, then let it go (its reports and partials are garbage-collected with it).
async fn cleanup(rec: &ProfileRecording, ctx: &Context, ns: &str) -> Result<Action> {
    // The namespace is being deleted with everything in it: nothing can be written there any
    // more (the API server refuses new objects), and nothing would outlive it. Let go.
    let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(ctx.client.clone());
    let terminating = namespaces
        .get_opt(ns)
        .await
        .map_err(Error::Kube)?
        .is_none_or(|n| n.metadata.deletion_timestamp.is_some());
    if terminating {
        tracing::info!(recording = %rec.name_any(), namespace = %ns, "namespace is being deleted: recording released without a merge");
        return Ok(Action::await_change());
    }
    let intake = take_in(rec, ctx, ns).await?;
    let deleting_for = rec
        .metadata
        .deletion_timestamp
        .as_ref()
        .and_then(|t| {
            k8s_openapi::jiff::Timestamp::now()
                .duration_since(t.0)
                .try_into()
                .ok()
        })
        .unwrap_or(Duration::ZERO);
    if !intake.still_recording.is_empty() && deleting_for < DELETE_WAIT {
        return Err(Error::StillRecording(
            intake
                .still_recording
                .keys()
                .cloned()
                .collect::<Vec<_>>()
                .join(", "),
        ));
    }
    if rec.spec.merge_strategy == MergeStrategy::Containers {
        let parts = partials(ctx, ns, &rec.name_any()).await?;
        merge::merge_partials(&ctx.client, rec, ns, &parts).await?;
    }
    Ok(Action::await_change())
}

/// The `SCMP_ACT_LOG` profile a `Logs` recording's containers run under while recorded
/// (the binding webhook puts them there), owned by the recording.
pub fn audit_log_profile(rec: &ProfileRecording) -> Result<SeccompProfile> {
    let name = rec.name_any();
    let mut p = SeccompProfile::new(
        &ProfileRecording::audit_profile_name(&name),
        SeccompProfileSpec::from(seccomp_profile::ProfileSpec {
            document: seccomp_profile::SeccompDocument {
                default_action: seccomp_profile::Action::Log,
                default_errno_ret: None,
                architectures: Vec::new(),
                flags: Vec::new(),
                listener_path: None,
                listener_metadata: None,
                syscalls: Vec::new(),
            },
            base_profile_name: None,
            disabled: false,
            report_denials: None,
            mode: Default::default(),
        }),
    );
    p.metadata.namespace = rec.namespace();
    p.metadata.labels = Some(BTreeMap::from([(
        LABEL_AUDIT_LOG_FOR.to_owned(),
        name.clone(),
    )]));
    p.metadata.owner_references = Some(vec![
        crds::apply::owner_reference(rec, true).ok_or(Error::MissingUid)?
    ]);
    Ok(p)
}

async fn ensure_audit_log_profile(rec: &ProfileRecording, ctx: &Context, ns: &str) -> Result<()> {
    let p = audit_log_profile(rec)?;
    let api: Api<SeccompProfile> = Api::namespaced(ctx.client.clone(), ns);
    apply_profile(&api, &p).await
}

/// Status of a recording whose spec cannot be used: phase Error, condition Valid=False.
async fn invalid(
    rec: &ProfileRecording,
    ctx: &Context,
    ns: &str,
    reason: &str,
    message: &str,
) -> Result<Action> {
    let mut status = rec.status.clone().unwrap_or_default();
    status.phase = Some(RecordingPhase::Error);
    status.observed_generation = rec.metadata.generation;
    set_condition(
        &mut status.conditions,
        conditions::invalid_condition(reason, message, rec.metadata.generation),
    );
    if rec.status.as_ref() != Some(&status) {
        write_status(rec, ctx, ns, &status).await?;
    }
    Ok(Action::await_change())
}

async fn write_status(
    rec: &ProfileRecording,
    ctx: &Context,
    ns: &str,
    status: &ProfileRecordingStatus,
) -> Result<()> {
    let api: Api<ProfileRecording> = Api::namespaced(ctx.client.clone(), ns);
    apply_status(&api, OPERATOR, &rec.name_any(), status)
        .await
        .map_err(Error::Kube)?;
    Ok(())
}

async fn apply(rec: &ProfileRecording, ctx: &Context, ns: &str) -> Result<Action> {
    let name = rec.name_any();
    if rec.spec.recorder == crds::Recorder::Logs {
        ensure_audit_log_profile(rec, ctx, ns).await?;
    }
    let selector = match rec.pod_selector() {
        Ok(s) => s,
        Err(e) => {
            return invalid(
                rec,
                ctx,
                ns,
                "InvalidSelector",
                &format!("spec.podSelector: {e}"),
            )
            .await
        }
    };
    let pods: Api<Pod> = Api::namespaced(ctx.client.clone(), ns);
    // The label query narrows the list; `selects_pod` decides (the same rule the agents use).
    let matching = pods
        .list(&ListParams::default().labels_from(&selector))
        .await
        .map_err(Error::Kube)?
        .items;
    let active: Vec<String> = matching
        .iter()
        .filter(|p| crate::pods::references::is_live(p) && p.metadata.deletion_timestamp.is_none())
        .filter(|p| rec.selects_pod(p))
        .map(|p| p.name_any())
        .collect();
    let mut intake = take_in(rec, ctx, ns).await?;
    let now = k8s_openapi::jiff::Timestamp::now();
    let earlier = rec.status.clone().unwrap_or_default();
    let mut ledger = ledger::update(&earlier.containers, rec, &matching, &intake.reports, now);
    for node in ledger::nodes_in_question(&ledger) {
        if let std::collections::btree_map::Entry::Vacant(v) = intake.live.entry(node) {
            let l = node_live(ctx, v.key()).await?;
            v.insert(l);
        }
    }
    ledger::judge(&mut ledger, &intake.live, now);
    let verdict = ledger::verdict(&ledger);
    announce_unreported(rec, ctx, &earlier.containers, &ledger).await;
    let parts = partials(ctx, ns, &name).await?;
    // (Apply runs only while the recording is not being deleted: inactive means expired.)
    let expired = !rec.is_active(now);
    let ended = expired || active.is_empty();
    let waiting = !intake.still_recording.is_empty() || verdict.waiting;
    let incomplete =
        !verdict.not_recorded.is_empty() || !verdict.lost.is_empty() || !intake.lost.is_empty();
    let mut parts_left = !parts.is_empty();
    if ended && !waiting && parts_left && rec.spec.merge_strategy == MergeStrategy::Containers {
        merge::merge_partials(&ctx.client, rec, ns, &parts).await?;
        parts_left = false;
    }
    let produced: Vec<String> = {
        let api: Api<SeccompProfile> = Api::namespaced(ctx.client.clone(), ns);
        let lp = ListParams::default().labels(&format!("{LABEL_RECORDING}={name}"));
        let mut v: Vec<String> = api
            .list(&lp)
            .await
            .map_err(Error::Kube)?
            .items
            .iter()
            .filter(|p| {
                rec.spec.merge_strategy == MergeStrategy::None
                    || p.labels().get(LABEL_PARTIAL).map(String::as_str) != Some("true")
            })
            .map(|p| p.name_any())
            .collect();
        v.sort();
        v
    };
    let phase = if !active.is_empty() && !expired {
        RecordingPhase::Recording
    } else if waiting || (parts_left && rec.spec.merge_strategy == MergeStrategy::Containers) {
        RecordingPhase::Merging
    } else if incomplete {
        RecordingPhase::Partial
    } else if !produced.is_empty() {
        RecordingPhase::Completed
    } else {
        RecordingPhase::Pending
    };
    let mut conditions = rec.status.clone().unwrap_or_default().conditions;
    conditions.retain(|c| c.type_ != conditions::CONDITION_VALID);
    if rec.spec.recorder == crds::Recorder::Logs {
        let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(ctx.client.clone());
        let labels = namespaces
            .get_opt(ns)
            .await
            .map_err(Error::Kube)?
            .map(|n| n.labels().clone())
            .unwrap_or_default();
        set_condition(
            &mut conditions,
            binding_webhook_condition(ns, &labels, rec.metadata.generation),
        );
    }
    set_condition(
        &mut conditions,
        reports_condition(
            &intake.still_recording,
            &intake.lost,
            &verdict,
            ledger.untracked,
            rec.metadata.generation,
        ),
    );
    let status = ProfileRecordingStatus {
        phase: Some(phase),
        active_workloads: active,
        profiles: produced,
        conditions,
        observed_generation: rec.metadata.generation,
        containers: ledger.containers,
        untracked_containers: (ledger.untracked > 0).then_some(ledger.untracked),
    };
    if rec.status.as_ref() != Some(&status) {
        write_status(rec, ctx, ns, &status).await?;
    }
    Ok(Action::requeue(Duration::from_secs(
        if phase == RecordingPhase::Recording || waiting {
            10
        } else {
            60
        },
    )))
}

/// An Event and the counter for each instance that just became `NotRecorded` or `Lost`
/// (best effort: the condition and `status.containers` say the same).
async fn announce_unreported(
    rec: &ProfileRecording,
    ctx: &Context,
    earlier: &[crds::TrackedContainer],
    now: &ledger::Ledger,
) {
    let newly = ledger::newly_unreported(earlier, now);
    if newly.is_empty() {
        return;
    }
    let reference = kube::Resource::object_ref(rec, &());
    let uid = rec.uid().unwrap_or_default();
    let newly: Vec<&crds::TrackedContainer> = {
        let mut seen = ctx.announced.lock().unwrap_or_else(|p| p.into_inner());
        newly
            .into_iter()
            .filter(|e| seen.first(&uid, &e.container_id, e.state))
            .collect()
    };
    for e in newly {
        let lost = e.state == crds::TrackedState::Lost;
        ctx.metrics.container_unreported(lost);
        let (reason, why) = if lost {
            ("ContainerLost", "its node is gone or not Ready".to_owned())
        } else {
            (
                "ContainerNotRecorded",
                format!(
                    "its node's recorder did not report it within {}s",
                    ledger::REPORT_DEADLINE.as_secs()
                ),
            )
        };
        tracing::warn!(recording = %rec.name_any(), pod = %e.pod, container = %e.container, node = %e.node, container_id = %e.container_id, reason, "a container that ran was not recorded");
        let ev = kube::runtime::events::Event {
            type_: kube::runtime::events::EventType::Warning,
            reason: reason.into(),
            note: Some(seccomp_profile::limits::truncate(
                &format!(
                    "{}: {why}; the recorded profiles lack its syscalls",
                    ledger::describe(e)
                ),
                1024,
            )),
            action: "Record".into(),
            secondary: None,
        };
        if let Err(err) = ctx.recorder.publish(&ev, &reference).await {
            tracing::warn!(error = %seccomp_profile::error::chain(&err), recording = %rec.name_any(), "publishing a {reason} event failed");
        }
    }
}

/// Retry soon after an error.
pub fn error_policy(rec: Arc<ProfileRecording>, err: &Error, _ctx: Arc<Context>) -> Action {
    tracing::warn!(recording = %rec.name_any(), error = %seccomp_profile::error::chain(&err), "reconcile failed");
    Action::requeue(Duration::from_secs(5))
}

/// Run the controller: recordings (shared store and subscription), re-checked when a report
/// changes, a profile the recording produced does, or a pod it selects does.
pub async fn run<S>(
    client: Client,
    metrics: Arc<Metrics>,
    inputs: Inputs<S>,
    gate: crate::runtime::leader::Gate,
    watchdog: Arc<crate::runtime::watchdog::Watchdog>,
) where
    S: futures::Stream<Item = ObjectRef<ProfileRecording>> + Send + 'static,
{
    watchdog.beat("recordings");
    let ctx = Arc::new(Context {
        client,
        metrics,
        gate: gate.clone(),
        recorder: inputs.recorder,
        announced: Default::default(),
    });
    Controller::for_shared_stream(inputs.events, inputs.recordings)
        .reconcile_all_on(gate.became_leader())
        .reconcile_on(crate::runtime::watchdog::ticks())
        // A selected pod changed: its containers enter the ledger.
        .reconcile_on(inputs.pod_changes)
        // A report changed: take it in.
        .watches_stream(inputs.reports, |r: RecordingReport| {
            let ns = r.namespace()?;
            Some(ObjectRef::new(&r.spec.recording).within(&ns))
        })
        .watches_shared_stream(inputs.profile_events, |p: Arc<SeccompProfile>| {
            let ns = p.namespace()?;
            let rec = p.labels().get(LABEL_RECORDING)?.clone();
            Some(ObjectRef::new(&rec).within(&ns))
        })
        .shutdown_on_signal()
        .run(reconcile, error_policy, ctx)
        .for_each(|_| {
            watchdog.beat("recordings");
            async {}
        })
        .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logs_recordings_get_an_owned_log_all_profile() {
        let rec: ProfileRecording = serde_json::from_value(serde_json::json!({
            "apiVersion": "seccomp-operator.dev/v1alpha1", "kind": "ProfileRecording",
            "metadata": {"name": "web", "namespace": "shop", "uid": "u-1"},
            "spec": {"recorder": "Logs", "podSelector": {"matchLabels": {"app": "web"}}}
        }))
        .unwrap();
        let p = audit_log_profile(&rec).unwrap();
        assert_eq!(p.name_any(), "web.log");
        assert_eq!(p.namespace().as_deref(), Some("shop"));
        assert_eq!(p.spec.document.default_action, seccomp_profile::Action::Log);
        assert!(p.spec.document.syscalls.is_empty());
        assert_eq!(p.labels()[LABEL_AUDIT_LOG_FOR], "web");
        let owner = &p.owner_references()[0];
        assert_eq!((owner.uid.as_str(), owner.controller), ("u-1", Some(true)));
        // never taken for a recording's output
        assert!(p.labels().get(LABEL_RECORDING).is_none());
    }
}
