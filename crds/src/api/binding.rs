//! `ProfileBinding`: give containers of an image a profile without editing their pods.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, LabelSelector};
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// In namespaces labelled `seccomp-operator.dev/binding=enabled`, new pods' containers whose
/// image matches get the referenced profile as their container-level `seccompProfile`
/// (containers that already set one are left alone).
#[derive(CustomResource, Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "seccomp-operator.dev",
    version = "v1alpha1",
    kind = "ProfileBinding",
    plural = "profilebindings",
    shortname = "pb",
    namespaced,
    status = "ProfileBindingStatus",
    printcolumn = r#"{"name":"Profile","type":"string","jsonPath":".spec.profileRef.name"}"#,
    printcolumn = r#"{"name":"Image","type":"string","jsonPath":".spec.image"}"#,
    printcolumn = r#"{"name":"Bound","type":"integer","jsonPath":".status.boundPods"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct ProfileBindingSpec {
    /// The profile to bind, in this namespace.
    pub profile_ref: ProfileRef,
    /// Container image to match exactly (e.g. `localhost/busybox:1`), or `*` for any image.
    #[schemars(length(min = 1, max = seccomp_profile::limits::MAX_IMAGE_LEN))]
    pub image: String,
    /// Only pods with these labels; all pods when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_selector: Option<LabelSelector>,
    /// Only containers with these names; all containers when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = seccomp_profile::limits::MAX_CONTAINER_NAMES))]
    #[schemars(inner(length(max = seccomp_profile::limits::MAX_REF_LEN)))]
    pub container_names: Option<Vec<String>>,
}

/// A reference to a profile in the binding's namespace.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProfileRef {
    /// Kind of the profile: `SeccompProfile`.
    pub kind: ProfileRefKind,
    /// Name of the profile.
    #[schemars(length(min = 1, max = seccomp_profile::limits::MAX_REF_LEN))]
    pub name: String,
}

/// Kinds of profile a binding can reference.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum ProfileRefKind {
    /// A SeccompProfile.
    #[default]
    SeccompProfile,
}

/// Observed state of a ProfileBinding.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProfileBindingStatus {
    /// Pods that got the profile from this binding.
    #[serde(default)]
    pub bound_pods: u32,
    /// Standard conditions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}
