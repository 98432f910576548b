//! `SeccompProfile`: a seccomp filter, installed on every node as a Localhost profile.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::CustomResource;
use schemars::JsonSchema;
use seccomp_profile::ProfileSpec;
use serde::{Deserialize, Serialize};

/// A seccomp profile. The node agent writes it to every node as
/// `<kubelet-root>/seccomp/operator/<namespace>/<name>.json`; pods use it with
/// `securityContext.seccompProfile: {type: Localhost, localhostProfile: <status.localhostProfile>}`.
#[derive(CustomResource, Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "seccomp-operator.dev",
    version = "v1alpha1",
    kind = "SeccompProfile",
    plural = "seccompprofiles",
    shortname = "sp",
    namespaced,
    status = "SeccompProfileStatus",
    printcolumn = r#"{"name":"Status","type":"string","jsonPath":".status.phase"}"#,
    printcolumn = r#"{"name":"Installed","type":"string","jsonPath":".status.installedNodes"}"#,
    printcolumn = r#"{"name":"Mode","type":"string","jsonPath":".spec.mode"}"#,
    printcolumn = r#"{"name":"Outdated","type":"integer","jsonPath":".status.podsOnOlderVersion"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#,
    printcolumn = r#"{"name":"LocalhostProfile","type":"string","jsonPath":".status.localhostProfile","priority":1}"#
)]
#[schemars(transform = api_server_rules)]
pub struct SeccompProfileSpec {
    /// The profile: the filter and how it is built and installed (the document model's
    /// [`ProfileSpec`]; its fields appear directly in `spec`).
    #[serde(flatten)]
    pub profile: ProfileSpec,
    /// For an `oci://` base in a private registry: a `kubernetes.io/dockerconfigjson` Secret
    /// in this profile's namespace holding the registry's credentials. The operator reads it
    /// only where the namespace lets it (a Role and RoleBinding: see the "Profiles in a
    /// registry" guide); a Secret in any other namespace is never used.
    #[serde(
        default,
        rename = "pullSecretName",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(
        length(max = 253),
        regex(pattern = r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
    )]
    pub pull_secret_name: Option<String>,
}

/// What the API server itself checks in a profile beyond the field formats
/// (`x-kubernetes-validations`, CEL), so that it holds with the operator down: the total of
/// syscall names over all rules, and that only `SCMP_ACT_ERRNO` and `SCMP_ACT_TRACE` take a
/// return value (`defaultErrnoRet`, `errnoRet`). Every rule is bounded by the schema's
/// `maxItems`, so each passes the API server's cost estimate; the messages are fixed text
/// (a message naming the rule would be estimated over the budget). The cluster's profile policy
/// (listeners, filter flags) is a ValidatingAdmissionPolicy
/// (`config/webhook/profile-policy.yaml`): it reads the policy ConfigMap.
fn api_server_rules(schema: &mut schemars::Schema) {
    let max_total = seccomp_profile::limits::MAX_TOTAL_NAMES;
    let takes = "['SCMP_ACT_ERRNO', 'SCMP_ACT_TRACE']";
    let only = "only SCMP_ACT_ERRNO and SCMP_ACT_TRACE take a return value";
    let bad_rule = format!("has(r.errnoRet) && !(r.action in {takes})");
    schema.insert(
        "x-kubernetes-validations".into(),
        serde_json::json!([
            {
                "rule": format!("!has(self.syscalls) || self.syscalls.map(r, size(r.names)).sum() <= {max_total}"),
                "message": format!("more syscall names in all rules than the limit of {max_total}"),
                "fieldPath": ".syscalls",
            },
            {
                "rule": format!("!has(self.defaultErrnoRet) || self.defaultAction in {takes}"),
                "messageExpression": format!("'not allowed with defaultAction ' + self.defaultAction + ': {only}'"),
                "fieldPath": ".defaultErrnoRet",
            },
            {
                "rule": format!("!has(self.syscalls) || !self.syscalls.exists(r, {bad_rule})"),
                "message": format!("errnoRet is not allowed in a rule whose action is not SCMP_ACT_ERRNO or SCMP_ACT_TRACE: {only}"),
                "fieldPath": ".syscalls",
            },
        ]),
    );
}

impl From<ProfileSpec> for SeccompProfileSpec {
    fn from(profile: ProfileSpec) -> Self {
        SeccompProfileSpec {
            profile,
            pull_secret_name: None,
        }
    }
}

impl std::ops::Deref for SeccompProfileSpec {
    type Target = ProfileSpec;
    fn deref(&self) -> &ProfileSpec {
        &self.profile
    }
}

impl std::ops::DerefMut for SeccompProfileSpec {
    fn deref_mut(&mut self) -> &mut ProfileSpec {
        &mut self.profile
    }
}

/// Where a profile is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum ProfilePhase {
    /// Accepted, not yet on any node.
    Pending,
    /// On some nodes, not all.
    Installing,
    /// On every node that runs the agent.
    Installed,
    /// Invalid, its base chain does not resolve, or a node failed to install it.
    Error,
    /// `spec.disabled` is set: not on any node.
    Disabled,
    /// Being deleted; waits for the pods that use it.
    Terminating,
}

/// Install progress over the nodes that run the agent.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NodeCounts {
    /// Nodes whose installed file has this profile's `contentHash`.
    pub installed: u32,
    /// Nodes that run the agent.
    pub total: u32,
}

/// Observed state of a SeccompProfile.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SeccompProfileStatus {
    /// Summary of the profile's state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<ProfilePhase>,
    /// The exact value for a pod's `seccompProfile.localhostProfile`:
    /// `operator/<namespace>/<name>.json`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub localhost_profile: Option<String>,
    /// `sha256:<hex>` of the rendered document the nodes must have.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_hash: Option<String>,
    /// Install progress over nodes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nodes: Option<NodeCounts>,
    /// `installed/total`, for display.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub installed_nodes: Option<String>,
    /// Pods (`<namespace>/<name>`) that reference this profile; while any exists, deletion
    /// waits.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub active_workloads: Vec<String>,
    /// Standard conditions: `Valid` (spec and base chain are acceptable), `Ready`
    /// (installed on every node) and, for a `Complain` profile, `ReadyToEnforce` (enough
    /// containers ran under it long enough with nothing it would deny).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Syscalls this profile refused recently, as the node agents reported them
    /// (`SyscallDenied` Events on the pods): most recently seen first, at most
    /// [`MAX_STATUS_DENIALS`].
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = MAX_STATUS_DENIALS))]
    pub denials: Vec<DeniedSyscall>,
    /// For a `Complain` profile: syscalls its enforced form would have refused, as the node
    /// agents reported them (`SyscallWouldBeDenied` Events) since the current version was
    /// installed; the action is the one enforcement would take. Most recently seen first, at
    /// most [`MAX_STATUS_DENIALS`].
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = MAX_STATUS_DENIALS))]
    pub would_deny: Vec<DeniedSyscall>,
    /// When the current version (`contentHash`) was first seen installed on every counted
    /// node (RFC 3339). A container started before it may run an older version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub installed_at: Option<String>,
    /// Running pods that use this profile with a container started before `installedAt`: they
    /// keep the filter they started with (the kernel cannot change it) until restarted, for
    /// example with `kubectl rollout restart`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pods_on_older_version: Option<u32>,
    /// The registry artifact an `oci://` base resolved to, as the operator fetched and
    /// validated it: the node agents build the profile from this (nodes never contact a
    /// registry). A tag is resolved once and followed again only when the spec changes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolved_base: Option<ResolvedBase>,
}

/// Fold a registry base into `spec`: when `spec` builds on an `oci://` reference and
/// `resolved` is the operator's fetch of exactly that reference, `spec` becomes the profile
/// with the base's rules under its own (as any base chain resolves) and no base; Ok(digest).
/// Ok(None) when `spec` has no registry base. Err(why) while the operator has not fetched the
/// reference the spec names: the profile cannot be built yet. Every reader of a profile built
/// on a registry artifact (the node agents' install loop and their denial classification)
/// goes through here; none contacts a registry.
pub fn fold_registry_base(
    spec: &mut ProfileSpec,
    resolved: Option<&ResolvedBase>,
) -> Result<Option<String>, String> {
    let Some(base) = spec
        .base_profile_name
        .as_deref()
        .filter(|b| b.starts_with(seccomp_profile::OCI_PREFIX))
    else {
        return Ok(None);
    };
    match resolved.filter(|r| r.reference == base) {
        Some(r) => {
            spec.document = seccomp_profile::resolve::inherit(&spec.document, r.profile.clone());
            spec.base_profile_name = None;
            Ok(Some(r.digest.clone()))
        }
        None => Err(format!(
            "spec.baseProfileName: waiting for the operator to fetch `{base}` (see the profile's status)"
        )),
    }
}

/// An `oci://` base as fetched (`status.resolvedBase`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ResolvedBase {
    /// `spec.baseProfileName` as it was when fetched.
    #[schemars(length(max = seccomp_profile::limits::MAX_BASE_NAME_LEN))]
    pub reference: String,
    /// The manifest's digest (`sha256:…`): the reference pinned.
    #[schemars(length(max = 71))]
    pub digest: String,
    /// The `metadata.generation` it was resolved for: a tag is followed again only for a
    /// later one.
    pub generation: i64,
    /// The artifact's profile, validated.
    pub profile: seccomp_profile::SeccompDocument,
}

impl SeccompProfileStatus {
    /// The `Ready` condition's message (why the profile is not Installed), or "".
    pub fn ready_message(&self) -> &str {
        self.conditions
            .iter()
            .find(|c| c.type_ == "Ready")
            .map_or("", |c| c.message.as_str())
    }
}

/// Entries in a profile's `status.denials`.
pub const MAX_STATUS_DENIALS: usize = 10;

/// One syscall a profile refused.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeniedSyscall {
    /// The syscall's name.
    pub syscall: String,
    /// The action that refused it (`SCMP_ACT_ERRNO`, `SCMP_ACT_KILL_PROCESS`, ...).
    pub action: String,
    /// Times refused, over the reporting Events still stored (the API server expires Events,
    /// by default after an hour).
    pub count: u64,
    /// When it was last refused (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_seen: Option<String>,
    /// One pod it was refused in (`<name>`, in the profile's namespace).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub example_pod: Option<String>,
}

impl SeccompProfile {
    /// The value pods put in `localhostProfile` for the profile `name` in `namespace`.
    pub fn localhost_path(namespace: &str, name: &str) -> String {
        format!("{}/{namespace}/{name}.json", crate::LOCALHOST_DIR)
    }
}
