//! seccomp-operator's operator: the SeccompProfile, ProfileRecording and ProfileBinding
//! controllers and the admission webhooks, grouped by what each part reconciles.
#![forbid(unsafe_code)]

// Layers, lowest first: runtime, nodes, pods, profile, binding, recording, webhook. A module
// imports only from its own layer or those below it, and no two files import each other
// (`tests/layers.rs` holds the order and checks both).
pub mod binding;
pub mod nodes;
pub mod pods;
pub mod profile;
pub mod recording;
pub mod runtime;
pub mod webhook;

#[cfg(test)]
mod controller_tests;

/// Errors of the controllers.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An API call failed.
    #[error("kubernetes API")]
    Kube(#[source] kube::Error),
    /// A namespaced object came without a namespace.
    #[error("object has no namespace")]
    MissingNamespace,
    /// A lock was poisoned by a panic elsewhere.
    #[error("internal state lock poisoned")]
    Poisoned,
    /// A recording could not be merged.
    #[error("merging recorded profiles")]
    Merge(#[source] seccomp_profile::MergeError),
    /// An object the operator writes did not serialise.
    #[error("serialising an object")]
    Serialize(#[source] serde_json::Error),
    /// An object from the API server came without a UID.
    #[error("object has no uid")]
    MissingUid,
    /// A deleted recording waits for nodes still recording its containers.
    #[error("waiting for nodes still recording: {0}")]
    StillRecording(String),
    /// The finalizer helper failed.
    #[error("finalizer")]
    Finalizer(#[source] Box<kube::runtime::finalizer::Error<Error>>),
}

/// Result of the controllers.
pub type Result<T, E = Error> = std::result::Result<T, E>;
