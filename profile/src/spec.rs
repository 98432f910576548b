//! A profile as the model sees it: a document, the base it builds on, and whether it is
//! installed. The API's `SeccompProfileSpec` carries exactly this (flattened), so the model
//! never imports the API.

use super::complain::Mode;
use super::document::SeccompDocument;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A profile: the filter and how it is built and installed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProfileSpec {
    /// The filter, as the OCI runtime-spec `linux.seccomp` section.
    #[serde(flatten)]
    pub document: SeccompDocument,
    /// A profile to build on: another SeccompProfile in this namespace, a built-in base
    /// (`builtin:runc`), or a profile artifact in a registry
    /// (`oci://REGISTRY/REPOSITORY@sha256:DIGEST`, or `:TAG`, resolved to a digest once), which
    /// the operator fetches (see the "Profiles in a registry" guide). The result is the base's syscalls plus this profile's; this profile's
    /// own fields win.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = crate::limits::MAX_BASE_NAME_LEN))]
    pub base_profile_name: Option<String>,
    /// Keep the profile but do not install it on nodes (an installed file is removed).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub disabled: bool,
    /// Ask the kernel to audit this profile's denials (`SECCOMP_FILTER_FLAG_LOG`), so that the
    /// node agents report them as `SyscallDenied` Events. Unset means yes, unless the cluster
    /// turns it off; `false` installs the profile without the flag. A profile that lists its
    /// own `flags` is installed with exactly those.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub report_denials: Option<bool>,
    /// `Enforce` (the default): the filter as written. `Complain`: every refusing action is
    /// installed as `SCMP_ACT_LOG`, so nothing is refused and what enforcement would refuse is
    /// reported. Only the mode of the profile a pod references counts (not its bases').
    #[serde(default, skip_serializing_if = "Mode::is_enforce")]
    pub mode: Mode,
}

impl From<SeccompDocument> for ProfileSpec {
    /// A profile that is only its filter: no base, installed, reporting denials as the cluster
    /// says, enforced (a built-in base, a fetched registry base).
    fn from(document: SeccompDocument) -> Self {
        ProfileSpec {
            document,
            base_profile_name: None,
            disabled: false,
            report_denials: None,
            mode: Mode::default(),
        }
    }
}
