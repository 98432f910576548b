//! Webhook decisions on AdmissionReview fixtures.

use super::*;
use kube::core::admission::AdmissionResponse;
use seccomp_profile::Policy;
use serde_json::{json, Value};
use std::collections::BTreeSet;

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

#[test]
fn gate_allows_installed_and_unrelated_pods() {
    let view = View {
        profiles: vec![profile("shop", "web", "Installed", json!({}))],
        ..Default::default()
    };
    let body = review(
        "CREATE",
        "shop",
        pod(
            "shop",
            json!({}),
            json!({"containers": [{"name": "a", "image": "x", "securityContext": localhost("operator/shop/web.json")}]}),
        ),
    );
    assert!(gate(&req(&body), &view, &no_shared()).allowed);
    let body = review(
        "CREATE",
        "shop",
        pod(
            "shop",
            json!({}),
            json!({"containers": [{"name": "a", "image": "x"}]}),
        ),
    );
    assert!(gate(&req(&body), &view, &no_shared()).allowed);
    // Profiles outside the operator's directory are not its business.
    let body = review(
        "CREATE",
        "shop",
        pod(
            "shop",
            json!({}),
            json!({"securityContext": localhost("profiles/audit.json"), "containers": [{"name": "a", "image": "x"}]}),
        ),
    );
    assert!(gate(&req(&body), &view, &no_shared()).allowed);
}

#[test]
fn gate_denies_missing_uninstalled_deleting_disabled_and_broken_profiles() {
    let view = View {
        profiles: vec![
            profile("shop", "installing", "Installing", json!({})),
            profile("shop", "off", "Disabled", json!({})),
            profile("shop", "bad", "Error", json!({})),
            profile(
                "shop",
                "going",
                "Installed",
                json!({"deletionTimestamp": "2026-01-01T00:00:00Z", "finalizers": ["x"]}),
            ),
        ],
        ..Default::default()
    };
    for (path, expect) in [
        (
            "operator/shop/nope.json",
            "SeccompProfile shop/nope does not exist",
        ),
        (
            "operator/shop/installing.json",
            "is not installed on every node yet (1/2 nodes)",
        ),
        (
            "operator/shop/off.json",
            "SeccompProfile shop/off is disabled",
        ),
        ("operator/shop/bad.json", "is in Error: node a: disk full"),
        ("operator/shop/going.json", "is being deleted"),
    ] {
        let body = review(
            "CREATE",
            "shop",
            pod(
                "shop",
                json!({}),
                json!({"initContainers": [{"name": "init", "image": "x", "securityContext": localhost(path)}], "containers": [{"name": "a", "image": "x"}]}),
            ),
        );
        let r = gate(&req(&body), &view, &no_shared());
        assert!(!r.allowed, "{path}");
        assert!(
            r.result.message.contains(expect),
            "{path}: {}",
            r.result.message
        );
        assert!(
            r.result
                .message
                .contains(&format!("initContainer init uses {path}")),
            "{}",
            r.result.message
        );
    }
}

#[test]
fn a_pod_created_with_the_scheduling_gate_waits_instead_of_being_refused() {
    let view = View::default();
    let gates = json!([{"name": "other.example/gate"}, {"name": crds::SCHEDULING_GATE}]);
    let spec = |gates: Value, node: Option<&str>| {
        let mut s = json!({"containers": [{"name": "a", "image": "x", "securityContext": localhost("operator/shop/nope.json")}]});
        if !gates.is_null() {
            s["schedulingGates"] = gates;
        }
        if let Some(n) = node {
            s["nodeName"] = json!(n);
        }
        s
    };
    // With the gate: admitted although the profile does not exist (what exists is held).
    let body = review(
        "CREATE",
        "shop",
        pod("shop", json!({}), spec(gates.clone(), None)),
    );
    assert!(gate(&req(&body), &view, &no_shared()).allowed);
    assert!(gate::waits_at_scheduling_gate(&req(&body)));
    // Another tenant's profile is refused even so.
    let mut other = pod("shop", json!({}), spec(gates, None));
    other["spec"]["containers"][0]["securityContext"] = localhost("operator/bank/web.json");
    assert!(!gate(&req(&review("CREATE", "shop", other)), &view, &no_shared()).allowed);
    // Without it, refused as before.
    let body = review(
        "CREATE",
        "shop",
        pod("shop", json!({}), spec(Value::Null, None)),
    );
    assert!(!gate(&req(&body), &view, &no_shared()).allowed);

    // The mutating half adds the gate: a new list, or one more entry.
    let r = add_gate(&req(&body));
    assert_eq!(
        patch_of(&r),
        Some(
            json!([{"op": "add", "path": "/spec/schedulingGates", "value": [{"name": crds::SCHEDULING_GATE}]}])
        )
    );
    let body = review(
        "CREATE",
        "shop",
        pod(
            "shop",
            json!({}),
            spec(json!([{"name": "other.example/gate"}]), None),
        ),
    );
    assert_eq!(
        patch_of(&add_gate(&req(&body))),
        Some(
            json!([{"op": "add", "path": "/spec/schedulingGates/-", "value": {"name": crds::SCHEDULING_GATE}}])
        )
    );
    // Not twice, not on a pod bound to a node (the API server refuses gates there), not on
    // a pod without operator profiles, not on an update.
    for body in [
        review(
            "CREATE",
            "shop",
            pod(
                "shop",
                json!({}),
                spec(json!([{"name": crds::SCHEDULING_GATE}]), None),
            ),
        ),
        review(
            "CREATE",
            "shop",
            pod("shop", json!({}), spec(Value::Null, Some("node-a"))),
        ),
        review(
            "CREATE",
            "shop",
            pod(
                "shop",
                json!({}),
                json!({"containers": [{"name": "a", "image": "x", "securityContext": localhost("profiles/x.json")}]}),
            ),
        ),
        review(
            "UPDATE",
            "shop",
            pod("shop", json!({}), spec(Value::Null, None)),
        ),
    ] {
        assert_eq!(patch_of(&add_gate(&req(&body))), None);
    }
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

#[test]
fn every_spelling_of_another_tenants_profile_is_refused_by_isolation_and_the_gate() {
    let view = View {
        profiles: vec![
            profile("shop", "web", "Installed", json!({})),
            profile("bank", "vault", "Error", json!({})),
        ],
        ..Default::default()
    };
    for legacy in [false, true] {
        for v in [
            "operator/bank/vault.json",
            "./operator/bank/vault.json",
            "operator//bank/vault.json",
            "/operator/bank/vault.json",
            "x/../operator/bank/vault.json",
            "operator/shop/../bank/vault.json",
        ] {
            let body = pod_using(v, legacy);
            let r = isolation(&req(&body), &no_shared());
            assert!(!r.allowed, "{v} (legacy {legacy}) admitted by isolation");
            assert!(
                r.result
                    .message
                    .contains("may only use profiles of namespace shop"),
                "{}",
                r.result.message
            );
            assert_eq!(
                r.result
                    .message
                    .contains("has no effect since Kubernetes 1.27"),
                legacy,
                "{}",
                r.result.message
            );
            let g = gate(&req(&body), &view, &no_shared());
            if legacy {
                // The annotation does nothing: the gate neither waits for nor refuses it
                // (isolation does the refusing).
                assert!(g.allowed, "{v}: {}", g.result.message);
                assert!(gated_profiles(&req(&body), &no_shared()).is_empty());
                continue;
            }
            assert!(!g.allowed, "{v} admitted by the gate");
            // The gate does not tell whether bank/vault exists or what state it is in.
            assert!(
                g.result
                    .message
                    .contains("not allowed for pods of namespace shop"),
                "{}",
                g.result.message
            );
            assert!(
                !g.result.message.contains("Error") && !g.result.message.contains("exist"),
                "{}",
                g.result.message
            );
        }
        // Own profile, spelled oddly: allowed, and the gate checks the real profile.
        let body = pod_using("./operator//shop/web.json", legacy);
        assert!(isolation(&req(&body), &no_shared()).allowed);
        assert!(gate(&req(&body), &view, &no_shared()).allowed);
        // Escapes and malformed operator paths: refused by isolation, naming the container or
        // annotation; by the gate too when in a field.
        for v in [
            "../operator/shop/web.json",
            "./operator/shop/a/web.json",
            "operator/shop/web.yaml",
        ] {
            let body = pod_using(v, legacy);
            let r = isolation(&req(&body), &no_shared());
            assert!(!r.allowed, "{v}");
            let place = if legacy {
                "annotation container.seccomp.security.alpha.kubernetes.io/a"
            } else {
                "container a"
            };
            assert!(
                r.result.message.contains(&format!("{place} uses {v}")),
                "{}",
                r.result.message
            );
            assert_eq!(
                gate(&req(&body), &view, &no_shared()).allowed,
                legacy,
                "{v} (legacy {legacy})"
            );
        }
    }
    // A nonexistent profile of another namespace reads the same as an existing one.
    let missing = gate(
        &req(&pod_using("operator/bank/nope.json", false)),
        &view,
        &no_shared(),
    );
    let existing = gate(
        &req(&pod_using("operator/bank/vault.json", false)),
        &view,
        &no_shared(),
    );
    assert_eq!(
        missing.result.message.replace("nope", "X"),
        existing.result.message.replace("vault", "X")
    );
}

#[test]
fn isolation_allows_own_and_shared_namespaces_only() {
    let shared = BTreeSet::from(["seccomp-operator".to_string()]);
    let ok = review(
        "CREATE",
        "shop",
        pod(
            "shop",
            json!({}),
            json!({"containers": [
        {"name": "a", "image": "x", "securityContext": localhost("operator/shop/web.json")},
        {"name": "b", "image": "x", "securityContext": localhost("operator/seccomp-operator/base.json")}]}),
        ),
    );
    assert!(isolation(&req(&ok), &shared).allowed);
    let bad = review(
        "UPDATE",
        "shop",
        pod(
            "shop",
            json!({}),
            json!({"containers": [{"name": "a", "image": "x", "securityContext": localhost("operator/bank/vault.json")}]}),
        ),
    );
    let r = isolation(&req(&bad), &shared);
    assert!(!r.allowed);
    assert_eq!(
        r.result.message,
        "seccomp-operator tenant isolation: container a uses operator/bank/vault.json: a pod in namespace shop may only use profiles of namespace shop or of the shared namespaces (seccomp-operator)"
    );
    let weird = review(
        "CREATE",
        "shop",
        pod(
            "shop",
            json!({}),
            json!({"containers": [{"name": "a", "image": "x", "securityContext": localhost("operator/shop/../bank/x.json")}]}),
        ),
    );
    assert!(!isolation(&req(&weird), &shared).allowed);
    // Legacy annotations are refused too (defensively: they do nothing since 1.27).
    let ann = review(
        "CREATE",
        "shop",
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "shop", "annotations": {"seccomp.security.alpha.kubernetes.io/pod": "localhost/operator/bank/vault.json"}}, "spec": {"containers": [{"name": "a", "image": "x"}]}}),
    );
    assert!(!isolation(&req(&ann), &shared).allowed);
}

#[test]
fn binding_injects_by_image_and_selector() {
    let view = View {
        bindings: vec![
            binding(
                "shop",
                "any",
                json!({"profileRef": {"kind": "SeccompProfile", "name": "generic"}, "image": "*", "podSelector": {"matchLabels": {"tier": "web"}}}),
            ),
            binding(
                "shop",
                "busybox",
                json!({"profileRef": {"kind": "SeccompProfile", "name": "bb"}, "image": "localhost/busybox:1"}),
            ),
            binding(
                "other",
                "elsewhere",
                json!({"profileRef": {"kind": "SeccompProfile", "name": "x"}, "image": "*"}),
            ),
        ],
        ..Default::default()
    };
    let body = review(
        "CREATE",
        "shop",
        pod(
            "shop",
            json!({"tier": "web"}),
            json!({"containers": [
        {"name": "bb", "image": "localhost/busybox:1"},
        {"name": "app", "image": "app:2", "securityContext": {"runAsUser": 1000}},
        {"name": "own", "image": "app:2", "securityContext": localhost("operator/shop/mine.json")}]}),
        ),
    );
    let r = bind(&req(&body), &view);
    assert!(r.allowed);
    let patch = patch_of(&r).expect("a patch");
    assert_eq!(
        patch,
        json!([
            {"op": "add", "path": "/spec/containers/0/securityContext", "value": {"seccompProfile": {"type": "Localhost", "localhostProfile": "operator/shop/bb.json"}}},
            {"op": "add", "path": "/spec/containers/1/securityContext/seccompProfile", "value": {"type": "Localhost", "localhostProfile": "operator/shop/generic.json"}},
            {"op": "add", "path": "/metadata/annotations", "value": {"seccomp-operator.dev/bound-by": "busybox"}}
        ])
    );
    // selector does not match: only the exact-image binding applies
    let body = review(
        "CREATE",
        "shop",
        pod(
            "shop",
            json!({"tier": "db"}),
            json!({"containers": [{"name": "app", "image": "app:2"}]}),
        ),
    );
    assert!(patch_of(&bind(&req(&body), &view)).is_none());
    // a pod-level profile is the user's choice for every container
    let body = review(
        "CREATE",
        "shop",
        pod(
            "shop",
            json!({"tier": "web"}),
            json!({"securityContext": localhost("operator/shop/podwide.json"), "containers": [{"name": "app", "image": "app:2"}]}),
        ),
    );
    assert!(patch_of(&bind(&req(&body), &view)).is_none());
    // containerNames restricts
    let view = View {
        bindings: vec![binding(
            "shop",
            "named",
            json!({"profileRef": {"kind": "SeccompProfile", "name": "n"}, "image": "*", "containerNames": ["web"]}),
        )],
        ..Default::default()
    };
    let body = review(
        "CREATE",
        "shop",
        pod(
            "shop",
            json!({}),
            json!({"containers": [{"name": "sidecar", "image": "x"}, {"name": "web", "image": "y"}]}),
        ),
    );
    let p = patch_of(&bind(&req(&body), &view)).unwrap();
    assert_eq!(p[0]["path"], "/spec/containers/1/securityContext");
}

#[test]
fn malformed_and_unexpected_requests_never_panic() {
    let view = View::default();
    let shared = BTreeSet::new();
    let bodies: Vec<Vec<u8>> = vec![
        b"".to_vec(),
        b"not json".to_vec(),
        b"[]".to_vec(),
        b"{}".to_vec(),
        br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}"#.to_vec(),
        br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"1"}}"#
            .to_vec(),
        br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":17}"#.to_vec(),
        vec![0xff, 0xfe, 0x00],
    ];
    for b in &bodies {
        assert!(parse_review(b).is_err(), "{:?}", String::from_utf8_lossy(b));
    }
    // Parseable reviews with odd contents get an answer.
    let odd: Vec<Vec<u8>> = vec![
        // a pod whose spec is not an object
        review("CREATE", "shop", json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": "nope"})),
        // containers is not a list
        review("CREATE", "shop", json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {"containers": 3}})),
        // a seccomp profile that is a number
        review("CREATE", "shop", pod("shop", json!({}), json!({"containers": [{"name": "a", "image": "x", "securityContext": {"seccompProfile": 5}}]}))),
        // no object at all
        review("CREATE", "shop", Value::Null),
        // a delete
        review("DELETE", "shop", Value::Null),
        // not a pod
        serde_json::to_vec(&json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {
            "uid": "2", "kind": {"group": "apps", "version": "v1", "kind": "Deployment"},
            "resource": {"group": "apps", "version": "v1", "resource": "deployments"},
            "operation": "CREATE", "userInfo": {}, "object": {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"}}}})).unwrap(),
        // a pod with no spec
        review("CREATE", "shop", json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}})),
        // a localhostProfile that is not a string
        review("CREATE", "shop", pod("shop", json!({}), json!({"containers": [{"name": "a", "image": "x", "securityContext": {"seccompProfile": {"type": "Localhost", "localhostProfile": ["a"]}}}]}))),
    ];
    let mut denied = 0;
    for b in &odd {
        let r = req(b);
        let g = gate(&r, &view, &no_shared());
        let i = isolation(&r, &shared);
        let m = bind(&r, &view);
        assert!(m.allowed, "binding fails open");
        if !g.allowed {
            assert!(
                g.result.message.contains("cannot read the pod"),
                "{}",
                g.result.message
            );
            denied += 1;
        }
        assert_eq!(g.allowed, i.allowed);
    }
    assert!(denied >= 3, "malformed pods are denied with a reason");
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

#[test]
fn logs_recordings_put_selected_containers_under_the_log_profile() {
    let view = View {
        bindings: vec![binding(
            "shop",
            "any",
            json!({"profileRef": {"kind": "SeccompProfile", "name": "generic"}, "image": "*"}),
        )],
        recordings: vec![
            recording(
                "shop",
                "learn",
                json!({"recorder": "Logs", "podSelector": {"matchLabels": {"app": "web"}}, "containers": ["web"]}),
                json!({}),
            ),
            // Bpf recordings need no filter; ended and deleted ones no longer apply.
            recording(
                "shop",
                "ebpf",
                json!({"recorder": "Bpf", "podSelector": {}}),
                json!({}),
            ),
            recording(
                "shop",
                "expired",
                json!({"recorder": "Logs", "podSelector": {}, "durationSeconds": 60}),
                json!({}),
            ),
            recording(
                "shop",
                "going",
                json!({"recorder": "Logs", "podSelector": {}}),
                json!({"deletionTimestamp": "2026-01-01T00:05:00Z", "finalizers": ["x"]}),
            ),
        ],
        ..Default::default()
    };
    let body = review(
        "CREATE",
        "shop",
        pod(
            "shop",
            json!({"app": "web"}),
            json!({"containers": [
                {"name": "web", "image": "web:1"},
                {"name": "side", "image": "side:1"}]}),
        ),
    );
    let patch = patch_of(&bind(&req(&body), &view)).expect("a patch");
    assert_eq!(
        patch,
        json!([
            {"op": "add", "path": "/spec/containers/0/securityContext", "value": {"seccompProfile": {"type": "Localhost", "localhostProfile": "operator/shop/learn.log.json"}}},
            {"op": "add", "path": "/spec/containers/1/securityContext", "value": {"seccompProfile": {"type": "Localhost", "localhostProfile": "operator/shop/generic.json"}}},
            {"op": "add", "path": "/metadata/annotations", "value": {"seccomp-operator.dev/bound-by": "any", "seccomp-operator.dev/recorded-by": "learn"}}
        ])
    );
    // Existing annotations: one op per mark, '/' escaped.
    let mut p = pod(
        "shop",
        json!({"app": "web"}),
        json!({"containers": [{"name": "web", "image": "web:1"}]}),
    );
    p["metadata"]["annotations"] = json!({"a": "b"});
    let patch = patch_of(&bind(&req(&review("CREATE", "shop", p)), &view)).unwrap();
    assert_eq!(
        patch[1],
        json!({"op": "add", "path": "/metadata/annotations/seccomp-operator.dev~1recorded-by", "value": "learn"})
    );
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

#[test]
fn ephemeral_containers_are_checked_in_both_request_shapes() {
    let view = View {
        profiles: vec![
            profile("shop", "web", "Installed", json!({})),
            profile("shop", "new", "Installing", json!({})),
        ],
        ..Default::default()
    };
    let base = json!({"containers": [{"name": "a", "image": "x", "securityContext": localhost("operator/shop/web.json")}]});
    let old = pod("shop", json!({}), base.clone());
    let with = |path: &str| {
        let mut spec = base.clone();
        spec["ephemeralContainers"] =
            json!([{"name": "debug", "image": "x", "securityContext": localhost(path)}]);
        pod("shop", json!({}), spec)
    };
    // Kubernetes 1.22+: the whole pod, subresource ephemeralcontainers.
    let other = review_of(
        ("", "Pod"),
        Some("ephemeralcontainers"),
        "UPDATE",
        "shop",
        with("./operator/bank/vault.json"),
        old.clone(),
    );
    let r = isolation(&req(&other), &no_shared());
    assert!(!r.allowed);
    assert!(
        r.result
            .message
            .contains("ephemeralContainer debug uses ./operator/bank/vault.json"),
        "{}",
        r.result.message
    );
    let r = gate(&req(&other), &view, &no_shared());
    assert!(
        !r.allowed
            && r.result
                .message
                .contains("not allowed for pods of namespace shop"),
        "{}",
        r.result.message
    );
    let pending = review_of(
        ("", "Pod"),
        Some("ephemeralcontainers"),
        "UPDATE",
        "shop",
        with("operator/shop/new.json"),
        old.clone(),
    );
    let r = gate(&req(&pending), &view, &no_shared());
    assert!(!r.allowed && r.result.message.contains("ephemeralContainer debug uses operator/shop/new.json: SeccompProfile shop/new is not installed"), "{}", r.result.message);
    let fine = review_of(
        ("", "Pod"),
        Some("ephemeralcontainers"),
        "UPDATE",
        "shop",
        with("operator/shop/web.json"),
        old.clone(),
    );
    assert!(gate(&req(&fine), &view, &no_shared()).allowed);
    assert!(isolation(&req(&fine), &no_shared()).allowed);
    // Kubernetes 1.16-1.21: an EphemeralContainers object.
    let legacy = json!({"apiVersion": "v1", "kind": "EphemeralContainers", "metadata": {"name": "p", "namespace": "shop"},
        "ephemeralContainers": [{"name": "debug", "image": "x", "securityContext": localhost("operator//bank/vault.json")}]});
    let body = review_of(
        ("", "EphemeralContainers"),
        Some("ephemeralcontainers"),
        "UPDATE",
        "shop",
        legacy,
        Value::Null,
    );
    let r = isolation(&req(&body), &no_shared());
    assert!(
        !r.allowed && r.result.message.contains("ephemeralContainer debug"),
        "{}",
        r.result.message
    );
    assert!(!gate(&req(&body), &view, &no_shared()).allowed);
    // Other subresources are not about profiles.
    let status = review_of(
        ("", "Pod"),
        Some("status"),
        "UPDATE",
        "shop",
        with("operator/bank/vault.json"),
        old,
    );
    assert!(isolation(&req(&status), &no_shared()).allowed);
}

#[test]
fn the_gate_holds_updates_to_what_they_add() {
    let view = View {
        profiles: vec![
            profile("shop", "web", "Installed", json!({})),
            profile("shop", "off", "Disabled", json!({})),
        ],
        ..Default::default()
    };
    let spec = json!({"containers": [{"name": "a", "image": "x", "securityContext": localhost("operator/shop/off.json")}]});
    let old = pod("shop", json!({}), spec.clone());
    // Already used before the update (the profile was disabled since): not the update's doing.
    let mut relabelled = old.clone();
    relabelled["metadata"]["labels"] = json!({"tier": "web"});
    let body = review_of(("", "Pod"), None, "UPDATE", "shop", relabelled, old.clone());
    assert!(gate(&req(&body), &view, &no_shared()).allowed);
    // A legacy annotation added later does nothing (Kubernetes 1.27+): nothing to wait for.
    let mut annotated = old.clone();
    annotated["metadata"]["annotations"] = json!({"container.seccomp.security.alpha.kubernetes.io/a": "localhost/operator/shop/missing.json"});
    let body = review_of(("", "Pod"), None, "UPDATE", "shop", annotated, old);
    let r = gate(&req(&body), &view, &no_shared());
    assert!(r.allowed, "{}", r.result.message);
    assert!(gated_profiles(&req(&body), &no_shared()).is_empty());
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

#[test]
fn profiles_are_held_to_the_policy_and_the_sizes() {
    let policy = Policy::default();
    let listener = json!({"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/run/containerd/containerd.sock",
                          "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]});
    let r = super::profile(
        &req(&profile_review("CREATE", listener.clone(), None)),
        &policy,
    );
    assert!(!r.allowed);
    assert!(
        r.result.message.starts_with(
            "seccomp-operator: spec.listenerPath: not allowed by this cluster's profile policy"
        ),
        "{}",
        r.result.message
    );
    assert!(r
        .result
        .message
        .contains("spec.syscalls[0].action: SCMP_ACT_NOTIFY is not allowed"));
    let open = Policy {
        allow_listener: true,
        ..Policy::default()
    };
    assert!(
        super::profile(
            &req(&profile_review("CREATE", listener.clone(), None)),
            &open
        )
        .allowed
    );

    let spec_allow =
        json!({"defaultAction": "SCMP_ACT_ERRNO", "flags": ["SECCOMP_FILTER_FLAG_SPEC_ALLOW"]});
    let r = super::profile(
        &req(&profile_review(
            "UPDATE",
            spec_allow,
            Some(json!({"defaultAction": "SCMP_ACT_ERRNO"})),
        )),
        &policy,
    );
    assert!(
        !r.allowed
            && r.result
                .message
                .contains("spec.flags: SECCOMP_FILTER_FLAG_SPEC_ALLOW not allowed"),
        "{}",
        r.result.message
    );

    let names: Vec<String> = (0..5000).map(|i| format!("s{i}")).collect();
    let many: Vec<Value> = names
        .chunks(1000)
        .map(|c| json!({"names": c, "action": "SCMP_ACT_ALLOW"}))
        .collect();
    let r = super::profile(
        &req(&profile_review(
            "CREATE",
            json!({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": many}),
            None,
        )),
        &policy,
    );
    assert!(!r.allowed);
    assert_eq!(
        r.result.message,
        "seccomp-operator: spec.syscalls: 5000 syscall names in all rules, over the limit of 4096"
    );

    // What was stored before the policy can still be released (finalizers, labels) and deleted.
    let r = super::profile(
        &req(&profile_review(
            "UPDATE",
            listener.clone(),
            Some(listener.clone()),
        )),
        &policy,
    );
    assert!(r.allowed);
    assert!(super::profile(&req(&profile_review("DELETE", listener, None)), &policy).allowed);
    // Ordinary profiles pass; unknown syscall names are the status's business, not admission's.
    let typo = json!({"defaultAction": "SCMP_ACT_ERRNO", "flags": ["SECCOMP_FILTER_FLAG_LOG"], "syscalls": [{"names": ["raed"], "action": "SCMP_ACT_ALLOW"}]});
    assert!(super::profile(&req(&profile_review("CREATE", typo, None)), &policy).allowed);
    // Unreadable objects are refused, with a bounded message.
    let junk = review_of(
        ("seccomp-operator.dev", "SeccompProfile"),
        None,
        "CREATE",
        "shop",
        json!({"apiVersion": "seccomp-operator.dev/v1alpha1", "kind": "SeccompProfile", "metadata": {"name": "p"}, "spec": {"defaultAction": "x".repeat(100_000)}}),
        Value::Null,
    );
    let r = super::profile(&req(&junk), &policy);
    assert!(
        !r.allowed && r.result.message.len() <= seccomp_profile::limits::MAX_MESSAGE_BYTES,
        "{}",
        r.result.message.len()
    );
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

#[test]
fn an_agent_writes_only_its_own_nodes_report_and_heartbeat() {
    use super::agent_writes::agent_writes;
    let view = View {
        pods: vec![agent_pod("agent-a", "u-a", "node-a")],
        ..Default::default()
    };
    let decide = |obj: Value, group: &str, kind: &str, user: &str, claims| {
        agent_writes(
            &req(&agent_review(obj, group, kind, user, claims)),
            &view,
            &[AGENT.to_owned(), RECORDER.to_owned()],
            "seccomp-operator",
        )
    };
    let mine = Some(("agent-a", "u-a"));
    let sn = "seccomp-operator.dev";
    let co = "coordination.k8s.io";
    assert!(
        decide(
            node_status("node-a", "node-a"),
            sn,
            "SeccompNodeStatus",
            AGENT,
            mine
        )
        .allowed
    );
    assert!(
        decide(
            lease("seccomp-agent-node-a", "node-a", "node-a"),
            co,
            "Lease",
            AGENT,
            mine
        )
        .allowed
    );
    assert!(
        decide(
            report("rec.node-a", "rec", "node-a", "node-a"),
            sn,
            "RecordingReport",
            RECORDER,
            mine
        )
        .allowed
    );
    // Another node's objects, however dressed up.
    for (obj, group, kind) in [
        (
            report("rec.node-b", "rec", "node-b", "node-b"),
            sn,
            "RecordingReport",
        ),
        (
            report("rec.node-a", "rec", "node-b", "node-a"),
            sn,
            "RecordingReport",
        ),
        (
            report("rec.node-b", "rec", "node-a", "node-a"),
            sn,
            "RecordingReport",
        ),
        (
            report("rec.node-a", "rec", "node-a", "node-b"),
            sn,
            "RecordingReport",
        ),
        (node_status("node-b", "node-b"), sn, "SeccompNodeStatus"),
        (node_status("node-a", "node-b"), sn, "SeccompNodeStatus"),
        (
            lease("seccomp-agent-node-b", "node-b", "node-b"),
            co,
            "Lease",
        ),
        (
            lease("seccomp-agent-node-a", "node-b", "node-a"),
            co,
            "Lease",
        ),
        (
            lease("seccomp-agent-node-b", "node-a", "node-a"),
            co,
            "Lease",
        ),
    ] {
        let r = decide(obj.clone(), group, kind, AGENT, mine);
        assert!(!r.allowed, "{obj}");
        assert!(
            !decide(obj.clone(), group, kind, RECORDER, mine).allowed,
            "{obj}"
        );
        assert!(
            r.result.message.starts_with("seccomp-operator: "),
            "{}",
            r.result.message
        );
    }
    let r = decide(
        node_status("node-b", "node-b"),
        sn,
        "SeccompNodeStatus",
        AGENT,
        mine,
    );
    assert_eq!(r.result.message, "seccomp-operator: the node agent of node-a may write only its own node's objects, not node-b's");
    // No pod claims (a legacy token), an unknown pod, a recycled pod name: refused.
    let r = decide(
        node_status("node-a", "node-a"),
        sn,
        "SeccompNodeStatus",
        AGENT,
        None,
    );
    assert!(
        !r.allowed && r.result.message.contains("bound ServiceAccount token"),
        "{}",
        r.result.message
    );
    assert!(
        !decide(
            node_status("node-a", "node-a"),
            sn,
            "SeccompNodeStatus",
            AGENT,
            Some(("agent-z", "u-z"))
        )
        .allowed
    );
    assert!(
        !decide(
            node_status("node-a", "node-a"),
            sn,
            "SeccompNodeStatus",
            AGENT,
            Some(("agent-a", "u-old"))
        )
        .allowed
    );
    // Other users are RBAC's business; other kinds are not this webhook's.
    assert!(
        decide(
            node_status("node-b", "node-b"),
            sn,
            "SeccompNodeStatus",
            "admin",
            None
        )
        .allowed
    );
    assert!(
        decide(
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}}),
            "",
            "ConfigMap",
            AGENT,
            mine
        )
        .allowed
    );
}

#[test]
fn the_profile_policy_warns_or_refuses_unconfined_and_escalating_containers() {
    use super::policy::{pod_policy, Mode};
    let operator_ns = "seccomp-operator";
    let confined = json!({"containers": [{"name": "app", "image": "x", "securityContext": {
        "allowPrivilegeEscalation": false,
        "seccompProfile": {"type": "Localhost", "localhostProfile": "operator/shop/web.json"}}}]});
    let runtime_default = json!({"securityContext": {"seccompProfile": {"type": "RuntimeDefault"}},
        "containers": [{"name": "app", "image": "x", "securityContext": {"allowPrivilegeEscalation": false}}]});
    let bare = json!({"containers": [{"name": "app", "image": "x"}, {"name": "side", "image": "x",
        "securityContext": {"allowPrivilegeEscalation": false, "seccompProfile": {"type": "Unconfined"}}}]});
    for mode in [Mode::Warn, Mode::Enforce] {
        for ok in [&confined, &runtime_default] {
            let r = pod_policy(
                &req(&review(
                    "CREATE",
                    "shop",
                    pod("shop", json!({}), ok.clone()),
                )),
                mode,
                operator_ns,
                &View::default(),
            );
            assert!(r.allowed && r.warnings.is_none(), "{mode:?}: {r:?}");
        }
        let r = pod_policy(
            &req(&review(
                "CREATE",
                "kube-system",
                pod("kube-system", json!({}), bare.clone()),
            )),
            mode,
            operator_ns,
            &View::default(),
        );
        assert!(
            r.allowed && r.warnings.is_none(),
            "kube-system is never affected"
        );
    }
    let warned = pod_policy(
        &req(&review(
            "CREATE",
            "shop",
            pod("shop", json!({}), bare.clone()),
        )),
        Mode::Warn,
        operator_ns,
        &View::default(),
    );
    assert!(warned.allowed);
    let w = warned.warnings.unwrap();
    assert_eq!(w.len(), 2, "{w:?}");
    assert!(
        w[0].contains("\"app\"")
            && w[0].contains("no seccomp profile")
            && w[0].contains("allowPrivilegeEscalation"),
        "{w:?}"
    );
    assert!(
        w[1].contains("\"side\"") && w[1].contains("Unconfined"),
        "{w:?}"
    );
    let refused = pod_policy(
        &req(&review("CREATE", "shop", pod("shop", json!({}), bare))),
        Mode::Enforce,
        operator_ns,
        &View::default(),
    );
    assert!(!refused.allowed);
    let msg = &refused.result.message;
    assert!(
        msg.contains("enforce")
            && msg.contains("\"app\"")
            && msg.contains("\"side\"")
            && msg.contains("RuntimeDefault"),
        "{msg}"
    );
    // Ephemeral containers added later are checked (1.20's EphemeralContainers shape).
    let debug = review_of(
        ("", "EphemeralContainers"),
        Some("ephemeralcontainers"),
        "UPDATE",
        "shop",
        json!({"metadata": {"name": "p", "namespace": "shop"}, "ephemeralContainers": [{"name": "debug", "image": "x"}]}),
        json!(null),
    );
    let r = pod_policy(&req(&debug), Mode::Enforce, operator_ns, &View::default());
    assert!(
        !r.allowed && r.result.message.contains("ephemeralContainer \"debug\""),
        "{r:?}"
    );
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

#[test]
fn a_native_sidecar_is_held_to_isolation_and_the_gate() {
    let view = View {
        profiles: vec![
            profile("shop", "web", "Installed", json!({})),
            profile("shop", "proxy", "Installing", json!({})),
        ],
        ..Default::default()
    };
    // Another namespace's profile.
    let body = pod_with_sidecar(localhost("operator/bank/vault.json"));
    let r = isolation(&req(&body), &no_shared());
    assert!(
        !r.allowed
            && r.result
                .message
                .contains("initContainer proxy uses operator/bank/vault.json"),
        "{}",
        r.result.message
    );
    assert!(!gate(&req(&body), &view, &no_shared()).allowed);
    // Its own namespace's profile, not installed yet: the gate waits for it.
    let body = pod_with_sidecar(localhost("operator/shop/proxy.json"));
    assert!(isolation(&req(&body), &no_shared()).allowed);
    let r = gate(&req(&body), &view, &no_shared());
    assert!(
        !r.allowed
            && r.result.message.contains(
                "initContainer proxy uses operator/shop/proxy.json: SeccompProfile shop/proxy is not installed"
            ),
        "{}",
        r.result.message
    );
    assert_eq!(
        gated_profiles(&req(&body), &no_shared()),
        BTreeSet::from([
            ("shop".to_string(), "proxy".to_string()),
            ("shop".into(), "web".into())
        ])
    );
}

#[test]
fn the_gate_does_not_wait_for_a_profile_named_only_in_an_annotation() {
    let view = View {
        profiles: vec![profile("shop", "slow", "Installing", json!({}))],
        ..Default::default()
    };
    for key in [
        "seccomp.security.alpha.kubernetes.io/pod",
        "container.seccomp.security.alpha.kubernetes.io/a",
    ] {
        for target in ["operator/shop/slow.json", "operator/shop/missing.json"] {
            let mut p = pod(
                "shop",
                json!({}),
                json!({"containers": [{"name": "a", "image": "x"}]}),
            );
            p["metadata"]["annotations"] = json!({key: format!("localhost/{target}")});
            let body = review("CREATE", "shop", p);
            let r = gate(&req(&body), &view, &no_shared());
            assert!(r.allowed, "{key} {target}: {}", r.result.message);
            assert!(gated_profiles(&req(&body), &no_shared()).is_empty());
            assert!(
                isolation(&req(&body), &no_shared()).allowed,
                "own namespace"
            );
        }
    }
}

#[test]
fn binding_binds_a_native_sidecar_by_image_and_drops_its_inert_annotation() {
    let view = View {
        bindings: vec![binding(
            "shop",
            "envoy",
            json!({"profileRef": {"kind": "SeccompProfile", "name": "envoy"}, "image": "envoy:1"}),
        )],
        ..Default::default()
    };
    let r = bind(&req(&pod_with_sidecar(Value::Null)), &view);
    assert_eq!(
        patch_of(&r).expect("a patch"),
        json!([
            {"op": "add", "path": "/spec/initContainers/0/securityContext", "value": {"seccompProfile": {"type": "Localhost", "localhostProfile": "operator/shop/envoy.json"}}},
            {"op": "add", "path": "/metadata/annotations", "value": {"seccomp-operator.dev/bound-by": "envoy"}}
        ])
    );
    // A legacy annotation does not count as the sidecar's profile; the API server would refuse
    // the pod if it disagreed with the bound field, so the patch removes it.
    let mut p = pod(
        "shop",
        json!({}),
        json!({"initContainers": [{"name": "proxy", "image": "envoy:1", "restartPolicy": "Always"}],
               "containers": [{"name": "app", "image": "app:1"}]}),
    );
    p["metadata"]["annotations"] = json!({
        "container.seccomp.security.alpha.kubernetes.io/proxy": "runtime/default",
        "container.seccomp.security.alpha.kubernetes.io/app": "runtime/default",
    });
    let r = bind(&req(&review("CREATE", "shop", p)), &view);
    assert_eq!(
        patch_of(&r).expect("a patch"),
        json!([
            {"op": "add", "path": "/spec/initContainers/0/securityContext", "value": {"seccompProfile": {"type": "Localhost", "localhostProfile": "operator/shop/envoy.json"}}},
            {"op": "remove", "path": "/metadata/annotations/container.seccomp.security.alpha.kubernetes.io~1proxy"},
            {"op": "add", "path": "/metadata/annotations/seccomp-operator.dev~1bound-by", "value": "envoy"}
        ]),
        "only the bound container's annotation goes"
    );
}

#[test]
fn the_policy_treats_annotation_only_containers_as_unset() {
    use super::policy::{pod_policy, Mode};
    let mut p = pod(
        "shop",
        json!({}),
        json!({"containers": [{"name": "a", "image": "x", "securityContext": {"allowPrivilegeEscalation": false}}]}),
    );
    p["metadata"]["annotations"] =
        json!({"container.seccomp.security.alpha.kubernetes.io/a": "runtime/default"});
    let r = pod_policy(
        &req(&review("CREATE", "shop", p)),
        Mode::Enforce,
        "seccomp-operator",
        &View::default(),
    );
    assert!(!r.allowed, "an annotation-only profile is no profile");
    let msg = &r.result.message;
    assert!(
        msg.contains("container \"a\": it has no seccomp profile")
            && msg.contains("container.seccomp.security.alpha.kubernetes.io/a has no effect since Kubernetes 1.27")
            && msg.contains("RuntimeDefault explicitly")
            && msg.contains("not known at admission"),
        "{msg}"
    );
}

#[test]
fn the_policy_uses_the_nodes_seccomp_default_only_for_bound_pods() {
    use super::policy::{pod_policy, Mode};
    let view = View {
        nodes: vec![("node-2".into(), true), ("node-1".into(), false)],
        ..Default::default()
    };
    let safe = json!({"allowPrivilegeEscalation": false});
    let decide = |body: Vec<u8>| pod_policy(&req(&body), Mode::Enforce, "seccomp-operator", &view);
    // A new pod: its node is not known at admission, whatever nodes exist (fail closed).
    let r = decide(review(
        "CREATE",
        "shop",
        pod(
            "shop",
            json!({}),
            json!({"containers": [{"name": "a", "image": "x", "securityContext": safe}]}),
        ),
    ));
    assert!(
        !r.allowed && r.result.message.contains("not known at admission"),
        "{}",
        r.result.message
    );
    // A pod created bound to a node that defaults: its unset container runs RuntimeDefault.
    let r = decide(review(
        "CREATE",
        "shop",
        pod(
            "shop",
            json!({}),
            json!({"nodeName": "node-2", "containers": [{"name": "a", "image": "x", "securityContext": safe}]}),
        ),
    ));
    assert!(r.allowed, "{}", r.result.message);
    // An ephemeral container added to a running pod: decided by its node.
    let base = |node: &str| json!({"nodeName": node, "containers": [{"name": "a", "image": "x", "securityContext": {"allowPrivilegeEscalation": false, "seccompProfile": {"type": "RuntimeDefault"}}}]});
    let debug = |node: &str| {
        let mut spec = base(node);
        spec["ephemeralContainers"] = json!([{"name": "debug", "image": "x", "securityContext": {"allowPrivilegeEscalation": false}}]);
        review_of(
            ("", "Pod"),
            Some("ephemeralcontainers"),
            "UPDATE",
            "shop",
            pod("shop", json!({}), spec),
            pod("shop", json!({}), base(node)),
        )
    };
    assert!(decide(debug("node-2")).allowed);
    let r = decide(debug("node-1"));
    assert!(
        !r.allowed
            && r.result
                .message
                .contains("ephemeralContainer \"debug\": it has no seccomp profile and its node's kubelet runs such containers unconfined"),
        "{}",
        r.result.message
    );
    let r = decide(debug("node-9"));
    assert!(
        !r.allowed && r.result.message.contains("not known at admission"),
        "a node that did not report: {}",
        r.result.message
    );
}
