//! `RecordingReport`: what one node recorded for one ProfileRecording. Written only by that
//! node's recorder (the agents webhook checks who writes), read by the operator, which alone
//! turns reports into SeccompProfiles. Owned by the recording, so deleted with it.

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The most containers one report lists at a time. A node's recorder adds an entry per
/// recorded container and drops it once the operator has taken it in (`status.consumed`), so
/// only the containers between those two steps count; when the report is full the recorder
/// keeps further containers recorded (in the kernel, or in memory for audit records) until
/// the operator catches up. Bounds the object: 32 × 1024 names of at most 64 bytes.
pub const MAX_REPORT_CONTAINERS: usize = 32;

/// What one node recorded for one recording.
#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "seccomp-operator.dev",
    version = "v1alpha1",
    kind = "RecordingReport",
    plural = "recordingreports",
    namespaced,
    status = "RecordingReportStatus",
    printcolumn = r#"{"name":"Recording","type":"string","jsonPath":".spec.recording"}"#,
    printcolumn = r#"{"name":"Node","type":"string","jsonPath":".spec.nodeName"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct RecordingReportSpec {
    /// The node whose recorder writes this report.
    #[schemars(length(min = 1, max = seccomp_profile::limits::MAX_REF_LEN))]
    pub node_name: String,
    /// The ProfileRecording (same namespace) the containers were recorded for.
    #[schemars(length(min = 1, max = seccomp_profile::limits::MAX_REF_LEN))]
    pub recording: String,
    /// Recorded containers the operator has not taken in yet.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = MAX_REPORT_CONTAINERS))]
    pub containers: Vec<RecordedContainer>,
}

/// One recorded container instance.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RecordedContainer {
    /// The runtime's container ID: one entry per container instance (a restarted container
    /// is a new instance with a new ID).
    #[schemars(length(min = 1, max = seccomp_profile::limits::MAX_REF_LEN))]
    pub container_id: String,
    /// The pod.
    #[schemars(length(min = 1, max = seccomp_profile::limits::MAX_REF_LEN))]
    pub pod: String,
    /// The container's name in the pod.
    #[schemars(length(min = 1, max = seccomp_profile::limits::MAX_REF_LEN))]
    pub container: String,
    /// The container ended (or its recording stopped) and `syscalls` is its whole set; false
    /// while it is still being recorded.
    #[serde(default)]
    pub r#final: bool,
    /// Every syscall the container made, including those the runtime's init makes after it
    /// installs the filter.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = seccomp_profile::limits::MAX_NAMES_PER_RULE))]
    #[schemars(inner(length(min = 1, max = seccomp_profile::limits::MAX_NAME_LEN)))]
    pub syscalls: Vec<String>,
    /// Argument classes of the tracked syscalls (clone, clone3, unshare, setns, socket,
    /// socketpair, personality) the container called; empty where the recorder captures none
    /// (Logs). A tracked syscall listed in `syscalls` without an entry here is allowed with any
    /// arguments.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16))]
    pub arguments: Vec<seccomp_profile::RecordedArgs>,
}

/// The operator's side of the handshake.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RecordingReportStatus {
    /// Container IDs of final entries the operator has written into SeccompProfiles: the
    /// recorder drops these entries, then the operator forgets the IDs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 2 * MAX_REPORT_CONTAINERS))]
    #[schemars(inner(length(max = seccomp_profile::limits::MAX_REF_LEN)))]
    pub consumed: Vec<String>,
}

/// The name of `node`'s report for `recording`: `<recording>.<node>` (dots keep it apart
/// from profile names built with dashes), shortened with a hash when too long.
pub fn report_name(recording: &str, node: &str) -> String {
    let full = format!("{recording}.{node}");
    if full.len() <= 253 {
        return full;
    }
    let digest = seccomp_profile::content_hash(full.as_bytes());
    let hex = digest.trim_start_matches("sha256:");
    format!(
        "{}.{}",
        full[..230].trim_end_matches(['-', '.']),
        &hex[..16]
    )
}

impl RecordingReport {
    /// Entries the operator has not consumed yet.
    pub fn unconsumed(&self) -> impl Iterator<Item = &RecordedContainer> {
        let consumed = self.status.as_ref().map(|s| &s.consumed[..]).unwrap_or(&[]);
        self.spec
            .containers
            .iter()
            .filter(move |c| !consumed.contains(&c.container_id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_names_fit_and_stay_apart() {
        assert_eq!(report_name("rec", "node-2"), "rec.node-2");
        let long = report_name(&"r".repeat(200), &"n".repeat(200));
        assert!(long.len() <= 253, "{}", long.len());
        assert_ne!(long, report_name(&"r".repeat(200), &"m".repeat(200)));
    }

    #[test]
    fn consumed_entries_are_not_listed_again() {
        let entry = |id: &str| RecordedContainer {
            container_id: id.into(),
            pod: "p".into(),
            container: "c".into(),
            r#final: true,
            syscalls: vec!["read".into()],
            arguments: vec![],
        };
        let mut r = RecordingReport::new(
            "rec.n1",
            RecordingReportSpec {
                node_name: "n1".into(),
                recording: "rec".into(),
                containers: vec![entry("a"), entry("b")],
            },
        );
        r.status = Some(RecordingReportStatus {
            consumed: vec!["a".into()],
        });
        let left: Vec<_> = r.unconsumed().map(|c| c.container_id.as_str()).collect();
        assert_eq!(left, ["b"]);
    }
}
