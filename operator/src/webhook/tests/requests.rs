//! Malformed requests and the request shapes of ephemeral containers.

use super::*;

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
