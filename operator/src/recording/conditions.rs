//! The conditions a ProfileRecording reports.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use std::collections::{BTreeMap, BTreeSet};

/// Condition type saying whether the binding webhook serves a `Logs` recording's namespace.
pub const CONDITION_BINDING_WEBHOOK: &str = "BindingWebhook";

/// Whether the binding webhook will put a `Logs` recording's pods under its `SCMP_ACT_LOG`
/// profile: only in namespaces labelled `seccomp-operator.dev/binding=enabled`.
pub fn binding_webhook_condition(
    ns: &str,
    labels: &BTreeMap<String, String>,
    generation: Option<i64>,
) -> Condition {
    let on = labels.get(crds::LABEL_BINDING).map(String::as_str) == Some("enabled");
    Condition {
        type_: CONDITION_BINDING_WEBHOOK.into(),
        status: if on { "True" } else { "False" }.into(),
        reason: if on {
            "NamespaceEnabled"
        } else {
            "NamespaceNotLabelled"
        }
        .into(),
        message: if on {
            "the binding webhook puts the selected pods under the recording's SCMP_ACT_LOG profile"
                .into()
        } else {
            format!(
                "the Logs recorder works through the binding webhook: label namespace {ns} with {}=enabled; pods created before that are not recorded",
                crds::LABEL_BINDING
            )
        },
        observed_generation: generation,
        last_transition_time: Time(k8s_openapi::jiff::Timestamp::now()),
    }
}

pub use crate::runtime::conditions::set as set_condition;

/// Condition type saying whether every selected container that ran was reported final by
/// its node.
pub const CONDITION_REPORTS: &str = "Reported";
/// Condition type saying the recording's spec cannot be used.
pub const CONDITION_VALID: &str = "Valid";

/// Whether every container instance that ran was reported: waiting for nodes still
/// recording (`still`, node → containers) or for instances no node spoke of yet (`verdict`),
/// or which were never reported (`NotRecorded`: a live node's recorder missed them; `Lost`:
/// their node is gone or not Ready, as are the `lost` nodes with unfinished entries).
pub fn reports_condition(
    still: &BTreeMap<String, usize>,
    lost: &BTreeSet<String>,
    verdict: &super::ledger::Verdict,
    untracked: u32,
    generation: Option<i64>,
) -> Condition {
    use super::ledger::describe;
    let untracked_note = if untracked > 0 {
        format!(
            "; {untracked} more container(s) ran than the {} tracked, and were not checked",
            crds::MAX_TRACKED_CONTAINERS
        )
    } else {
        String::new()
    };
    let deadline = super::ledger::REPORT_DEADLINE.as_secs();
    let (status, reason, message) = if !still.is_empty() {
        (
            "False",
            "NodesRecording",
            seccomp_profile::limits::summarize(
                still
                    .iter()
                    .map(|(n, c)| format!("{n}: {c} container(s) still recorded")),
            ),
        )
    } else if verdict.waiting {
        (
            "False",
            "WaitingForReports",
            format!("waiting up to {deadline}s for the nodes to report every container that ran"),
        )
    } else if !verdict.not_recorded.is_empty() {
        (
            "False",
            "NotRecorded",
            format!(
                "not recorded (no report from the node's recorder within {deadline}s; the profiles lack their syscalls): {}",
                seccomp_profile::limits::summarize(verdict.not_recorded.iter().map(describe))
            ),
        )
    } else if !lost.is_empty() || !verdict.lost.is_empty() {
        let nodes = lost.iter().cloned();
        let containers = verdict.lost.iter().map(describe);
        (
            "False",
            "NodesLost",
            format!(
                "merged without the containers of nodes that are gone or not Ready: {}",
                seccomp_profile::limits::summarize(nodes.chain(containers))
            ),
        )
    } else {
        (
            "True",
            "AllReported",
            "every container that ran was recorded and reported".to_owned(),
        )
    };
    Condition {
        type_: CONDITION_REPORTS.into(),
        status: status.into(),
        reason: reason.into(),
        message: seccomp_profile::limits::truncate(
            &format!("{message}{untracked_note}"),
            seccomp_profile::limits::MAX_MESSAGE_BYTES,
        ),
        observed_generation: generation,
        last_transition_time: Time(k8s_openapi::jiff::Timestamp::now()),
    }
}

/// The recording's spec cannot be used: `reason`, `message` says why.
pub fn invalid_condition(reason: &str, message: &str, generation: Option<i64>) -> Condition {
    Condition {
        type_: CONDITION_VALID.into(),
        status: "False".into(),
        reason: reason.into(),
        message: seccomp_profile::limits::truncate(
            message,
            seccomp_profile::limits::MAX_MESSAGE_BYTES,
        ),
        observed_generation: generation,
        last_transition_time: Time(k8s_openapi::jiff::Timestamp::now()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logs_recordings_say_when_their_namespace_lacks_the_binding_label() {
        let off = binding_webhook_condition("shop", &BTreeMap::new(), Some(3));
        assert_eq!(
            (off.status.as_str(), off.reason.as_str()),
            ("False", "NamespaceNotLabelled")
        );
        assert!(
            off.message
                .contains("label namespace shop with seccomp-operator.dev/binding=enabled"),
            "{}",
            off.message
        );
        let labels = BTreeMap::from([(crds::LABEL_BINDING.to_owned(), "enabled".to_owned())]);
        let on = binding_webhook_condition("shop", &labels, Some(3));
        assert_eq!(on.status, "True");
        // The transition time moves only when the status changes.
        let mut conds = vec![off.clone()];
        let mut later = off.clone();
        later.last_transition_time = Time(k8s_openapi::jiff::Timestamp::from_second(5).unwrap());
        set_condition(&mut conds, later);
        assert_eq!(conds.len(), 1);
        assert_eq!(conds[0].last_transition_time, off.last_transition_time);
        set_condition(&mut conds, on.clone());
        assert_eq!(
            (conds[0].status.as_str(), &conds[0].last_transition_time),
            ("True", &on.last_transition_time)
        );
    }

    #[test]
    fn recordings_say_which_nodes_they_wait_for() {
        use super::super::ledger::Verdict;
        let none = Verdict::default();
        let still = BTreeMap::from([("node-2".to_owned(), 1)]);
        let c = reports_condition(&still, &BTreeSet::new(), &none, 0, None);
        assert_eq!(
            (c.status.as_str(), c.reason.as_str()),
            ("False", "NodesRecording")
        );
        assert!(
            c.message.contains("node-2: 1 container(s)"),
            "{}",
            c.message
        );
        let lost = BTreeSet::from(["node-3".to_owned()]);
        let c = reports_condition(&BTreeMap::new(), &lost, &none, 0, None);
        assert_eq!(c.reason, "NodesLost");
        assert!(c.message.contains("node-3"));
        let many: BTreeMap<String, usize> = (0..10_000).map(|i| (format!("n{i}"), 1)).collect();
        let c = reports_condition(&many, &BTreeSet::new(), &none, 0, None);
        assert!(c.message.len() <= seccomp_profile::limits::MAX_MESSAGE_BYTES);
        // Containers a live node never reported are named, pod, container and node.
        let missed = crds::TrackedContainer {
            pod: "web-b".into(),
            container: "app".into(),
            node: "node-2".into(),
            container_id: "c-b".into(),
            state: crds::TrackedState::NotRecorded,
            seen_at: Time(k8s_openapi::jiff::Timestamp::now()),
            ended_at: None,
        };
        let v = Verdict {
            not_recorded: vec![missed],
            ..Verdict::default()
        };
        let c = reports_condition(&BTreeMap::new(), &BTreeSet::new(), &v, 3, None);
        assert_eq!(
            (c.status.as_str(), c.reason.as_str()),
            ("False", "NotRecorded")
        );
        assert!(
            c.message.contains("pod web-b container app on node-2") && c.message.contains("3 more"),
            "{}",
            c.message
        );
    }
}
