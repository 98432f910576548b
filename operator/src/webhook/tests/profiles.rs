//! The profile webhook: sizes and the profile policy.

use super::*;

#[test]
fn profiles_are_held_to_the_policy_and_the_sizes() {
    let policy = Policy::default();
    let listener = json!({"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/run/containerd/containerd.sock",
                          "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]});
    let r = crate::webhook::profile(
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
        crate::webhook::profile(
            &req(&profile_review("CREATE", listener.clone(), None)),
            &open
        )
        .allowed
    );

    let spec_allow =
        json!({"defaultAction": "SCMP_ACT_ERRNO", "flags": ["SECCOMP_FILTER_FLAG_SPEC_ALLOW"]});
    let r = crate::webhook::profile(
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
    let r = crate::webhook::profile(
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
    let r = crate::webhook::profile(
        &req(&profile_review(
            "UPDATE",
            listener.clone(),
            Some(listener.clone()),
        )),
        &policy,
    );
    assert!(r.allowed);
    assert!(
        crate::webhook::profile(&req(&profile_review("DELETE", listener, None)), &policy).allowed
    );
    // Ordinary profiles pass; unknown syscall names are the status's business, not admission's.
    let typo = json!({"defaultAction": "SCMP_ACT_ERRNO", "flags": ["SECCOMP_FILTER_FLAG_LOG"], "syscalls": [{"names": ["raed"], "action": "SCMP_ACT_ALLOW"}]});
    assert!(crate::webhook::profile(&req(&profile_review("CREATE", typo, None)), &policy).allowed);
    // Unreadable objects are refused, with a bounded message.
    let junk = review_of(
        ("seccomp-operator.dev", "SeccompProfile"),
        None,
        "CREATE",
        "shop",
        json!({"apiVersion": "seccomp-operator.dev/v1alpha1", "kind": "SeccompProfile", "metadata": {"name": "p"}, "spec": {"defaultAction": "x".repeat(100_000)}}),
        Value::Null,
    );
    let r = crate::webhook::profile(&req(&junk), &policy);
    assert!(
        !r.allowed && r.result.message.len() <= seccomp_profile::limits::MAX_MESSAGE_BYTES,
        "{}",
        r.result.message.len()
    );
}
