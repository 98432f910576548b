//! The namespace policy (`warn`, `enforce`).

use super::*;

#[test]
fn the_profile_policy_warns_or_refuses_unconfined_and_escalating_containers() {
    use crate::webhook::policy::{pod_policy, Mode};
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

#[test]
fn the_policy_treats_annotation_only_containers_as_unset() {
    use crate::webhook::policy::{pod_policy, Mode};
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
    use crate::webhook::policy::{pod_policy, Mode};
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

#[test]
fn a_complain_profile_does_not_satisfy_the_policy() {
    use crate::webhook::policy::{pod_policy, Mode};
    let spec = json!({"containers": [{"name": "app", "image": "x", "securityContext": {
        "allowPrivilegeEscalation": false,
        "seccompProfile": {"type": "Localhost", "localhostProfile": "operator/shop/web.json"}}}]});
    let enforced = profile("shop", "web", "Installed", json!({}));
    let mut complain = (*enforced).clone();
    complain.spec.mode = seccomp_profile::Mode::Complain;
    let answer = |p: &Arc<SeccompProfile>, mode| {
        pod_policy(
            &req(&review(
                "CREATE",
                "shop",
                pod("shop", json!({}), spec.clone()),
            )),
            mode,
            "seccomp-operator",
            &View {
                profiles: vec![p.clone()],
                ..Default::default()
            },
        )
    };
    assert!(answer(&enforced, Mode::Enforce).allowed);
    let complain = Arc::new(complain);
    let refused = answer(&complain, Mode::Enforce);
    assert!(!refused.allowed);
    assert!(
        refused.result.message.contains("Complain mode")
            && refused.result.message.contains("spec.mode to Enforce"),
        "{}",
        refused.result.message
    );
    let warned = answer(&complain, Mode::Warn);
    assert!(warned.allowed);
    assert!(warned.warnings.unwrap()[0].contains("Complain mode"));
}
