//! The custom resources of `seccomp-operator.dev/v1alpha1`.

pub mod binding;
pub mod nodestatus;
pub mod profile;
pub mod recording;
pub mod report;

pub use binding::{ProfileBinding, ProfileBindingSpec, ProfileBindingStatus, ProfileRef};
pub use nodestatus::{
    KubeletSettings, NodeProfileState, NodeProfileStatus, SeccompNodeStatus, SeccompNodeStatusSpec,
    SeccompNodeStatusStatus,
};
pub use profile::{
    fold_registry_base, DeniedSyscall, NodeCounts, ProfilePhase, ResolvedBase, SeccompProfile,
    SeccompProfileSpec, SeccompProfileStatus, MAX_STATUS_DENIALS,
};
pub use recording::{
    container_instances, recorded_profile_name, runtime_id, ContainerInstance, MergeStrategy,
    ProfileRecording, ProfileRecordingSpec, ProfileRecordingStatus, Recorder, RecordingKind,
    RecordingPhase, TrackedContainer, TrackedState, MAX_TRACKED_CONTAINERS,
};
pub use report::{
    report_name, RecordedContainer, RecordingReport, RecordingReportSpec, RecordingReportStatus,
    MAX_REPORT_CONTAINERS,
};
