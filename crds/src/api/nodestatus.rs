//! `SeccompNodeStatus`: one object per node, named after it: how far the node's agent has
//! synced, and only the profiles it could not install. Its size follows the failures on the
//! node (bounded), never the number of profiles in the cluster.
//!
//! How a reader decides whether profile P is on node N: P is *installed* there when N's
//! report is ready, `syncedResourceVersion` is at or after the resourceVersion at which P's
//! spec (and its bases' specs) last changed, and P is neither listed in `notInstalled` nor in
//! a namespace named in `truncatedNamespaces` (nor is the report `truncated`). Resource
//! versions of one resource are compared as integers (Kubernetes guarantees this from v1.35,
//! KEP-5504; etcd-backed servers have always given integers).

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
    /// The agent's last sync covered every SeccompProfile change up to this resourceVersion
    /// (the highest resourceVersion among the profiles it synced): every profile whose spec
    /// is at or before it, and that is not listed as failing below, is on this node.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub synced_resource_version: Option<String>,
    /// Profiles the agent should have installed but has not (in state Error), sorted by
    /// namespace and name; at most [`MAX_NOT_INSTALLED_PER_NAMESPACE`] per namespace and
    /// [`MAX_NOT_INSTALLED`] in all, each message bounded.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub not_installed: Vec<NodeProfileStatus>,
    /// Namespaces with more failing profiles than could be listed: no profile of these
    /// namespaces counts as installed on this node (one tenant's failures never hide another's
    /// state). At most [`MAX_TRUNCATED_NAMESPACES`].
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub truncated_namespaces: Vec<String>,
    /// More namespaces failed than could be named: no profile counts as installed on this node
    /// (fail closed: the node is failing broadly, for example its disk is full).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub truncated: bool,
    /// What the agent learnt of its node's kubelet. Absent from agents older than the field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubelet: Option<KubeletSettings>,
}

/// What a node's kubelet does that decides how its pods run, as the node's agent read it
/// from the kubelet's `/configz`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct KubeletSettings {
    /// The kubelet's `seccompDefault`: a container that sets no seccomp profile runs under
    /// `RuntimeDefault` (true) or unconfined (false). Absent when the agent could not tell
    /// (see `reason`): readers then treat the node as not defaulting.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seccomp_default: Option<bool>,
    /// Why `seccompDefault` is not known (at most [`MAX_NODE_MESSAGE_BYTES`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// At most this many failing profiles of one namespace are listed per node.
pub const MAX_NOT_INSTALLED_PER_NAMESPACE: usize = 16;
/// At most this many failing profiles are listed per node in all.
pub const MAX_NOT_INSTALLED: usize = 256;
/// At most this many namespaces are named in `truncatedNamespaces`.
pub const MAX_TRUNCATED_NAMESPACES: usize = 128;
/// Bytes of one listed failure's message at most.
pub const MAX_NODE_MESSAGE_BYTES: usize = 256;

impl SeccompNodeStatusStatus {
    /// The kubelet's `seccompDefault` as reported; None when not reported or not known.
    pub fn seccomp_default(&self) -> Option<bool> {
        self.kubelet.as_ref().and_then(|k| k.seccomp_default)
    }

    /// The synced resourceVersion as an integer (absent or not an integer: nothing is
    /// confirmed on this node).
    pub fn synced_version(&self) -> Option<u64> {
        self.synced_resource_version
            .as_deref()
            .and_then(parse_resource_version)
    }
}

/// A resourceVersion as an integer, when it is one (KEP-5504: a positive integer without
/// leading zeros).
pub fn parse_resource_version(rv: &str) -> Option<u64> {
    if rv.starts_with('0') {
        return None;
    }
    rv.parse().ok()
}
