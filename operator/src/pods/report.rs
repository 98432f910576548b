//! Publishing the confinement report ([`crate::pods::confinement`]) while this replica
//! leads: the ConfigMap and the `UnconfinedContainer` Events.

use crate::nodes::reports::{seccomp_default_nodes, NodeReports};
use crate::pods::confinement::{configmap_data, CONFIGMAP, MAX_EVENTS_PER_PERIOD, PERIOD};
use crate::pods::index::PodIndex;
use crate::runtime::leader::Gate;
use kube::ResourceExt;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock};

/// Whether an operator profile is in `Complain` mode now, from the profile cache.
pub fn complain_lookup(
    profiles: kube::runtime::reflector::Store<crds::SeccompProfile>,
) -> impl Fn(&crds::localhost::ProfileId) -> bool + Send + Sync {
    move |(ns, name)| {
        profiles
            .get(&kube::runtime::reflector::ObjectRef::new(name).within(ns))
            .is_some_and(|p| p.spec.mode == seccomp_profile::Mode::Complain)
    }
}

/// Publish, while this replica leads: the ConfigMap when the counts changed, and an
/// `UnconfinedContainer` Event on each new policy-breaking pod of a `warn` namespace.
pub async fn run(
    client: kube::Client,
    namespace: String,
    index: Arc<RwLock<PodIndex>>,
    reports: Arc<RwLock<NodeReports>>,
    recorder: kube::runtime::events::Recorder,
    gate: Gate,
    profiles: kube::runtime::reflector::Store<crds::SeccompProfile>,
) {
    let is_complain = complain_lookup(profiles);
    use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
    let configmaps: kube::Api<ConfigMap> = kube::Api::namespaced(client.clone(), &namespace);
    let namespaces: kube::Api<Namespace> = kube::Api::all(client);
    let mut written: Option<BTreeMap<String, String>> = None;
    let mut tick = tokio::time::interval(PERIOD);
    loop {
        tick.tick().await;
        // One lock at a time (never the reports' inside the index's).
        let defaulting = seccomp_default_nodes(&reports.read().unwrap_or_else(|p| p.into_inner()));
        let (data, new) = {
            let mut idx = index.write().unwrap_or_else(|p| p.into_inner());
            let t = idx.confinement_mut();
            (
                configmap_data(&t.per_namespace(&defaulting, &is_complain)),
                t.take_new(MAX_EVENTS_PER_PERIOD),
            )
        };
        if !gate.leads() {
            written = None;
            continue;
        }
        if written.as_ref() != Some(&data) {
            let cm = ConfigMap {
                metadata: kube::api::ObjectMeta {
                    name: Some(CONFIGMAP.into()),
                    namespace: Some(namespace.clone()),
                    ..Default::default()
                },
                data: Some(data.clone()),
                ..Default::default()
            };
            match crds::apply::apply_object(&configmaps, crds::apply::OPERATOR, &cm).await {
                Ok(_) => written = Some(data),
                Err(e) => {
                    tracing::warn!(error = %e, "writing the confinement ConfigMap failed; retrying")
                }
            }
        }
        // Events only in warn namespaces: one read of each namespace concerned per period.
        let mut modes: HashMap<String, bool> = HashMap::new();
        for v in new {
            let warn = match modes.get(&v.namespace) {
                Some(w) => *w,
                None => {
                    let w = namespaces
                        .get_opt(&v.namespace)
                        .await
                        .ok()
                        .flatten()
                        .is_some_and(|n| {
                            n.labels().get(crds::LABEL_POLICY).map(String::as_str) == Some("warn")
                        });
                    modes.insert(v.namespace.clone(), w);
                    w
                }
            };
            if !warn {
                continue;
            }
            let reference = k8s_openapi::api::core::v1::ObjectReference {
                api_version: Some("v1".into()),
                kind: Some("Pod".into()),
                namespace: Some(v.namespace.clone()),
                name: Some(v.name.clone()),
                uid: Some(v.uid.clone()),
                ..Default::default()
            };
            let ev = kube::runtime::events::Event {
                type_: kube::runtime::events::EventType::Warning,
                reason: "UnconfinedContainer".into(),
                note: Some(seccomp_profile::limits::truncate(
                    &format!(
                        "seccomp-operator profile policy (namespace labelled {}=warn): {}",
                        crds::LABEL_POLICY,
                        v.violations.join("; ")
                    ),
                    1024,
                )),
                action: "Admit".into(),
                secondary: None,
            };
            if let Err(e) = recorder.publish(&ev, &reference).await {
                tracing::warn!(error = %e, pod = %format!("{}/{}", v.namespace, v.name), "publishing an UnconfinedContainer event failed");
            }
        }
    }
}
