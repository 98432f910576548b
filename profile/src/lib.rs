//! The seccomp profile document model: parsing every common format, validation, canonical
//! rendering, base-profile resolution, merge and diff, and the size limits of what tenants
//! write. Pure Rust, no Kubernetes, no I/O beyond what callers hand in: the API crate (`crds`),
//! the libseccomp boundary, the recorder and the installer build on it.
#![forbid(unsafe_code)]

pub mod args;
pub mod builtin;
pub mod compare;
pub mod complain;
pub mod document;
pub mod documents;
pub mod error;
pub mod limits;
pub mod merge;
pub mod oci;
pub mod parse;
pub mod policy;
#[cfg(feature = "cli")]
pub mod policy_args;
pub mod resolve;
pub mod spec;
pub mod types;
pub mod validate;

pub use args::{recorded_document, ArgClasses, ArgKind, RecordedArgs};
pub use compare::{looser_than, Looser};
pub use complain::{would_deny, Mode, WouldDeny};
pub use document::{
    content_digest, content_hash, ArgCondition, Rendered, SeccompDocument, SyscallRule,
};
pub use documents::{from_value, split_documents, Item};
pub use error::{FieldError, MergeError, ProfileError, ResolveError};
pub use merge::{diff, merge, ProfileDiff};
pub use oci::{OciReference, OCI_PREFIX};
pub use parse::{parse_profile, parse_value, EvalContext, ParsedProfile, SourceFormat};
pub use policy::Policy;
#[cfg(feature = "cli")]
pub use policy_args::PolicyArgs;
pub use resolve::{base_chain, resolve, ProfileLookup, BUILTIN_PREFIX, MAX_DEPTH};
pub use spec::ProfileSpec;
pub use types::{Action, Arch, Flag, Op};
pub use validate::{validate_document, validate_spec, validate_spec_at, SyscallTable};
