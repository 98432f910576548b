//! `SeccompNodeStatus`: one object per node, named after it, listing every profile the node's
//! agent manages and its state there.

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The profiles installed on one node. Written by that node's agent; named after the node.
#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "seccomp-operator.dev",
    version = "v1alpha1",
    kind = "SeccompNodeStatus",
    plural = "seccompnodestatuses",
    status = "SeccompNodeStatusStatus",
    printcolumn = r#"{"name":"Ready","type":"boolean","jsonPath":".status.ready"}"#,
    printcolumn = r#"{"name":"Installed","type":"integer","jsonPath":".status.installed"}"#,
    printcolumn = r#"{"name":"Errors","type":"integer","jsonPath":".status.errors"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct SeccompNodeStatusSpec {
    /// The node this object describes (equal to the object's name).
    pub node_name: String,
}

/// State of one profile on one node.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum NodeProfileState {
    /// The file is on the node with `contentHash`.
    Installed,
    /// The profile could not be installed; see `message`.
    Error,
    /// The file is being removed.
    Removing,
}

/// One profile on the node.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NodeProfileStatus {
    /// Namespace of the SeccompProfile.
    pub namespace: String,
    /// Name of the SeccompProfile.
    pub name: String,
    /// `sha256:<hex>` of the file on the node.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_hash: Option<String>,
    /// State on this node.
    pub state: NodeProfileState,
    /// Why the state is Error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// When this entry last changed (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated: Option<String>,
}

/// Observed state of the node's profiles.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SeccompNodeStatusStatus {
    /// Whether the agent finished its first full sync.
    #[serde(default)]
    pub ready: bool,
    /// Number of profiles in state Installed.
    #[serde(default)]
    pub installed: u32,
    /// Number of profiles in state Error.
    #[serde(default)]
    pub errors: u32,
    /// The node's seccomp architecture (its profiles are rendered for it and its compat
    /// architectures when a profile names none). Absent from agents older than the field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "seccomp_profile::Arch")]
    pub architecture: Option<seccomp_profile::Arch>,
    /// Every profile the agent manages on this node, sorted by namespace and name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub profiles: Vec<NodeProfileStatus>,
}
