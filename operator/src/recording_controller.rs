//! The ProfileRecording controller: tracks the pods a recording matches, and when the
//! recording ends (its pods are gone, its duration passed, or it is deleted) merges the
//! per-pod partial profiles the node agents produced into one SeccompProfile per container,
//! `<recording>-<container>`. A finalizer keeps the recording until every partial is merged.

use crate::metrics::Metrics;
use crate::{Error, Result};
use crds::model::{merge, Arch};
use crds::{
    MergeStrategy, ProfileRecording, ProfileRecordingStatus, RecordingPhase, SeccompProfile,
    SeccompProfileSpec, LABEL_AUDIT_LOG_FOR, LABEL_CONTAINER, LABEL_PARTIAL, LABEL_RECORDING,
};
use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, OwnerReference, Time};
use kube::api::{DeleteParams, ListParams, Patch, PatchParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::finalizer::{finalizer, Event as Finalizer};
use kube::runtime::watcher;
use kube::{Api, Client, ResourceExt};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Finalizer on recordings with partial profiles not merged yet.
pub const FINALIZER: &str = "seccomp-operator.dev/recording";

/// Shared state.
pub struct Context {
    /// API client.
    pub client: Client,
    /// Metrics.
    pub metrics: Arc<Metrics>,
}

/// A label selector as the `labelSelector` query string.
pub fn selector_string(sel: &LabelSelector) -> String {
    let mut parts: Vec<String> = sel
        .match_labels
        .iter()
        .flatten()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    for e in sel.match_expressions.iter().flatten() {
        let vals = e.values.clone().unwrap_or_default().join(",");
        parts.push(match e.operator.as_str() {
            "In" => format!("{} in ({vals})", e.key),
            "NotIn" => format!("{} notin ({vals})", e.key),
            "Exists" => e.key.clone(),
            _ => format!("!{}", e.key),
        });
    }
    parts.join(",")
}

/// The name of a merged profile.
pub fn merged_name(recording: &str, container: &str) -> String {
    format!("{recording}-{container}")
}

/// Reconcile one recording.
pub async fn reconcile(rec: Arc<ProfileRecording>, ctx: Arc<Context>) -> Result<Action> {
    let started = Instant::now();
    let ns = rec.namespace().ok_or(Error::MissingNamespace)?;
    let api: Api<ProfileRecording> = Api::namespaced(ctx.client.clone(), &ns);
    let r = finalizer(&api, FINALIZER, rec, |ev| async {
        match ev {
            Finalizer::Apply(rec) => apply(&rec, &ctx, &ns).await,
            Finalizer::Cleanup(rec) => {
                if rec.spec.merge_strategy == MergeStrategy::Containers {
                    merge_partials(&rec, &ctx, &ns).await?;
                }
                Ok(Action::await_change())
            }
        }
    })
    .await
    .map_err(|e| Error::Finalizer(e.to_string()));
    ctx.metrics
        .reconciled("ProfileRecording", started.elapsed(), r.is_ok());
    r
}

async fn partials(ctx: &Context, ns: &str, rec: &str) -> Result<Vec<SeccompProfile>> {
    let api: Api<SeccompProfile> = Api::namespaced(ctx.client.clone(), ns);
    let lp = ListParams::default().labels(&format!("{LABEL_RECORDING}={rec},{LABEL_PARTIAL}=true"));
    Ok(api.list(&lp).await.map_err(Error::Kube)?.items)
}

/// The `SCMP_ACT_LOG` profile a `Logs` recording's containers run under while recorded
/// (the binding webhook puts them there), owned by the recording.
pub fn audit_log_profile(rec: &ProfileRecording) -> SeccompProfile {
    let name = rec.name_any();
    let mut p = SeccompProfile::new(
        &ProfileRecording::audit_profile_name(&name),
        SeccompProfileSpec {
            document: crds::model::SeccompDocument {
                default_action: crds::model::Action::Log,
                default_errno_ret: None,
                architectures: Vec::new(),
                flags: Vec::new(),
                listener_path: None,
                listener_metadata: None,
                syscalls: Vec::new(),
            },
            base_profile_name: None,
            disabled: false,
        },
    );
    p.metadata.namespace = rec.namespace();
    p.metadata.labels = Some(BTreeMap::from([(
        LABEL_AUDIT_LOG_FOR.to_owned(),
        name.clone(),
    )]));
    p.metadata.owner_references = Some(vec![OwnerReference {
        api_version: "seccomp-operator.dev/v1alpha1".into(),
        kind: "ProfileRecording".into(),
        name,
        uid: rec.uid().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: Some(false),
    }]);
    p
}

async fn ensure_audit_log_profile(rec: &ProfileRecording, ctx: &Context, ns: &str) -> Result<()> {
    let p = audit_log_profile(rec);
    let api: Api<SeccompProfile> = Api::namespaced(ctx.client.clone(), ns);
    let mut v = serde_json::to_value(&p).map_err(|e| Error::Merge(e.to_string()))?;
    if let Some(m) = v.as_object_mut() {
        m.remove("status");
    }
    api.patch(
        &p.name_any(),
        &PatchParams::apply(crate::profile_controller::MANAGER).force(),
        &Patch::Apply(&v),
    )
    .await
    .map_err(Error::Kube)?;
    Ok(())
}

async fn apply(rec: &ProfileRecording, ctx: &Context, ns: &str) -> Result<Action> {
    let name = rec.name_any();
    if rec.spec.recorder == crds::Recorder::Logs {
        ensure_audit_log_profile(rec, ctx, ns).await?;
    }
    let pods: Api<Pod> = Api::namespaced(ctx.client.clone(), ns);
    // The label query narrows the list; `selects_pod` decides (the same rule the agents use).
    let selector = selector_string(&rec.spec.pod_selector);
    let matching = pods
        .list(&ListParams::default().labels(&selector))
        .await
        .map_err(Error::Kube)?
        .items;
    let active: Vec<String> = matching
        .iter()
        .filter(|p| crate::index::is_live(p) && p.metadata.deletion_timestamp.is_none())
        .filter(|p| rec.selects_pod(p))
        .map(|p| p.name_any())
        .collect();
    let parts = partials(ctx, ns, &name).await?;
    // (Apply runs only while the recording is not being deleted: inactive means expired.)
    let expired = !rec.is_active(k8s_openapi::jiff::Timestamp::now());
    let ended = expired || active.is_empty();
    let mut parts_left = !parts.is_empty();
    if ended && parts_left && rec.spec.merge_strategy == MergeStrategy::Containers {
        merge_partials(rec, ctx, ns).await?;
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
    } else if parts_left && rec.spec.merge_strategy == MergeStrategy::Containers {
        RecordingPhase::Merging
    } else if !produced.is_empty() {
        RecordingPhase::Completed
    } else {
        RecordingPhase::Pending
    };
    let mut conditions = rec.status.clone().unwrap_or_default().conditions;
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
    let status = ProfileRecordingStatus {
        phase: Some(phase),
        active_workloads: active,
        profiles: produced,
        conditions,
        observed_generation: rec.metadata.generation,
    };
    if rec.status.as_ref() != Some(&status) {
        let api: Api<ProfileRecording> = Api::namespaced(ctx.client.clone(), ns);
        let patch = serde_json::json!({"apiVersion": "seccomp-operator.dev/v1alpha1", "kind": "ProfileRecording", "status": status});
        api.patch_status(
            &name,
            &PatchParams::apply(crate::profile_controller::MANAGER).force(),
            &Patch::Apply(&patch),
        )
        .await
        .map_err(Error::Kube)?;
    }
    Ok(Action::requeue(Duration::from_secs(
        if phase == RecordingPhase::Recording {
            10
        } else {
            60
        },
    )))
}

/// Condition type saying whether the binding webhook serves a `Logs` recording's namespace.
pub const CONDITION_BINDING_WEBHOOK: &str = "BindingWebhook";

/// Whether the binding webhook will put a `Logs` recording's pods under its `SCMP_ACT_LOG`
/// profile: only in namespaces labelled `seccomp-operator.dev/binding=enabled`.
pub fn binding_webhook_condition(
    ns: &str,
    labels: &BTreeMap<String, String>,
    generation: Option<i64>,
) -> Condition {
    let on = labels.get(crds::LABEL_BINDING).map(String::as_str) == Some("enabled");
    Condition {
        type_: CONDITION_BINDING_WEBHOOK.into(),
        status: if on { "True" } else { "False" }.into(),
        reason: if on {
            "NamespaceEnabled"
        } else {
            "NamespaceNotLabelled"
        }
        .into(),
        message: if on {
            "the binding webhook puts the selected pods under the recording's SCMP_ACT_LOG profile"
                .into()
        } else {
            format!(
                "the Logs recorder works through the binding webhook: label namespace {ns} with {}=enabled; pods created before that are not recorded",
                crds::LABEL_BINDING
            )
        },
        observed_generation: generation,
        last_transition_time: Time(k8s_openapi::jiff::Timestamp::now()),
    }
}

/// Put `c` in `conditions`, keeping the transition time while its status holds.
fn set_condition(conditions: &mut Vec<Condition>, mut c: Condition) {
    match conditions.iter_mut().find(|o| o.type_ == c.type_) {
        Some(old) => {
            if old.status == c.status {
                c.last_transition_time = old.last_transition_time.clone();
            }
            *old = c;
        }
        None => conditions.push(c),
    }
}

/// The merged document of one container: the union of what an earlier merge produced (if
/// any) and the partials present now. Folding the earlier result in makes merging
/// idempotent and monotone: the same partials merged twice give the same document, and a
/// partial that arrives after a merge (a slower node, a retried publish) adds to the merged
/// profile instead of replacing it.
pub fn merged_document(
    earlier: Option<&crds::model::SeccompDocument>,
    partials: &[&crds::model::SeccompDocument],
    native: Arch,
) -> Result<crds::model::SeccompDocument> {
    let docs: Vec<crds::model::SeccompDocument> = earlier
        .into_iter()
        .chain(partials.iter().copied())
        .cloned()
        .collect();
    merge(&docs, native).map_err(|e| Error::Merge(e.to_string()))
}

/// Merge the partials per container into `<recording>-<container>` (server-side apply, so a
/// retry after a crash converges), then delete the partials.
async fn merge_partials(rec: &ProfileRecording, ctx: &Context, ns: &str) -> Result<()> {
    let name = rec.name_any();
    let parts = partials(ctx, ns, &name).await?;
    let mut by_container: BTreeMap<String, Vec<&SeccompProfile>> = BTreeMap::new();
    for p in &parts {
        let c = p
            .labels()
            .get(LABEL_CONTAINER)
            .cloned()
            .unwrap_or_else(|| "container".into());
        by_container.entry(c).or_default().push(p);
    }
    let api: Api<SeccompProfile> = Api::namespaced(ctx.client.clone(), ns);
    for (container, ps) in &by_container {
        let target = merged_name(&name, container);
        // The result of an earlier merge of this recording, if there is one.
        let earlier = api
            .get_opt(&target)
            .await
            .map_err(Error::Kube)?
            .filter(|p| p.labels().get(LABEL_RECORDING) == Some(&name));
        let docs: Vec<&crds::model::SeccompDocument> =
            ps.iter().map(|p| &p.spec.document).collect();
        let doc = merged_document(
            earlier.as_ref().map(|p| &p.spec.document),
            &docs,
            Arch::native(),
        )?;
        let mut obj = SeccompProfile::new(
            &target,
            SeccompProfileSpec {
                document: doc,
                base_profile_name: None,
                disabled: false,
            },
        );
        obj.metadata.labels = Some(BTreeMap::from([
            (LABEL_RECORDING.to_owned(), name.clone()),
            (LABEL_CONTAINER.to_owned(), container.clone()),
        ]));
        let mut v = serde_json::to_value(&obj).map_err(|e| Error::Merge(e.to_string()))?;
        if let Some(m) = v.as_object_mut() {
            m.remove("status");
        }
        api.patch(
            &target,
            &PatchParams::apply(crate::profile_controller::MANAGER).force(),
            &Patch::Apply(&v),
        )
        .await
        .map_err(Error::Kube)?;
        tracing::info!(recording = %name, profile = %target, partials = ps.len(), "merged");
    }
    for p in &parts {
        match api.delete(&p.name_any(), &DeleteParams::default()).await {
            Ok(_) => {}
            Err(kube::Error::Api(e)) if e.code == 404 => {}
            Err(e) => return Err(Error::Kube(e)),
        }
    }
    Ok(())
}

/// Retry soon after an error.
pub fn error_policy(rec: Arc<ProfileRecording>, err: &Error, _ctx: Arc<Context>) -> Action {
    tracing::warn!(recording = %rec.name_any(), error = %err, "reconcile failed");
    Action::requeue(Duration::from_secs(5))
}

/// Run the controller: recordings, re-checked when partial profiles appear.
pub async fn run(client: Client, metrics: Arc<Metrics>) {
    let recs: Api<ProfileRecording> = Api::all(client.clone());
    let profiles: Api<SeccompProfile> = Api::all(client.clone());
    let ctx = Arc::new(Context { client, metrics });
    Controller::new(recs, watcher::Config::default())
        .watches(
            profiles,
            watcher::Config::default().labels(LABEL_RECORDING),
            |p: SeccompProfile| {
                let ns = p.namespace()?;
                let rec = p.labels().get(LABEL_RECORDING)?.clone();
                Some(kube::runtime::reflector::ObjectRef::new(&rec).within(&ns))
            },
        )
        .shutdown_on_signal()
        .run(reconcile, error_policy, ctx)
        .for_each(|_| async {})
        .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allow(names: &[&str]) -> crds::model::SeccompDocument {
        crds::model::SeccompDocument::allowlist(names.iter().map(|s| s.to_string()))
    }

    fn allowed(d: &crds::model::SeccompDocument) -> Vec<String> {
        let mut v: Vec<String> = d.syscalls.iter().flat_map(|r| r.names.clone()).collect();
        v.sort();
        v
    }

    #[test]
    fn merging_is_idempotent_and_a_late_partial_only_adds() {
        let a = allow(&["read", "mkdir"]);
        let b = allow(&["read", "symlink"]);
        let first = merged_document(None, &[&a], Arch::X86_64).unwrap();
        assert_eq!(allowed(&first), ["mkdir", "read"]);
        // The same partial merged again: the same document.
        let again = merged_document(Some(&first), &[&a], Arch::X86_64).unwrap();
        assert_eq!(again, first);
        // A partial from another node after the merge: the union, never fewer syscalls.
        let late = merged_document(Some(&first), &[&b], Arch::X86_64).unwrap();
        assert_eq!(allowed(&late), ["mkdir", "read", "symlink"]);
        let both = merged_document(None, &[&a, &b], Arch::X86_64).unwrap();
        assert_eq!(late, both);
        // And merging that result with nothing new keeps it.
        let settled = merged_document(Some(&late), &[], Arch::X86_64).unwrap();
        assert_eq!(settled, late);
    }

    #[test]
    fn selectors_become_query_strings() {
        let sel: LabelSelector = serde_json::from_value(serde_json::json!({
            "matchLabels": {"app": "web"},
            "matchExpressions": [{"key": "tier", "operator": "In", "values": ["a", "b"]}, {"key": "canary", "operator": "DoesNotExist"}]
        }))
        .unwrap();
        assert_eq!(selector_string(&sel), "app=web,tier in (a,b),!canary");
        assert_eq!(merged_name("rec", "nginx"), "rec-nginx");
    }

    #[test]
    fn logs_recordings_say_when_their_namespace_lacks_the_binding_label() {
        let off = binding_webhook_condition("shop", &BTreeMap::new(), Some(3));
        assert_eq!(
            (off.status.as_str(), off.reason.as_str()),
            ("False", "NamespaceNotLabelled")
        );
        assert!(
            off.message
                .contains("label namespace shop with seccomp-operator.dev/binding=enabled"),
            "{}",
            off.message
        );
        let labels = BTreeMap::from([(crds::LABEL_BINDING.to_owned(), "enabled".to_owned())]);
        let on = binding_webhook_condition("shop", &labels, Some(3));
        assert_eq!(on.status, "True");
        // The transition time moves only when the status changes.
        let mut conds = vec![off.clone()];
        let mut later = off.clone();
        later.last_transition_time = Time(k8s_openapi::jiff::Timestamp::from_second(5).unwrap());
        set_condition(&mut conds, later);
        assert_eq!(conds.len(), 1);
        assert_eq!(conds[0].last_transition_time, off.last_transition_time);
        set_condition(&mut conds, on.clone());
        assert_eq!(
            (conds[0].status.as_str(), &conds[0].last_transition_time),
            ("True", &on.last_transition_time)
        );
    }

    #[test]
    fn logs_recordings_get_an_owned_log_all_profile() {
        let rec: ProfileRecording = serde_json::from_value(serde_json::json!({
            "apiVersion": "seccomp-operator.dev/v1alpha1", "kind": "ProfileRecording",
            "metadata": {"name": "web", "namespace": "shop", "uid": "u-1"},
            "spec": {"recorder": "Logs", "podSelector": {"matchLabels": {"app": "web"}}}
        }))
        .unwrap();
        let p = audit_log_profile(&rec);
        assert_eq!(p.name_any(), "web.log");
        assert_eq!(p.namespace().as_deref(), Some("shop"));
        assert_eq!(p.spec.document.default_action, crds::model::Action::Log);
        assert!(p.spec.document.syscalls.is_empty());
        assert_eq!(p.labels()[LABEL_AUDIT_LOG_FOR], "web");
        let owner = &p.owner_references()[0];
        assert_eq!((owner.uid.as_str(), owner.controller), ("u-1", Some(true)));
        // never taken for a recording's output
        assert!(p.labels().get(LABEL_RECORDING).is_none());
    }
}
