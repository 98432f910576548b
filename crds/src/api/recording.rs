//! `ProfileRecording`: learn profiles from the containers of matching pods.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, LabelSelector};
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Records the syscalls of containers in pods that match `podSelector` and are created after
/// the recording, and turns them into SeccompProfiles named `<recording>-<container>`.
#[derive(CustomResource, Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "seccomp-operator.dev",
    version = "v1alpha1",
    kind = "ProfileRecording",
    plural = "profilerecordings",
    shortname = "prec",
    namespaced,
    status = "ProfileRecordingStatus",
    printcolumn = r#"{"name":"Recorder","type":"string","jsonPath":".spec.recorder"}"#,
    printcolumn = r#"{"name":"Status","type":"string","jsonPath":".status.phase"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct ProfileRecordingSpec {
    /// The kind of profile produced.
    #[serde(default)]
    pub kind: RecordingKind,
    /// How syscalls are observed: `Bpf` (an eBPF program on sys_enter, no filter on the
    /// workload) or `Logs` (an SCMP_ACT_LOG filter and the kernel's audit records).
    #[serde(default)]
    pub recorder: Recorder,
    /// Pods in this namespace to record. Only pods created after the recording are recorded.
    pub pod_selector: LabelSelector,
    /// Only these containers (by name); all containers when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = seccomp_profile::limits::MAX_CONTAINER_NAMES))]
    #[schemars(inner(length(max = seccomp_profile::limits::MAX_REF_LEN)))]
    pub containers: Option<Vec<String>>,
    /// `Containers` merges the recordings of all pods into one profile per container name;
    /// `None` keeps one profile per pod and container.
    #[serde(default)]
    pub merge_strategy: MergeStrategy,
    /// Stop recording this many seconds after the recording was created (at most a week);
    /// unset: one hour, so a forgotten recording does not
    /// keep a recorder loaded on every node. Containers still running then are written as
    /// they are.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = MAX_RECORDING_SECONDS))]
    pub duration_seconds: Option<u32>,
    /// The `spec.mode` of the profiles the recording creates: `Enforce` (the default) or
    /// `Complain`, to run the recorded profile first without refusing anything and see what
    /// it would deny (record → complain → enforce).
    #[serde(default, skip_serializing_if = "seccomp_profile::Mode::is_enforce")]
    pub profile_mode: seccomp_profile::Mode,
}

/// The kind of profile a recording produces.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum RecordingKind {
    /// A seccomp profile.
    #[default]
    SeccompProfile,
}

/// How syscalls are observed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum Recorder {
    /// eBPF on the raw sys_enter tracepoint.
    #[default]
    Bpf,
    /// An SCMP_ACT_LOG seccomp filter and the kernel's audit records.
    Logs,
}

/// How per-pod recordings are combined.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum MergeStrategy {
    /// One profile per pod and container.
    None,
    /// One profile per container name, the union over all recorded pods.
    #[default]
    Containers,
}

/// Where a recording is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum RecordingPhase {
    /// Waiting for matching pods.
    Pending,
    /// Matching pods are being recorded.
    Recording,
    /// Recording ended; partial profiles are being merged.
    Merging,
    /// Every container that ran was recorded and reported, and every produced profile
    /// exists.
    Completed,
    /// Recording ended and the profiles were merged, but without some containers that ran:
    /// their node never reported them (`NotRecorded`) or is gone (`Lost`). The `Reported`
    /// condition and `status.containers` name them; a report that still arrives is merged in
    /// and the phase becomes `Completed`.
    Partial,
    /// The spec is invalid.
    Error,
}

/// Observed state of a ProfileRecording.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProfileRecordingStatus {
    /// Summary of the recording's state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<RecordingPhase>,
    /// Pods (`<name>`) being recorded now.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub active_workloads: Vec<String>,
    /// Names of the SeccompProfiles this recording produced.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub profiles: Vec<String>,
    /// Standard conditions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Every selected container instance the operator saw run while the recording was
    /// active, and whether its node reported it: the recording is complete only when each
    /// one is `Reported` (or its node is gone). Reported instances of pods that no longer
    /// exist are dropped; at most [`MAX_TRACKED_CONTAINERS`] are kept.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = MAX_TRACKED_CONTAINERS))]
    pub containers: Vec<TrackedContainer>,
    /// Container instances that ran beyond the [`MAX_TRACKED_CONTAINERS`] tracked: their
    /// reports are still merged, but nobody checks that they arrived.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub untracked_containers: Option<u32>,
}

/// The most container instances a recording's status tracks.
pub const MAX_TRACKED_CONTAINERS: usize = 200;

/// One selected container instance that ran while a recording was active.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TrackedContainer {
    /// The pod.
    #[schemars(length(max = seccomp_profile::limits::MAX_REF_LEN))]
    pub pod: String,
    /// The container's name.
    #[schemars(length(max = seccomp_profile::limits::MAX_REF_LEN))]
    pub container: String,
    /// The node it ran on.
    #[schemars(length(max = seccomp_profile::limits::MAX_REF_LEN))]
    pub node: String,
    /// The runtime's ID of this instance (a restart is a new instance).
    #[schemars(length(max = seccomp_profile::limits::MAX_REF_LEN))]
    pub container_id: String,
    /// Whether its node reported it.
    pub state: TrackedState,
    /// When the operator first saw it.
    pub seen_at: k8s_openapi::apimachinery::pkg::apis::meta::v1::Time,
    /// When the operator saw it end (or its pod go, or the recording end); unset while it
    /// runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_at: Option<k8s_openapi::apimachinery::pkg::apis::meta::v1::Time>,
}

/// Whether a container instance's node reported it.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
pub enum TrackedState {
    /// It ran; its node has not said anything about it yet (waited for at most the
    /// operator's report deadline after it was seen and after it ended).
    Waiting,
    /// Its node records it (an entry that is not final yet).
    Recording,
    /// Its node reported it final and the operator took it in.
    Reported,
    /// Its node is live but did not report it within the deadline: its syscalls are missing
    /// from the recording's profiles.
    NotRecorded,
    /// Its node is gone or not Ready: it will never be reported.
    Lost,
}

/// A container instance as a pod's status lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContainerInstance {
    /// The container's name.
    pub name: String,
    /// The runtime's ID, without the `<runtime>://` prefix.
    pub id: String,
    /// It has terminated.
    pub ended: bool,
    /// When it started, where the status says.
    pub started_at: Option<k8s_openapi::jiff::Timestamp>,
}

/// Every container instance `pod`'s status lists: containers, init containers and native
/// sidecars, each with its previous instance (`lastState.terminated`) where it restarted.
pub fn container_instances(pod: &k8s_openapi::api::core::v1::Pod) -> Vec<ContainerInstance> {
    let st = pod.status.as_ref();
    let statuses = st
        .and_then(|s| s.container_statuses.as_ref())
        .into_iter()
        .flatten()
        .chain(
            st.and_then(|s| s.init_container_statuses.as_ref())
                .into_iter()
                .flatten(),
        );
    let mut out = Vec::new();
    for s in statuses {
        if let Some(id) = s.container_id.as_deref() {
            let state = s.state.as_ref();
            let terminated = state.and_then(|s| s.terminated.as_ref());
            let started = state
                .and_then(|s| s.running.as_ref())
                .and_then(|r| r.started_at.as_ref())
                .or_else(|| terminated.and_then(|t| t.started_at.as_ref()));
            out.push(ContainerInstance {
                name: s.name.clone(),
                id: runtime_id(id),
                ended: terminated.is_some(),
                started_at: started.map(|t| t.0),
            });
        }
        if let Some(prev) = s.last_state.as_ref().and_then(|l| l.terminated.as_ref()) {
            if let Some(id) = prev.container_id.as_deref() {
                out.push(ContainerInstance {
                    name: s.name.clone(),
                    id: runtime_id(id),
                    ended: true,
                    started_at: prev.started_at.as_ref().map(|t| t.0),
                });
            }
        }
    }
    out
}

/// The runtime's own ID from a status's `<runtime>://<id>`.
pub fn runtime_id(id: &str) -> String {
    id.split_once("://")
        .map(|(_, id)| id)
        .unwrap_or(id)
        .to_owned()
}

/// How long a recording without `durationSeconds` records (seconds).
pub const DEFAULT_RECORDING_SECONDS: u32 = 3600;
/// The longest `durationSeconds` accepted (a week).
pub const MAX_RECORDING_SECONDS: u32 = 7 * 24 * 3600;

impl ProfileRecording {
    /// How long the recording records, in seconds.
    pub fn duration(&self) -> u32 {
        self.spec
            .duration_seconds
            .unwrap_or(DEFAULT_RECORDING_SECONDS)
            .min(MAX_RECORDING_SECONDS)
    }

    /// Whether the recording records now: not being deleted, and its duration has not
    /// passed (a recording the API server has not stamped yet counts as just created).
    pub fn is_active(&self, now: k8s_openapi::jiff::Timestamp) -> bool {
        if self.metadata.deletion_timestamp.is_some() {
            return false;
        }
        match self.metadata.creation_timestamp.as_ref() {
            Some(c) => {
                now < c.0 + k8s_openapi::jiff::SignedDuration::from_secs(self.duration().into())
            }
            None => true,
        }
    }

    /// The recording's `podSelector`, or why it is invalid.
    pub fn pod_selector(&self) -> Result<kube::core::Selector, kube::core::ParseExpressionError> {
        crate::parse_selector(&self.spec.pod_selector)
    }

    /// Whether the recording selects `pod`: same namespace, labels match `podSelector`, and
    /// the pod was created after the recording (a pod or recording the API server has not
    /// stamped yet counts as new).
    pub fn selects_pod(&self, pod: &k8s_openapi::api::core::v1::Pod) -> bool {
        use kube::ResourceExt;
        if pod.namespace() != self.namespace()
            || !crate::selector_matches(&self.spec.pod_selector, pod.labels())
        {
            return false;
        }
        match (
            self.metadata.creation_timestamp.as_ref(),
            pod.metadata.creation_timestamp.as_ref(),
        ) {
            (Some(r), Some(p)) => p.0 >= r.0,
            _ => true,
        }
    }

    /// Whether the recording records the container named `name` (`spec.containers`, all when
    /// unset).
    pub fn records_container(&self, name: &str) -> bool {
        self.spec
            .containers
            .as_ref()
            .is_none_or(|names| names.iter().any(|n| n == name))
    }

    /// When the recording stops recording (its creation plus its duration); None before the
    /// API server stamped it.
    pub fn ends_at(&self) -> Option<k8s_openapi::jiff::Timestamp> {
        let c = self.metadata.creation_timestamp.as_ref()?;
        Some(c.0 + k8s_openapi::jiff::SignedDuration::from_secs(self.duration().into()))
    }

    /// The SeccompProfile a `Logs` recording puts its containers under: `<recording>.log`,
    /// default action `SCMP_ACT_LOG` (the dot keeps it apart from `<recording>-<container>`,
    /// as container names have no dots).
    pub fn audit_profile_name(name: &str) -> String {
        format!("{name}.log")
    }
}

/// The name of a profile a recording produces from parts (`<recording>-<pod>-<container>`
/// for a per-pod profile): the parts joined with dashes, shortened with a hash when longer
/// than an object name may be.
pub fn recorded_profile_name(parts: &[&str]) -> String {
    let full = parts.join("-");
    if full.len() <= 253 {
        return full;
    }
    let h = seccomp_profile::content_hash(full.as_bytes());
    format!("{}-{}", full[..240].trim_end_matches(['-', '.']), &h[7..19])
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
    use k8s_openapi::jiff::{SignedDuration, Timestamp};

    fn rec(duration: Option<u32>, created: Timestamp) -> ProfileRecording {
        let mut r = ProfileRecording::new(
            "r",
            ProfileRecordingSpec {
                kind: RecordingKind::SeccompProfile,
                recorder: Recorder::Bpf,
                pod_selector: Default::default(),
                containers: None,
                merge_strategy: MergeStrategy::Containers,
                duration_seconds: duration,
                profile_mode: Default::default(),
            },
        );
        r.metadata.creation_timestamp = Some(Time(created));
        r
    }

    #[test]
    fn recorded_profile_names_fit() {
        assert_eq!(
            recorded_profile_name(&["rec", "web-1", "web"]),
            "rec-web-1-web"
        );
        let long = recorded_profile_name(&[&"a".repeat(200), &"b".repeat(100)]);
        assert!(long.len() <= 253);
        assert_ne!(
            long,
            recorded_profile_name(&[&"a".repeat(200), &"c".repeat(100)])
        );
    }

    #[test]
    fn recordings_end_after_their_duration_or_the_default() {
        let t0 = Timestamp::from_second(1_800_000_000).unwrap();
        let at = |s: i64| t0 + SignedDuration::from_secs(s);
        let r = rec(Some(60), t0);
        assert!(r.is_active(at(59)));
        assert!(!r.is_active(at(60)));
        let forgotten = rec(None, t0);
        assert!(forgotten.is_active(at(DEFAULT_RECORDING_SECONDS as i64 - 1)));
        assert!(!forgotten.is_active(at(DEFAULT_RECORDING_SECONDS as i64)));
        let long = rec(Some(u32::MAX), t0);
        assert!(!long.is_active(at(MAX_RECORDING_SECONDS as i64)));
    }

    #[test]
    fn container_instances_list_current_previous_and_init_instances() {
        let pod: k8s_openapi::api::core::v1::Pod = serde_json::from_value(serde_json::json!({
            "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
            "status": {
                "containerStatuses": [
                    {"name": "app", "containerID": "containerd://c2", "image": "x", "imageID": "",
                     "ready": true, "restartCount": 1,
                     "state": {"running": {"startedAt": "2026-01-01T00:01:00Z"}},
                     "lastState": {"terminated": {"exitCode": 1, "containerID": "containerd://c1",
                                                  "startedAt": "2026-01-01T00:00:00Z"}}},
                    {"name": "waiting", "image": "x", "imageID": "", "ready": false,
                     "restartCount": 0, "state": {"waiting": {"reason": "ContainerCreating"}}}
                ],
                "initContainerStatuses": [
                    {"name": "init", "containerID": "cri-o://i1", "image": "x", "imageID": "",
                     "ready": true, "restartCount": 0,
                     "state": {"terminated": {"exitCode": 0, "startedAt": "2026-01-01T00:00:00Z"}}}
                ]
            }
        }))
        .unwrap();
        let got: Vec<(String, String, bool)> = container_instances(&pod)
            .into_iter()
            .map(|i| (i.name, i.id, i.ended))
            .collect();
        let want = [
            ("app", "c2", false),
            ("app", "c1", true),
            ("init", "i1", true),
        ];
        assert_eq!(got, want.map(|(n, i, e)| (n.to_owned(), i.to_owned(), e)));
        assert_eq!(
            container_instances(&pod)[0].started_at,
            Some("2026-01-01T00:01:00Z".parse().unwrap())
        );
        let mut r = rec(None, Timestamp::from_second(0).unwrap());
        assert!(r.records_container("app"));
        r.spec.containers = Some(vec!["init".into()]);
        assert!(!r.records_container("app") && r.records_container("init"));
    }
}
