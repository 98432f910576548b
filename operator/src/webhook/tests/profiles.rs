//! The profile webhook: sizes and the profile policy.

use super::*;

/// The webhook with no registry allowed.
fn profile(
    req: &kube::core::admission::AdmissionRequest<kube::core::DynamicObject>,
    policy: &Policy,
) -> kube::core::admission::AdmissionResponse {
    crate::webhook::profile(req, policy, &Default::default())
}

#[test]
fn registry_bases_come_only_from_listed_registries() {
    let policy = Policy::default();
    let digest = format!("sha256:{}", "c".repeat(64));
    let spec = |base: &str| json!({"defaultAction": "SCMP_ACT_ALLOW", "baseProfileName": base});
    let listed = crate::profile::artifacts::RegistryConfig {
        allowed: vec!["r.example:5443".into()],
        ..Default::default()
    };
    let ok = format!("oci://r.example:5443/team/base@{digest}");
    let r = crate::webhook::profile(
        &req(&profile_review("CREATE", spec(&ok), None)),
        &policy,
        &listed,
    );
    assert!(r.allowed, "{}", r.result.message);
    let other = format!("oci://169.254.169.254/latest@{digest}");
    let r = crate::webhook::profile(
        &req(&profile_review("CREATE", spec(&other), None)),
        &policy,
        &listed,
    );
    assert!(!r.allowed);
    assert!(
        r.result.message.contains(
            "spec.baseProfileName: registry `169.254.169.254/latest` is not in the allowed list"
        ),
        "{}",
        r.result.message
    );
    // Nothing listed: every registry base is refused.
    let r = profile(&req(&profile_review("CREATE", spec(&ok), None)), &policy);
    assert!(
        !r.allowed && r.result.message.contains("no registry is"),
        "{}",
        r.result.message
    );
}

#[test]
fn profiles_are_held_to_the_policy_and_the_sizes() {
    let policy = Policy::default();
    let listener = json!({"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/run/containerd/containerd.sock",
                          "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]});
    let r = profile(
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
        profile(
            &req(&profile_review("CREATE", listener.clone(), None)),
            &open
        )
        .allowed
    );

    let spec_allow =
        json!({"defaultAction": "SCMP_ACT_ERRNO", "flags": ["SECCOMP_FILTER_FLAG_SPEC_ALLOW"]});
    let r = profile(
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
    let r = profile(
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
    let r = profile(
        &req(&profile_review(
            "UPDATE",
            listener.clone(),
            Some(listener.clone()),
        )),
        &policy,
    );
    assert!(r.allowed);
    assert!(profile(&req(&profile_review("DELETE", listener, None)), &policy).allowed);
    // Ordinary profiles pass; unknown syscall names are the status's business, not admission's.
    let typo = json!({"defaultAction": "SCMP_ACT_ERRNO", "flags": ["SECCOMP_FILTER_FLAG_LOG"], "syscalls": [{"names": ["raed"], "action": "SCMP_ACT_ALLOW"}]});
    assert!(profile(&req(&profile_review("CREATE", typo, None)), &policy).allowed);
    // Unreadable objects are refused, with a bounded message.
    let junk = review_of(
        ("seccomp-operator.dev", "SeccompProfile"),
        None,
        "CREATE",
        "shop",
        json!({"apiVersion": "seccomp-operator.dev/v1alpha1", "kind": "SeccompProfile", "metadata": {"name": "p"}, "spec": {"defaultAction": "x".repeat(100_000)}}),
        Value::Null,
    );
    let r = profile(&req(&junk), &policy);
    assert!(
        !r.allowed && r.result.message.len() <= seccomp_profile::limits::MAX_MESSAGE_BYTES,
        "{}",
        r.result.message.len()
    );
}
