//! The ProfileBinding controller: each binding's status says how many live pods it changed
//! (pods the binding webhook annotated) and whether the bound profile exists. Reconciled when
//! the binding changes, when its profile appears, changes or goes, and when the users of its
//! profile change (a pod it bound started or ended); never polled.

use crate::pods::index::PodIndex;
use crate::{Error, Result};
use crds::apply::{apply_status, OPERATOR};
use crds::{ProfileBinding, ProfileBindingStatus, SeccompProfile};
use futures::StreamExt;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::{ObjectRef, ReflectHandle, Store};
use kube::{Api, Client, ResourceExt};
use std::sync::{Arc, RwLock};
use std::time::Duration;

/// Shared state.
pub struct Context {
    /// API client.
    pub client: Client,
    /// The shared SeccompProfile store.
    pub profiles: Store<SeccompProfile>,
    /// Pods by the binding that bound them.
    pub index: Arc<RwLock<PodIndex>>,
    /// Open while this replica leads.
    pub gate: crate::runtime::leader::Gate,
}

/// The status `b` should have: `bound` live pods, its profile existing or not. The
/// transition time of `Ready` moves only when its status does.
pub fn desired_status(b: &ProfileBinding, exists: bool, bound: u32) -> ProfileBindingStatus {
    let ns = b.namespace().unwrap_or_default();
    let name = &b.spec.profile_ref.name;
    let invalid = b
        .spec
        .pod_selector
        .as_ref()
        .and_then(|sel| crds::parse_selector(sel).err());
    let (status, reason, message) = if let Some(e) = invalid {
        (
            "False",
            "InvalidSelector",
            format!("spec.podSelector: {e}; the binding binds no pod until it is fixed"),
        )
    } else if exists {
        (
            "True",
            "ProfileFound",
            format!("binds SeccompProfile {ns}/{name}"),
        )
    } else {
        (
            "False",
            "ProfileNotFound",
            format!("SeccompProfile {ns}/{name} does not exist; pods it binds are rejected by the install gate"),
        )
    };
    let now = Time(k8s_openapi::jiff::Timestamp::now());
    let mut conditions = vec![Condition {
        type_: "Ready".into(),
        status: status.into(),
        reason: reason.into(),
        message,
        observed_generation: b.metadata.generation,
        last_transition_time: now.clone(),
    }];
    let old = b.status.as_ref().map(|s| &s.conditions[..]).unwrap_or(&[]);
    crate::runtime::conditions::carry_transition_times(&mut conditions, old, &now);
    ProfileBindingStatus {
        bound_pods: bound,
        conditions,
    }
}

/// Reconcile one binding.
pub async fn reconcile(b: Arc<ProfileBinding>, ctx: Arc<Context>) -> Result<Action> {
    if !ctx.gate.leads() {
        return Ok(Action::await_change());
    }
    let ns = b.namespace().ok_or(Error::MissingNamespace)?;
    let key = format!("{ns}/{}", b.name_any());
    let bound = ctx
        .index
        .read()
        .map_err(|_| Error::Poisoned)?
        .bound_count(&key) as u32;
    let exists = ctx
        .profiles
        .get(&ObjectRef::new(&b.spec.profile_ref.name).within(&ns))
        .is_some();
    let status = desired_status(&b, exists, bound);
    if b.status.as_ref() != Some(&status) {
        let api = Api::<ProfileBinding>::namespaced(ctx.client.clone(), &ns);
        apply_status(&api, OPERATOR, &b.name_any(), &status)
            .await
            .map_err(Error::Kube)?;
    }
    // A safety net only: every change that moves the status triggers a reconcile.
    Ok(Action::requeue(Duration::from_secs(300)))
}

/// Retry soon after an error.
pub fn error_policy(b: Arc<ProfileBinding>, err: &Error, _ctx: Arc<Context>) -> Action {
    tracing::warn!(binding = %b.name_any(), error = %seccomp_profile::error::chain(&err), "binding status update failed");
    Action::requeue(Duration::from_secs(5))
}

/// The bindings in `ns` that bind profile `name`.
fn bindings_of(
    bindings: &Store<ProfileBinding>,
    ns: &str,
    name: &str,
) -> Vec<ObjectRef<ProfileBinding>> {
    bindings
        .state()
        .iter()
        .filter(|b| b.namespace().as_deref() == Some(ns) && b.spec.profile_ref.name == name)
        .map(|b| ObjectRef::from_obj(&**b))
        .collect()
}

/// What the binding controller is built from.
pub struct Inputs {
    /// The shared ProfileBinding store and a subscription to its events.
    pub bindings: Store<ProfileBinding>,
    /// See `bindings`.
    pub events: ReflectHandle<ProfileBinding>,
    /// A subscription to SeccompProfile events.
    pub profile_events: ReflectHandle<SeccompProfile>,
    /// Profiles whose users changed.
    pub pod_changes: crate::pods::watch::Changes,
    /// Open while this replica leads.
    pub gate: crate::runtime::leader::Gate,
    /// Where the loop proves it runs.
    pub watchdog: Arc<crate::runtime::watchdog::Watchdog>,
}

/// Run the controller until shutdown.
pub async fn run(
    client: Client,
    profiles: Store<SeccompProfile>,
    index: Arc<RwLock<PodIndex>>,
    inputs: Inputs,
) {
    let Inputs {
        bindings,
        events,
        profile_events,
        pod_changes,
        gate,
        watchdog,
    } = inputs;
    watchdog.beat("bindings");
    let (by_profile, by_pods) = (bindings.clone(), bindings.clone());
    let pod_triggers = pod_changes.into_stream().flat_map(move |p| {
        let ns = p.namespace.clone().unwrap_or_default();
        futures::stream::iter(bindings_of(&by_pods, &ns, &p.name))
    });
    let ctx = Arc::new(Context {
        client,
        profiles,
        index,
        gate: gate.clone(),
    });
    Controller::for_shared_stream(events, bindings)
        .reconcile_all_on(gate.became_leader())
        .reconcile_on(pod_triggers)
        .reconcile_on(crate::runtime::watchdog::ticks())
        .watches_shared_stream(profile_events, move |p: Arc<SeccompProfile>| {
            let ns = p.namespace().unwrap_or_default();
            bindings_of(&by_profile, &ns, &p.name_any())
        })
        .shutdown_on_signal()
        .run(reconcile, error_policy, ctx)
        .for_each(|_| {
            watchdog.beat("bindings");
            async {}
        })
        .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn binding(status: Option<serde_json::Value>) -> ProfileBinding {
        let mut v = serde_json::json!({"apiVersion": "seccomp-operator.dev/v1alpha1", "kind": "ProfileBinding",
            "metadata": {"name": "bb", "namespace": "shop", "generation": 2},
            "spec": {"profileRef": {"kind": "SeccompProfile", "name": "web"}, "image": "*"}});
        if let Some(s) = status {
            v["status"] = s;
        }
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn status_counts_bound_pods_and_says_whether_the_profile_exists() {
        let missing = desired_status(&binding(None), false, 0);
        let c = &missing.conditions[0];
        assert_eq!(
            (c.status.as_str(), c.reason.as_str()),
            ("False", "ProfileNotFound")
        );
        assert!(
            c.message.contains("shop/web does not exist"),
            "{}",
            c.message
        );
        let found = desired_status(&binding(None), true, 3);
        assert_eq!(found.bound_pods, 3);
        assert_eq!(found.conditions[0].reason, "ProfileFound");
        assert_eq!(found.conditions[0].observed_generation, Some(2));
        // The same state again keeps the transition time: no write when nothing changed.
        let b = binding(Some(serde_json::to_value(&found).unwrap()));
        assert_eq!(Some(&desired_status(&b, true, 3)), b.status.as_ref());
        assert_ne!(Some(&desired_status(&b, true, 4)), b.status.as_ref());
    }

    #[test]
    fn an_invalid_selector_is_reported_not_silently_matching_nothing() {
        let mut b = binding(None);
        b.spec.pod_selector = Some(
            serde_json::from_value(
                serde_json::json!({"matchExpressions": [{"key": "app", "operator": "Near"}]}),
            )
            .unwrap(),
        );
        let s = desired_status(&b, true, 0);
        let c = &s.conditions[0];
        assert_eq!(
            (c.status.as_str(), c.reason.as_str()),
            ("False", "InvalidSelector")
        );
        assert!(c.message.starts_with("spec.podSelector: "), "{}", c.message);
    }
}
