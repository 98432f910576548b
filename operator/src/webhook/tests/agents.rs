//! The agents' webhook: each node writes only its own heartbeat and recording reports (its
//! SeccompNodeStatus: the API server's policy, `config/webhook/node-reports-policy.yaml`).

use super::*;

#[test]
fn an_agent_writes_only_its_own_nodes_heartbeat_and_recording_reports() {
    use crate::webhook::agent_writes::agent_writes;
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
        lease("seccomp-agent-node-b", "node-b", "node-b"),
        co,
        "Lease",
        AGENT,
        mine,
    );
    assert_eq!(r.result.message, "seccomp-operator: the node agent of node-a may write only its own node's objects, not node-b's");
    // No pod claims (a legacy token), an unknown pod, a recycled pod name: refused.
    let r = decide(
        lease("seccomp-agent-node-a", "node-a", "node-a"),
        co,
        "Lease",
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
            lease("seccomp-agent-node-a", "node-a", "node-a"),
            co,
            "Lease",
            AGENT,
            Some(("agent-z", "u-z"))
        )
        .allowed
    );
    assert!(
        !decide(
            lease("seccomp-agent-node-a", "node-a", "node-a"),
            co,
            "Lease",
            AGENT,
            Some(("agent-a", "u-old"))
        )
        .allowed
    );
    // Other users are RBAC's business; other kinds are not this webhook's, node reports
    // included (the API server's policy decides those).
    assert!(
        decide(
            lease("seccomp-agent-node-b", "node-b", "node-b"),
            co,
            "Lease",
            "admin",
            None
        )
        .allowed
    );
    assert!(
        decide(
            node_status("node-b", "node-b"),
            sn,
            "SeccompNodeStatus",
            AGENT,
            mine
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
