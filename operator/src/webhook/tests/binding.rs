//! The binding webhook: ProfileBindings and Logs recordings.

use super::*;

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
