//! Webhook decisions on AdmissionReview fixtures: one file per webhook, the shared fixtures
//! here.

use super::*;
use kube::core::admission::AdmissionResponse;
use seccomp_profile::Policy;
use serde_json::{json, Value};
use std::collections::BTreeSet;

mod agents;
mod binding;
mod gating;
mod isolating;
mod policies;
mod profiles;
mod requests;

#[derive(Default)]
struct View {
    profiles: Vec<Arc<SeccompProfile>>,
    bindings: Vec<Arc<ProfileBinding>>,
    recordings: Vec<Arc<ProfileRecording>>,
    pods: Vec<Arc<Pod>>,
    /// Nodes whose agent reported `seccompDefault`, and what.
    nodes: Vec<(String, bool)>,
}

impl ClusterView for View {
    fn profile(&self, namespace: &str, name: &str) -> Option<Arc<SeccompProfile>> {
        self.profiles
            .iter()
            .find(|p| p.namespace().as_deref() == Some(namespace) && p.name_any() == name)
            .cloned()
    }
    fn bindings(&self, namespace: &str) -> Vec<Arc<ProfileBinding>> {
        self.bindings
            .iter()
            .filter(|b| b.namespace().as_deref() == Some(namespace))
            .cloned()
            .collect()
    }
    fn recordings(&self, namespace: &str) -> Vec<Arc<ProfileRecording>> {
        self.recordings
            .iter()
            .filter(|r| r.namespace().as_deref() == Some(namespace))
            .cloned()
            .collect()
    }
    fn pod(&self, namespace: &str, name: &str) -> Option<Arc<Pod>> {
        self.pods
            .iter()
            .find(|p| p.namespace().as_deref() == Some(namespace) && p.name_any() == name)
            .cloned()
    }
    fn node_default(&self, node: &str) -> crds::confinement::NodeDefault {
        crds::confinement::NodeDefault::from_reported(
            self.nodes.iter().find(|(n, _)| n == node).map(|(_, d)| *d),
        )
    }
}

fn profile(ns: &str, name: &str, phase: &str, extra_meta: Value) -> Arc<SeccompProfile> {
    let mut meta = json!({"name": name, "namespace": ns});
    meta.as_object_mut()
        .unwrap()
        .extend(extra_meta.as_object().cloned().unwrap_or_default());
    Arc::new(
        serde_json::from_value(json!({
            "apiVersion": "seccomp-operator.dev/v1alpha1", "kind": "SeccompProfile",
            "metadata": meta,
            "spec": {"defaultAction": "SCMP_ACT_ERRNO"},
            "status": {"phase": phase, "installedNodes": "1/2",
                       "conditions": [{"type": "Ready", "status": "False", "reason": "x", "message": "node a: disk full", "lastTransitionTime": "2026-01-01T00:00:00Z"}]}
        }))
        .unwrap(),
    )
}

fn binding(ns: &str, name: &str, spec: Value) -> Arc<ProfileBinding> {
    Arc::new(
        serde_json::from_value(json!({
            "apiVersion": "seccomp-operator.dev/v1alpha1", "kind": "ProfileBinding",
            "metadata": {"name": name, "namespace": ns}, "spec": spec
        }))
        .unwrap(),
    )
}

fn review(op: &str, ns: &str, pod: Value) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {
            "uid": "705ab4f5-6393-11e8-b7cc-42010a800002",
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "requestKind": {"group": "", "version": "v1", "kind": "Pod"},
            "requestResource": {"group": "", "version": "v1", "resource": "pods"},
            "name": "p", "namespace": ns, "operation": op,
            "userInfo": {"username": "alice"},
            "object": pod, "oldObject": null, "dryRun": false,
            "options": {"apiVersion": "meta.k8s.io/v1", "kind": "CreateOptions"}
        }
    }))
    .unwrap()
}

fn pod(ns: &str, labels: Value, spec: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": ns, "labels": labels}, "spec": spec})
}

fn localhost(path: &str) -> Value {
    json!({"seccompProfile": {"type": "Localhost", "localhostProfile": path}})
}

fn req(body: &[u8]) -> AdmissionRequest<DynamicObject> {
    parse_review(body).unwrap()
}

fn patch_of(resp: &AdmissionResponse) -> Option<Value> {
    resp.patch
        .as_ref()
        .map(|p| serde_json::from_slice(p).unwrap())
}

fn no_shared() -> BTreeSet<String> {
    BTreeSet::new()
}

/// A CREATE of a pod in `shop` whose container `a` uses `value`, through the field or the
/// legacy container annotation.
fn pod_using(value: &str, legacy: bool) -> Vec<u8> {
    let p = if legacy {
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "shop",
            "annotations": {"container.seccomp.security.alpha.kubernetes.io/a": format!("localhost/{value}")}},
            "spec": {"containers": [{"name": "a", "image": "x"}]}})
    } else {
        pod(
            "shop",
            json!({}),
            json!({"containers": [{"name": "a", "image": "x", "securityContext": localhost(value)}]}),
        )
    };
    review("CREATE", "shop", p)
}

fn recording(ns: &str, name: &str, spec: Value, meta: Value) -> Arc<ProfileRecording> {
    let mut m = json!({"name": name, "namespace": ns, "creationTimestamp": two_minutes_ago()});
    m.as_object_mut()
        .unwrap()
        .extend(meta.as_object().cloned().unwrap_or_default());
    Arc::new(
        serde_json::from_value(json!({
            "apiVersion": "seccomp-operator.dev/v1alpha1", "kind": "ProfileRecording",
            "metadata": m, "spec": spec
        }))
        .unwrap(),
    )
}

/// A review of any kind, subresource and old object.
fn review_of(
    kind: (&str, &str),
    sub: Option<&str>,
    op: &str,
    ns: &str,
    obj: Value,
    old: Value,
) -> Vec<u8> {
    let (group, kind) = kind;
    let gvk = json!({"group": group, "version": if group.is_empty() { "v1" } else { "v1alpha1" }, "kind": kind});
    let mut request = json!({
        "uid": "705ab4f5-6393-11e8-b7cc-42010a800003",
        "kind": gvk, "requestKind": gvk,
        "resource": {"group": group, "version": "v1", "resource": "x"},
        "name": "p", "namespace": ns, "operation": op,
        "userInfo": {"username": "mallory"},
        "object": obj, "oldObject": old, "dryRun": false
    });
    if let Some(sub) = sub {
        request["subResource"] = sub.into();
    }
    serde_json::to_vec(&json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request})).unwrap()
}

fn profile_object(spec: Value) -> Value {
    json!({"apiVersion": "seccomp-operator.dev/v1alpha1", "kind": "SeccompProfile",
           "metadata": {"name": "p", "namespace": "shop"}, "spec": spec})
}

fn profile_review(op: &str, spec: Value, old: Option<Value>) -> Vec<u8> {
    review_of(
        ("seccomp-operator.dev", "SeccompProfile"),
        None,
        op,
        "shop",
        profile_object(spec),
        old.map(profile_object).unwrap_or(Value::Null),
    )
}

/// A creation time recent enough for a recording without a duration to be active.
fn two_minutes_ago() -> String {
    (k8s_openapi::jiff::Timestamp::now() - k8s_openapi::jiff::SignedDuration::from_secs(120))
        .to_string()
}

fn agent_pod(name: &str, uid: &str, node: &str) -> Arc<Pod> {
    Arc::new(
        serde_json::from_value(json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": "seccomp-operator", "uid": uid},
            "spec": {"nodeName": node, "containers": [{"name": "agent", "image": "x"}]}}))
        .unwrap(),
    )
}

const AGENT: &str = "system:serviceaccount:seccomp-operator:seccomp-node-agent";

const RECORDER: &str = "system:serviceaccount:seccomp-operator:seccomp-node-recorder";

fn report(name: &str, recording: &str, node: &str, label: &str) -> Value {
    json!({"apiVersion": "seccomp-operator.dev/v1alpha1", "kind": "RecordingReport",
           "metadata": {"name": name, "namespace": "shop", "labels": {"seccomp-operator.dev/node": label}},
           "spec": {"nodeName": node, "recording": recording}})
}

fn agent_review(
    obj: Value,
    group: &str,
    kind: &str,
    user: &str,
    claims: Option<(&str, &str)>,
) -> Vec<u8> {
    let mut body: Value = serde_json::from_slice(&review_of(
        (group, kind),
        None,
        "UPDATE",
        "",
        obj,
        Value::Null,
    ))
    .unwrap();
    let mut ui = json!({"username": user});
    if let Some((pod, uid)) = claims {
        ui["extra"] = json!({"authentication.kubernetes.io/pod-name": [pod], "authentication.kubernetes.io/pod-uid": [uid]});
    }
    body["request"]["userInfo"] = ui;
    serde_json::to_vec(&body).unwrap()
}

fn node_status(name: &str, spec_node: &str) -> Value {
    json!({"apiVersion": "seccomp-operator.dev/v1alpha1", "kind": "SeccompNodeStatus",
           "metadata": {"name": name}, "spec": {"nodeName": spec_node}})
}

fn lease(name: &str, holder: &str, label: &str) -> Value {
    json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
           "metadata": {"name": name, "namespace": "seccomp-operator", "labels": {"seccomp-operator.dev/agent-node": label}},
           "spec": {"holderIdentity": holder}})
}

/// A CREATE in `shop` of a pod with a native sidecar `proxy` (image `envoy:1`) that sets
/// `sidecar_sc`, and a container `app`.
fn pod_with_sidecar(sidecar_sc: Value) -> Vec<u8> {
    let mut proxy = json!({"name": "proxy", "image": "envoy:1", "restartPolicy": "Always"});
    if !sidecar_sc.is_null() {
        proxy["securityContext"] = sidecar_sc;
    }
    review(
        "CREATE",
        "shop",
        pod(
            "shop",
            json!({"app": "web"}),
            json!({"initContainers": [proxy], "containers": [{"name": "app", "image": "app:1", "securityContext": localhost("operator/shop/web.json")}]}),
        ),
    )
}
