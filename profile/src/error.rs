//! Errors of the profile model. Every message names the field it is about.

use std::fmt;

/// One problem with one field, e.g. `syscalls[2].args[0].index: 7 is out of range 0..=5`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct FieldError {
    /// JSON path of the field, e.g. `spec.syscalls[2].action`.
    pub field: String,
    /// Why the value is wrong.
    pub reason: String,
}

impl FieldError {
    /// A new error about `field`.
    pub fn new(field: impl Into<String>, reason: impl Into<String>) -> Self {
        FieldError {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

/// Why a profile could not be read or is not acceptable.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ProfileError {
    /// The text is not JSON or YAML of the expected shape.
    #[error("{0}")]
    Syntax(String),
    /// One or more fields are invalid.
    #[error("{}", FieldList(.0))]
    Invalid(Vec<FieldError>),
}

impl From<FieldError> for ProfileError {
    fn from(e: FieldError) -> Self {
        ProfileError::Invalid(vec![e])
    }
}

impl ProfileError {
    /// The field errors, if this is a validation error.
    pub fn fields(&self) -> &[FieldError] {
        match self {
            ProfileError::Invalid(v) => v,
            ProfileError::Syntax(_) => &[],
        }
    }
}

struct FieldList<'a>(&'a [FieldError]);

impl fmt::Display for FieldList<'_> {
    /// Bounded: the first errors are listed, the rest counted (a status or an admission
    /// answer carries this text).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&crate::limits::summarize(
            self.0.iter().map(|e| e.to_string()),
        ))
    }
}

/// Why a `baseProfileName` chain could not be resolved.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ResolveError {
    /// A profile in the chain names a base that does not exist.
    #[error("spec.baseProfileName: base profile `{base}` (wanted by `{by}`) does not exist")]
    MissingBase {
        /// The profile that names the base.
        by: String,
        /// The missing base.
        base: String,
    },
    /// The chain comes back to a profile already in it.
    #[error("spec.baseProfileName: cycle in base profiles: {}", .0.join(" -> "))]
    Cycle(Vec<String>),
    /// The chain is longer than [`super::resolve::MAX_DEPTH`].
    #[error("spec.baseProfileName: base profile chain deeper than {max}: {}", .chain.join(" -> "))]
    TooDeep {
        /// The chain so far.
        chain: Vec<String>,
        /// The limit.
        max: usize,
    },
    /// A profile in the chain is itself disabled.
    #[error("spec.baseProfileName: base profile `{0}` is disabled")]
    DisabledBase(String),
}

/// Why documents could not be merged.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MergeError {
    /// Nothing to merge.
    #[error("nothing to merge: no profiles given")]
    Empty,
    /// The documents disagree on the default action.
    #[error("defaultAction differs: profile {index} has {found}, the first has {expected}")]
    DefaultDiffers {
        /// Position of the disagreeing document.
        index: usize,
        /// The first document's default.
        expected: String,
        /// This document's default.
        found: String,
    },
    /// The documents give different seccomp agents.
    #[error("listenerPath differs: profile {index} has `{found}`, another has `{expected}`")]
    ListenerDiffers {
        /// Position of the disagreeing document.
        index: usize,
        /// One listener.
        expected: String,
        /// The other.
        found: String,
    },
    /// The same syscall with the same arguments has two different actions.
    #[error("syscall `{name}` is {a} in one profile and {b} in another")]
    Conflict {
        /// The syscall.
        name: String,
        /// One action.
        a: String,
        /// The other.
        b: String,
    },
}

/// `e` and every error under it, `outer: inner: ...`: for what shows an error without its
/// chain (a status, an Event, a log field), where errors name their cause only as their
/// source. A cause whose text is already there (an error that prints its source itself) is
/// not repeated.
pub fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut next = e.source();
    while let Some(cause) = next {
        let text = cause.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        next = cause.source();
    }
    out
}
