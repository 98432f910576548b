//! Any bytes as the body of an AdmissionReview sent to the webhooks: decoding and every
//! webhook's decision never panic, whatever the object inside claims to be.
#![no_main]

use crds::{ProfileBinding, ProfileRecording, SeccompProfile};
use k8s_openapi::api::core::v1::Pod;
use libfuzzer_sys::fuzz_target;
use operator::webhook::{self, ClusterView};
use std::collections::BTreeSet;
use std::sync::Arc;

/// A cluster with one Installed profile `t/p` and nothing else.
struct View(Arc<SeccompProfile>);

impl ClusterView for View {
    fn profile(&self, namespace: &str, name: &str) -> Option<Arc<SeccompProfile>> {
        (namespace == "t" && name == "p").then(|| self.0.clone())
    }
    fn bindings(&self, _: &str) -> Vec<Arc<ProfileBinding>> {
        Vec::new()
    }
    fn recordings(&self, _: &str) -> Vec<Arc<ProfileRecording>> {
        Vec::new()
    }
    fn pod(&self, _: &str, _: &str) -> Option<Arc<Pod>> {
        None
    }
    fn node_default(&self, _: &str) -> crds::confinement::NodeDefault {
        crds::confinement::NodeDefault::Unknown
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(req) = webhook::parse_review(data) else {
        return;
    };
    let view = View(Arc::new(installed_profile()));
    let shared: BTreeSet<String> = ["shared".to_string()].into();
    let _ = webhook::gate(&req, &view, &shared);
    let _ = webhook::gated_profiles(&req, &shared);
    let _ = webhook::isolation(&req, &shared);
    let _ = webhook::bind(&req, &view);
    let _ = webhook::profile(&req, &Default::default());
    let _ = webhook::agent_writes::agent_writes(
        &req,
        &view,
        &["system:serviceaccount:seccomp-operator:seccomp-node-agent".to_string()],
        "seccomp-operator",
    );
});

fn installed_profile() -> SeccompProfile {
    serde_json::from_str(
        r#"{"apiVersion":"seccomp-operator.dev/v1alpha1","kind":"SeccompProfile",
        "metadata":{"name":"p","namespace":"t"},"spec":{"defaultAction":"SCMP_ACT_ERRNO"},
        "status":{"phase":"Installed","installedNodes":"1/1"}}"#,
    )
    .expect("the fixture parses")
}
