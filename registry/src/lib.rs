//! Seccomp profiles as OCI artifacts, in the format of KEP-6061 (Kubernetes' `seccompProfile`
//! type `OCI`, enhancements PR #6062, revision `0eb0b5b4`), so that what is pushed today is what
//! a future kubelet can load:
//!
//! - the manifest's `artifactType` and its config's media type are
//!   [`artifact::ARTIFACT_TYPE`]; the config blob is `{}`;
//! - exactly one layer, the raw runtime-spec `linux.seccomp` JSON ([`artifact::LAYER_MEDIA_TYPE`],
//!   titled `profile.json`), at most [`seccomp_profile::limits::MAX_ARTIFACT_BYTES`]; a reader
//!   does not require the layer's media type;
//! - a fixed creation time, so the same profile always pushes to the same digest.
//!
//! [`client::Registry`] pushes and pulls through `oci-client` (no registry HTTP is written
//! here); [`credentials`] reads docker config files and `kubernetes.io/dockerconfigjson`
//! Secrets; [`guard`] is what the operator fetches through: every connection, token services
//! and redirects included, is checked after DNS against networks a tenant must never reach.
#![forbid(unsafe_code)]

pub mod artifact;
pub mod client;
pub mod credentials;
pub mod guard;
pub mod testbed;

pub use client::{Pulled, Pushed, Registry, RegistryError, RegistryOptions};
pub use credentials::{Credentials, CredentialsError};
