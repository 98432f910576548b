//! seccomp-operator's API (`seccomp-operator.dev/v1alpha1`):
//!
//! - [`api`]: the custom resources, derived with kube's `CustomResource`;
//! - the names users and tools depend on (labels, finalizer, paths), as constants.
//!
//! The profile document model they carry is the `seccomp-profile` crate.
#![forbid(unsafe_code)]

pub mod api;
pub mod apply;
pub mod confinement;
pub mod events;
pub mod localhost;
pub mod reference;

pub use api::*;

/// The API group.
pub const GROUP: &str = "seccomp-operator.dev";
/// The API version.
pub const VERSION: &str = "v1alpha1";
/// Finalizer held by the operator while pods use a profile.
pub const FINALIZER_IN_USE: &str = "seccomp-operator.dev/in-use";
/// Annotation the install gate sets on a profile, with the in-use finalizer, when it admits a
/// pod that uses it (RFC 3339): the finalizer is held at least a minute from then, so that a
/// delete right after the admission cannot remove the file under the starting pod.
pub const ANNOTATION_ADMITTED_AT: &str = "seccomp-operator.dev/admitted-at";
/// Scheduling gate a pod carries from its creation while an operator profile it uses is not
/// yet Installed on every counted node; the operator removes it (and nothing else).
pub const SCHEDULING_GATE: &str = "seccomp-operator.dev/profile";
/// Event reason on a pod that waits at the scheduling gate, naming the profile and its state.
pub const REASON_WAITING_FOR_PROFILE: &str = "WaitingForProfile";
/// Whether `pod` carries the operator's scheduling gate.
pub fn has_scheduling_gate(pod: &k8s_openapi::api::core::v1::Pod) -> bool {
    pod.spec
        .as_ref()
        .and_then(|s| s.scheduling_gates.as_ref())
        .is_some_and(|g| g.iter().any(|g| g.name == SCHEDULING_GATE))
}
/// Namespace label that turns on the binding webhook.
pub const LABEL_BINDING: &str = "seccomp-operator.dev/binding";
/// Label on profiles produced by a recording: the recording's name.
pub const LABEL_RECORDING: &str = "seccomp-operator.dev/recording";
/// Label on profiles produced by a recording: the container's name.
pub const LABEL_CONTAINER: &str = "seccomp-operator.dev/container";
/// Label on per-pod partial profiles still waiting to be merged.
pub const LABEL_PARTIAL: &str = "seccomp-operator.dev/partial";
/// Label on RecordingReports: the node whose recorder writes the report.
pub const LABEL_NODE: &str = "seccomp-operator.dev/node";
/// Directory, relative to `<kubelet-root>/seccomp`, that holds the operator's profiles; also
/// the first component of every `localhostProfile` value.
pub const LOCALHOST_DIR: &str = "operator";
/// Taint the operator keeps on a node while its agent is not live (not yet synced, or silent
/// past [`AGENT_LEASE_SECONDS`]), so that no new pod is scheduled where its profile may be
/// missing. Kubelets should register with it (`--register-with-taints`).
pub const TAINT_AGENT_NOT_READY: &str = "seccomp-operator.dev/agent-not-ready";
/// Label on the node agents' heartbeat Leases (in the operator's namespace); its value is
/// the node's name.
pub const LABEL_AGENT_NODE: &str = "seccomp-operator.dev/agent-node";
/// A node agent renews its Lease this often (seconds).
pub const AGENT_RENEW_SECONDS: u64 = 10;
/// A node agent whose Lease was not renewed for this long (seconds) is silent: its node is
/// not counted.
pub const AGENT_LEASE_SECONDS: i32 = 40;

/// The name of a node agent's heartbeat Lease: `seccomp-agent-<node>`, shortened with a hash
/// when the node's name is too long for it.
pub fn agent_lease_name(node: &str) -> String {
    let name = format!("seccomp-agent-{node}");
    if name.len() <= 253 {
        return name;
    }
    let digest = seccomp_profile::content_hash(node.as_bytes());
    let hex = digest.trim_start_matches("sha256:");
    format!("seccomp-agent-{}-{}", &node[..200], &hex[..16])
}

/// The default kubelet root directory.
pub const DEFAULT_KUBELET_ROOT: &str = "/var/lib/kubelet";

/// All CRDs, for `crdgen` and tests.
pub fn crds(
) -> Vec<k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition>
{
    use kube::CustomResourceExt;
    vec![
        SeccompProfile::crd(),
        ProfileRecording::crd(),
        ProfileBinding::crd(),
        SeccompNodeStatus::crd(),
        RecordingReport::crd(),
    ]
}

/// Every CRD as `(file name, YAML)`, the file name being `<plural>.yaml`. The YAML is what
/// `crdgen` writes and what is committed under `crds/`.
pub fn crd_yaml() -> Vec<(String, String)> {
    crds()
        .into_iter()
        .map(|crd| {
            let file = format!("{}.yaml", crd.spec.names.plural);
            let yaml = serde_saphyr::to_string(&crd).expect("a CRD always serialises");
            (file, yaml)
        })
        .collect()
}

/// The API reference page (`docs/api.md`): every field of every CRD.
pub fn api_reference() -> String {
    reference::markdown(&crds())
}

/// A Kubernetes label selector as kube's [`kube::core::Selector`], or why it is invalid (an
/// unknown operator, `In`/`NotIn` without values).
pub fn parse_selector(
    sel: &k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector,
) -> Result<kube::core::Selector, kube::core::ParseExpressionError> {
    kube::core::Selector::try_from(sel.clone())
}

/// Whether `labels` satisfy a label selector; an invalid selector matches nothing (callers
/// that can report it use [`parse_selector`]).
pub fn selector_matches(
    sel: &k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector,
    labels: &std::collections::BTreeMap<String, String>,
) -> bool {
    use kube::core::SelectorExt;
    parse_selector(sel).is_ok_and(|s| s.matches(labels))
}

/// The namespace label that turns the confinement policy on (`warn` or `enforce`).
pub const LABEL_POLICY: &str = "seccomp-operator.dev/profile-policy";
/// Label on profiles produced by a recording: the pod they were recorded from.
pub const LABEL_POD: &str = "seccomp-operator.dev/pod";
/// Label on the `SCMP_ACT_LOG` profile a `Logs` recording uses: the recording's name.
pub const LABEL_AUDIT_LOG_FOR: &str = "seccomp-operator.dev/audit-log-for";
/// Annotation the binding webhook puts on pods it placed under a `Logs` recording's profile.
pub const ANNOTATION_RECORDED_BY: &str = "seccomp-operator.dev/recorded-by";
