//! The Event contracts between the operator's components: what a writer puts in an Event and
//! what its reader trusts. One home for each, so that writer and reader cannot drift.

/// The node recorder's `SyscallDenied` Events: one per pod, container, syscall and action,
/// written by the node agent on the pod, read by the operator into the profile's
/// `status.denials`.
pub mod syscall_denied {
    /// The Events' reason.
    pub const REASON: &str = "SyscallDenied";
    /// `source.component` and `reportingComponent`: the operator only takes Events with this
    /// reporter into a profile's status.
    pub const COMPONENT: &str = "seccomp-operator.dev/node-recorder";
    /// Annotation: the denied syscall's name.
    pub const ANNOTATION_SYSCALL: &str = "seccomp-operator.dev/syscall";
    /// Annotation: the profile's action that denied it (`SCMP_ACT_ERRNO`, …).
    pub const ANNOTATION_ACTION: &str = "seccomp-operator.dev/action";
    /// Annotation: the container's name.
    pub const ANNOTATION_CONTAINER: &str = "seccomp-operator.dev/container";
}

/// The node recorder's `SyscallWouldBeDenied` Events: a syscall a container under the complain
/// rendering of an operator profile made that the profile's enforced form refuses. One per
/// pod, container, syscall and action, written by the node agent on the pod (the profile is
/// its `related` object), read by the operator into the profile's `status.wouldDeny`. The
/// annotations are those of [`syscall_denied`]; the action is the one enforcement would take.
pub mod syscall_would_be_denied {
    /// The Events' reason.
    pub const REASON: &str = "SyscallWouldBeDenied";
    pub use super::syscall_denied::{
        ANNOTATION_ACTION, ANNOTATION_CONTAINER, ANNOTATION_SYSCALL, COMPONENT,
    };
}
