//! Webhook decisions on AdmissionReview fixtures.

use super::*;
use serde_json::{json, Value};

#[derive(Default)]
struct View {
    profiles: Vec<Arc<SeccompProfile>>,
    bindings: Vec<Arc<ProfileBinding>>,
    recordings: Vec<Arc<ProfileRecording>>,
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
            let g = gate(&req(&body), &view, &no_shared());
            assert!(!g.allowed, "{v} (legacy {legacy}) admitted by the gate");
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
        // Escapes and malformed operator paths: refused by both, naming the container.
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
            assert!(!gate(&req(&body), &view, &no_shared()).allowed, "{v}");
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
    // Legacy annotations count too.
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
    let mut m = json!({"name": name, "namespace": ns, "creationTimestamp": "2026-01-01T00:00:00Z"});
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
