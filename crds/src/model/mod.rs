//! The seccomp profile document model: parsing every common format, validation, canonical
//! rendering, base-profile resolution, merge and diff. Pure Rust, no I/O beyond what callers
//! hand in.

pub mod builtin;
pub mod document;
pub mod error;
pub mod merge;
pub mod parse;
pub mod policy;
pub mod resolve;
pub mod spec;
pub mod types;
pub mod validate;

pub use document::{content_hash, ArgCondition, Rendered, SeccompDocument, SyscallRule};
pub use error::{FieldError, MergeError, ProfileError, ResolveError};
pub use merge::{diff, merge, ProfileDiff};
pub use parse::{parse_profile, parse_value, EvalContext, ParsedProfile, SourceFormat};
pub use policy::Policy;
pub use resolve::{base_chain, resolve, ProfileLookup, BUILTIN_PREFIX, MAX_DEPTH};
pub use spec::ProfileSpec;
pub use types::{Action, Arch, Flag, Op};
pub use validate::{validate_document, validate_spec, validate_spec_at, SyscallTable};
