//! The install gate and the scheduling gate.

use super::*;

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
