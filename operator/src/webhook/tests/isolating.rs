//! Tenant isolation: every spelling of another namespace's profile.

use super::*;

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
