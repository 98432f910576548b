//! The custom resources of `seccomp-operator.dev/v1alpha1`.

pub mod binding;
pub mod nodestatus;
pub mod profile;
pub mod recording;

pub use binding::{ProfileBinding, ProfileBindingSpec, ProfileBindingStatus, ProfileRef};
pub use nodestatus::{
    NodeProfileState, NodeProfileStatus, SeccompNodeStatus, SeccompNodeStatusSpec,
    SeccompNodeStatusStatus,
};
pub use profile::{
    NodeCounts, ProfilePhase, SeccompProfile, SeccompProfileSpec, SeccompProfileStatus,
};
pub use recording::{
    MergeStrategy, ProfileRecording, ProfileRecordingSpec, ProfileRecordingStatus, Recorder,
    RecordingKind, RecordingPhase,
};
