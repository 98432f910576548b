//! What seccomp profile each container of a pod runs under, decided as the kubelet decides it,
//! and whether it may gain privileges. One definition for the node agent (which profile a
//! denied syscall came from) and the operator (the in-use index, the webhooks, the
//! confinement report and the namespace policy).
//!
//! [`settings`] is the one walk of a pod's seccomp settings: the pod's field, each container's
//! field and the legacy annotations, each with where it is written. [`containers`] decides
//! each container from the same walk of the containers.
//!
//! # What the kubelet applies (Kubernetes 1.27 and later)
//!
//! For each container, the first of: the container's `securityContext.seccompProfile`, the
//! pod's `securityContext.seccompProfile` (which is also the profile of the pod's sandbox).
//! Nothing set: `RuntimeDefault` on a kubelet running with `seccompDefault: true`, unconfined
//! elsewhere — see [`NodeDefault`]. Every container counts: init containers, native sidecars
//! (init containers with `restartPolicy: Always`, which run for the pod's whole life; they are
//! listed with the init containers, where the spec has them), containers and ephemeral
//! containers.
//!
//! # Legacy annotations
//!
//! `seccomp.security.alpha.kubernetes.io/pod` and
//! `container.seccomp.security.alpha.kubernetes.io/<name>` do nothing since Kubernetes 1.27:
//! the kubelet ignores them and the API server no longer copies them into the fields (it
//! warns, and refuses a pod whose annotation and field disagree). A container whose only
//! setting is such an annotation runs as if nothing were set. [`settings`] still lists them,
//! not [in effect](Setting::in_effect), so that each component decides:
//!
//! - the container decision ([`containers`]), hence the namespace policy, the confinement
//!   report and the node agent's attribution of denials, ignores them: such a container is
//!   [`Seccomp::Unset`], and the policy's message says the annotation has no effect;
//! - the operator's in-use index ignores them (a profile named only in an annotation is not in
//!   use: its deletion is not held), and so does the install gate (it does not wait for such a
//!   profile);
//! - the operator's isolation webhook still refuses an annotation naming another namespace's
//!   operator profile (see its docs for why).

use k8s_openapi::api::core::v1::{Pod, PodSpec, SeccompProfile, SecurityContext};
use std::fmt;

/// Legacy pod-level seccomp annotation (no effect since Kubernetes 1.27).
pub const ANNOTATION_POD: &str = "seccomp.security.alpha.kubernetes.io/pod";
/// Prefix of the legacy per-container seccomp annotation (the container's name follows; no
/// effect since Kubernetes 1.27).
pub const ANNOTATION_CONTAINER_PREFIX: &str = "container.seccomp.security.alpha.kubernetes.io/";

/// Where a container is in the pod's spec: `spec.containers`.
pub const CONTAINER: &str = "container";
/// `spec.initContainers`: init containers, native sidecars included.
pub const INIT_CONTAINER: &str = "initContainer";
/// `spec.ephemeralContainers`.
pub const EPHEMERAL_CONTAINER: &str = "ephemeralContainer";

/// The seccomp profile a container runs under, as its pod's spec sets it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Seccomp {
    /// A file under the kubelet's seccomp directory; `operator` is the operator profile it
    /// names, when it names one.
    Localhost {
        /// The `localhostProfile` value as written.
        path: String,
        /// The operator profile (namespace, name) it resolves to.
        operator: Option<(String, String)>,
    },
    /// The container runtime's default profile.
    RuntimeDefault,
    /// Explicitly unconfined.
    Unconfined,
    /// Nothing set (legacy annotations aside): what the node's kubelet does decides
    /// ([`NodeDefault`]).
    Unset,
}

/// The kinds counted in the confinement report and its metrics.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    /// A Localhost profile (the operator's or another file).
    Localhost,
    /// An operator profile in `Complain` mode: it refuses nothing, so for the policy the
    /// container is not confined.
    Complain,
    /// The runtime's default profile, set or applied by the kubelet's `seccompDefault`.
    RuntimeDefault,
    /// Explicitly unconfined.
    Unconfined,
    /// Nothing set, on a node not known to apply `RuntimeDefault` to it.
    Unset,
}

impl Kind {
    /// The metric label value: `localhost`, `runtime-default`, `unconfined`, `unset`.
    pub fn label(self) -> &'static str {
        match self {
            Kind::Localhost => "localhost",
            Kind::Complain => "complain",
            Kind::RuntimeDefault => "runtime-default",
            Kind::Unconfined => "unconfined",
            Kind::Unset => "unset",
        }
    }

    /// What a container of this kind runs under on a node: a container that sets nothing runs
    /// under `RuntimeDefault` where the kubelet defaults to it, and counts as unset elsewhere.
    pub fn on(self, node: NodeDefault) -> Kind {
        match (self, node) {
            (Kind::Unset, NodeDefault::RuntimeDefault) => Kind::RuntimeDefault,
            (kind, _) => kind,
        }
    }
}

/// What the kubelet that runs (or will run) a pod does with a container that sets no seccomp
/// profile.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum NodeDefault {
    /// Not known: the pod is not scheduled yet (admission of a new pod), or its node's agent
    /// did not report its kubelet's setting. Treated as unconfined (fail closed: a pod that
    /// relies on the node default may land on a node without it).
    #[default]
    Unknown,
    /// The kubelet runs such a container unconfined (`seccompDefault` off).
    Unconfined,
    /// The kubelet runs such a container under `RuntimeDefault` (`seccompDefault: true`).
    RuntimeDefault,
}

impl NodeDefault {
    /// From a node's reported `seccompDefault` (None: not reported or not known).
    pub fn from_reported(seccomp_default: Option<bool>) -> Self {
        match seccomp_default {
            Some(true) => NodeDefault::RuntimeDefault,
            Some(false) => NodeDefault::Unconfined,
            None => NodeDefault::Unknown,
        }
    }
}

impl Seccomp {
    /// The kind the pod's spec sets (see [`Kind::on`] for what it runs under on a node).
    pub fn kind(&self) -> Kind {
        match self {
            Seccomp::Localhost { .. } => Kind::Localhost,
            Seccomp::RuntimeDefault => Kind::RuntimeDefault,
            Seccomp::Unconfined => Kind::Unconfined,
            Seccomp::Unset => Kind::Unset,
        }
    }
}

impl fmt::Display for Seccomp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Seccomp::Localhost { path, .. } => write!(f, "Localhost {path}"),
            Seccomp::RuntimeDefault => f.write_str("RuntimeDefault"),
            Seccomp::Unconfined => f.write_str("Unconfined"),
            Seccomp::Unset => f.write_str("no seccomp profile"),
        }
    }
}

fn localhost(path: &str) -> Seccomp {
    Seccomp::Localhost {
        path: path.to_owned(),
        operator: crate::localhost::operator_profile(path).ok().flatten(),
    }
}

fn from_field(p: &SeccompProfile) -> Seccomp {
    match p.type_.as_str() {
        "Localhost" => localhost(p.localhost_profile.as_deref().unwrap_or_default()),
        "RuntimeDefault" => Seccomp::RuntimeDefault,
        // "Unconfined", and anything the API server would not have accepted.
        _ => Seccomp::Unconfined,
    }
}

/// What a legacy annotation's value would have meant to a kubelet before 1.27.
fn from_annotation(v: &str) -> Seccomp {
    match v {
        "runtime/default" | "docker/default" => Seccomp::RuntimeDefault,
        v => match v.strip_prefix("localhost/") {
            Some(path) => localhost(path),
            None => Seccomp::Unconfined,
        },
    }
}

/// Where a seccomp setting is written in a pod.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Place {
    /// `spec.securityContext.seccompProfile`: the default of the pod's containers and the
    /// profile of its sandbox.
    Pod,
    /// A container's `securityContext.seccompProfile`.
    Container {
        /// [`CONTAINER`], [`INIT_CONTAINER`] or [`EPHEMERAL_CONTAINER`].
        kind: &'static str,
        /// The container's name.
        name: String,
    },
    /// A legacy annotation, by key: never in effect.
    Annotation(String),
}

impl fmt::Display for Place {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Place::Pod => f.write_str("pod"),
            Place::Container { kind, name } => write!(f, "{kind} {name}"),
            Place::Annotation(key) => write!(f, "annotation {key}"),
        }
    }
}

/// One seccomp setting written in a pod.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Setting {
    /// Where.
    pub place: Place,
    /// What it names.
    pub seccomp: Seccomp,
}

impl Setting {
    /// Whether the kubelet applies it: the fields are, the legacy annotations are not.
    pub fn in_effect(&self) -> bool {
        !matches!(self.place, Place::Annotation(_))
    }
}

/// The pod's containers in spec order — init containers (native sidecars included),
/// containers, ephemeral containers — each with where it is, its name and security context.
fn each_container(
    spec: &PodSpec,
) -> impl Iterator<Item = (&'static str, &str, Option<&SecurityContext>)> {
    let init = spec
        .init_containers
        .iter()
        .flatten()
        .map(|c| (INIT_CONTAINER, c.name.as_str(), c.security_context.as_ref()));
    let regular = spec
        .containers
        .iter()
        .map(|c| (CONTAINER, c.name.as_str(), c.security_context.as_ref()));
    let ephemeral = spec.ephemeral_containers.iter().flatten().map(|c| {
        (
            EPHEMERAL_CONTAINER,
            c.name.as_str(),
            c.security_context.as_ref(),
        )
    });
    init.chain(regular).chain(ephemeral)
}

fn is_legacy_annotation(key: &str) -> bool {
    key == ANNOTATION_POD || key.starts_with(ANNOTATION_CONTAINER_PREFIX)
}

/// Every seccomp setting written in `pod`: the pod's field, each container's field (in the
/// order of [`containers`]), then the legacy annotations (not in effect).
pub fn settings(pod: &Pod) -> Vec<Setting> {
    let mut out = Vec::new();
    if let Some(spec) = &pod.spec {
        if let Some(p) = spec
            .security_context
            .as_ref()
            .and_then(|s| s.seccomp_profile.as_ref())
        {
            out.push(Setting {
                place: Place::Pod,
                seccomp: from_field(p),
            });
        }
        for (kind, name, sc) in each_container(spec) {
            if let Some(p) = sc.and_then(|s| s.seccomp_profile.as_ref()) {
                out.push(Setting {
                    place: Place::Container {
                        kind,
                        name: name.to_owned(),
                    },
                    seccomp: from_field(p),
                });
            }
        }
    }
    for (key, value) in pod.metadata.annotations.iter().flatten() {
        if is_legacy_annotation(key) {
            out.push(Setting {
                place: Place::Annotation(key.clone()),
                seccomp: from_annotation(value),
            });
        }
    }
    out
}

/// Every container status of `pod`: regular, init (native sidecars included) and ephemeral.
pub fn container_statuses(
    pod: &Pod,
) -> impl Iterator<Item = &k8s_openapi::api::core::v1::ContainerStatus> {
    let st = pod.status.as_ref();
    [
        st.and_then(|s| s.container_statuses.as_ref()),
        st.and_then(|s| s.init_container_statuses.as_ref()),
        st.and_then(|s| s.ephemeral_container_statuses.as_ref()),
    ]
    .into_iter()
    .flatten()
    .flatten()
}

/// One container of a pod (init — native sidecars included —, regular or ephemeral) as the
/// policy sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContainerConfinement {
    /// [`CONTAINER`], [`INIT_CONTAINER`] or [`EPHEMERAL_CONTAINER`].
    pub kind: &'static str,
    /// The container's name.
    pub name: String,
    /// Its seccomp profile as the pod's spec sets it (see [`ContainerConfinement::runs_under`]
    /// for what it runs under on its node).
    pub seccomp: Seccomp,
    /// Whether a process in it may gain privileges: `allowPrivilegeEscalation` is not `false`,
    /// or the container is privileged.
    pub privilege_escalation: bool,
    /// What its node's kubelet does with a container that sets nothing.
    pub node: NodeDefault,
    /// A legacy annotation that would have set its profile before Kubernetes 1.27 (only when
    /// the fields set none): named in the policy's message.
    pub ignored_annotation: Option<String>,
    /// Its operator profile is in `Complain` mode (set by the caller, which knows the
    /// profiles: [`mark_complain`]).
    pub complain: bool,
}

/// Mark the containers whose operator profile `is_complain` says is in `Complain` mode.
pub fn mark_complain(
    containers: &mut [ContainerConfinement],
    is_complain: impl Fn(&(String, String)) -> bool,
) {
    for c in containers {
        if let Seccomp::Localhost {
            operator: Some(p), ..
        } = &c.seccomp
        {
            c.complain = is_complain(p);
        }
    }
}

impl ContainerConfinement {
    /// What it runs under on its node.
    pub fn runs_under(&self) -> Kind {
        if self.complain {
            return Kind::Complain;
        }
        self.seccomp.kind().on(self.node)
    }

    /// Whether the namespace policy accepts its profile: `RuntimeDefault` (set, or the
    /// node's default) or an operator profile.
    pub fn satisfies_policy(&self) -> bool {
        match &self.seccomp {
            Seccomp::Localhost { operator, .. } => operator.is_some() && !self.complain,
            _ => self.runs_under() == Kind::RuntimeDefault,
        }
    }

    /// What the namespace policy objects to, as a sentence naming the field to set; None when
    /// nothing.
    pub fn violation(&self) -> Option<String> {
        let mut wrong = Vec::new();
        if !self.satisfies_policy() {
            const SET: &str = "set securityContext.seccompProfile.type to RuntimeDefault or Localhost with an operator profile";
            wrong.push(match &self.seccomp {
                Seccomp::Localhost { path, .. } if self.complain => format!(
                    "its seccomp profile {path} is in Complain mode, which refuses nothing; set the profile's spec.mode to Enforce (or use an enforced operator profile or RuntimeDefault)"
                ),
                Seccomp::Localhost { path, .. } => format!(
                    "its seccomp profile {path} is not an operator profile; set securityContext.seccompProfile to RuntimeDefault or to Localhost operator/<namespace>/<name>.json"
                ),
                Seccomp::Unset => {
                    let ignored = self
                        .ignored_annotation
                        .as_ref()
                        .map(|k| format!(" (its annotation {k} has no effect since Kubernetes 1.27)"))
                        .unwrap_or_default();
                    match self.node {
                        NodeDefault::Unconfined => format!(
                            "it has no seccomp profile{ignored} and its node's kubelet runs such containers unconfined (no seccompDefault); {SET}"
                        ),
                        _ => format!(
                            "it has no seccomp profile{ignored}; set securityContext.seccompProfile.type to RuntimeDefault explicitly (or Localhost with an operator profile): the node default (kubelet seccompDefault) is not known at admission"
                        ),
                    }
                }
                other => format!("it runs with {other} (unconfined); {SET}"),
            });
        }
        if self.privilege_escalation {
            wrong.push(
                "it allows privilege escalation; set securityContext.allowPrivilegeEscalation: false (and privileged: false)"
                    .to_owned(),
            );
        }
        (!wrong.is_empty()).then(|| format!("{} {:?}: {}", self.kind, self.name, wrong.join("; ")))
    }
}

/// Every container of `pod` with its profile and privilege escalation, on a node whose
/// kubelet does `node` with a container that sets no profile.
pub fn containers(pod: &Pod, node: NodeDefault) -> Vec<ContainerConfinement> {
    let Some(spec) = &pod.spec else {
        return Vec::new();
    };
    let annotations = pod.metadata.annotations.as_ref();
    let pod_field = spec
        .security_context
        .as_ref()
        .and_then(|s| s.seccomp_profile.as_ref());
    each_container(spec)
        .map(|(kind, name, sc)| {
            let seccomp = match sc.and_then(|s| s.seccomp_profile.as_ref()).or(pod_field) {
                Some(p) => from_field(p),
                None => Seccomp::Unset,
            };
            let ignored_annotation = match seccomp {
                Seccomp::Unset => [
                    format!("{ANNOTATION_CONTAINER_PREFIX}{name}"),
                    ANNOTATION_POD.to_owned(),
                ]
                .into_iter()
                .find(|k| annotations.is_some_and(|a| a.contains_key(k))),
                _ => None,
            };
            let privileged = sc.and_then(|s| s.privileged).unwrap_or(false);
            let no_escalation = sc.and_then(|s| s.allow_privilege_escalation) == Some(false);
            ContainerConfinement {
                kind,
                name: name.to_owned(),
                seccomp,
                privilege_escalation: privileged || !no_escalation,
                node,
                ignored_annotation,
                complain: false,
            }
        })
        .collect()
}

/// Containers of one namespace by kind.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// Under a Localhost profile (the operator's or another file), not in complain mode.
    pub localhost: u32,
    /// Under an operator profile in `Complain` mode (refusing nothing).
    pub complain: u32,
    /// Under the runtime's default profile.
    pub runtime_default: u32,
    /// Explicitly `Unconfined`.
    pub unconfined: u32,
    /// Nothing set, on a node not known to run such containers under `RuntimeDefault`
    /// (kubelet `seccompDefault`).
    pub unset: u32,
    /// May escalate privileges (`allowPrivilegeEscalation` not false, or privileged).
    pub privilege_escalation: u32,
}

impl Counts {
    /// Count a pod's containers (kinds as its spec sets them) on a node that does `node`.
    pub fn add(&mut self, kinds: &[(Kind, bool)], node: NodeDefault) {
        for (kind, escalates) in kinds {
            *match kind.on(node) {
                Kind::Localhost => &mut self.localhost,
                Kind::Complain => &mut self.complain,
                Kind::RuntimeDefault => &mut self.runtime_default,
                Kind::Unconfined => &mut self.unconfined,
                Kind::Unset => &mut self.unset,
            } += 1;
            self.privilege_escalation += u32::from(*escalates);
        }
    }

    /// By metric label (`seccomp`).
    pub fn by_kind(&self) -> [(&'static str, u32); 5] {
        [
            ("localhost", self.localhost),
            ("complain", self.complain),
            ("runtime-default", self.runtime_default),
            ("unconfined", self.unconfined),
            ("unset", self.unset),
        ]
    }

    /// The ConfigMap's line for a namespace.
    pub fn line(&self) -> String {
        format!(
            "localhost={} runtime-default={} unconfined={} unset={} privilege-escalation={} complain={}",
            self.localhost,
            self.runtime_default,
            self.unconfined,
            self.unset,
            self.privilege_escalation,
            self.complain
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(json: serde_json::Value) -> Pod {
        serde_json::from_value(json).unwrap()
    }

    fn one(p: &Pod, name: &str) -> ContainerConfinement {
        containers(p, NodeDefault::Unknown)
            .into_iter()
            .find(|c| c.name == name)
            .unwrap()
    }

    #[test]
    fn container_field_wins_then_pod_field_and_annotations_do_nothing() {
        let p = pod(serde_json::json!({
            "metadata": {"name": "p", "annotations": {
                "seccomp.security.alpha.kubernetes.io/pod": "unconfined",
                "container.seccomp.security.alpha.kubernetes.io/b": "runtime/default",
            }},
            "spec": {
                "securityContext": {"seccompProfile": {"type": "Localhost", "localhostProfile": "operator/t/p.json"}},
                "containers": [
                    {"name": "a", "securityContext": {"seccompProfile": {"type": "RuntimeDefault"}}},
                    {"name": "b"},
                ],
            }
        }));
        assert_eq!(one(&p, "a").seccomp, Seccomp::RuntimeDefault);
        assert_eq!(
            one(&p, "b").seccomp,
            Seccomp::Localhost {
                path: "operator/t/p.json".into(),
                operator: Some(("t".into(), "p".into()))
            },
            "the pod's field applies; the annotation does nothing"
        );
        assert_eq!(one(&p, "b").ignored_annotation, None);
        // Annotations only: every container runs as if nothing were set.
        let p = pod(serde_json::json!({
            "metadata": {"name": "p", "annotations": {
                "seccomp.security.alpha.kubernetes.io/pod": "localhost/operator/t/q.json",
                "container.seccomp.security.alpha.kubernetes.io/b": "runtime/default",
            }},
            "spec": {"containers": [{"name": "a"}, {"name": "b"}], "initContainers": [{"name": "i"}]}
        }));
        for c in ["a", "b", "i"] {
            assert_eq!(one(&p, c).seccomp, Seccomp::Unset, "{c}");
            assert!(!one(&p, c).satisfies_policy(), "{c}");
        }
        assert_eq!(
            one(&p, "b").ignored_annotation.as_deref(),
            Some("container.seccomp.security.alpha.kubernetes.io/b"),
            "the container's own annotation is the one it would have used"
        );
        assert_eq!(
            one(&p, "a").ignored_annotation.as_deref(),
            Some(ANNOTATION_POD)
        );
        let b = one(&p, "b").violation().unwrap();
        assert!(
            b.contains("no seccomp profile")
                && b.contains("container.seccomp.security.alpha.kubernetes.io/b has no effect"),
            "{b}"
        );
        assert_eq!(one(&p, "i").kind, INIT_CONTAINER);
        let bare = pod(
            serde_json::json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "a"}]}}),
        );
        assert_eq!(one(&bare, "a").seccomp, Seccomp::Unset);
        assert_eq!(one(&bare, "a").ignored_annotation, None);
        assert!(one(&bare, "a").privilege_escalation);
    }

    #[test]
    fn settings_list_fields_in_effect_and_annotations_not() {
        let p = pod(serde_json::json!({
            "metadata": {"name": "p", "annotations": {
                "seccomp.security.alpha.kubernetes.io/pod": "localhost/operator/t/q.json",
                "other": "x",
            }},
            "spec": {
                "securityContext": {"seccompProfile": {"type": "RuntimeDefault"}},
                "initContainers": [
                    {"name": "log", "restartPolicy": "Always", "securityContext": {"seccompProfile": {"type": "Localhost", "localhostProfile": "operator/t/log.json"}}},
                    {"name": "i"},
                ],
                "containers": [{"name": "a", "securityContext": {"seccompProfile": {"type": "Unconfined"}}}],
                "ephemeralContainers": [{"name": "e", "securityContext": {"seccompProfile": {"type": "RuntimeDefault"}}}],
            }
        }));
        let s = settings(&p);
        let shown: Vec<(String, bool)> = s
            .iter()
            .map(|s| (s.place.to_string(), s.in_effect()))
            .collect();
        assert_eq!(
            shown,
            vec![
                ("pod".to_owned(), true),
                ("initContainer log".to_owned(), true),
                ("container a".to_owned(), true),
                ("ephemeralContainer e".to_owned(), true),
                (
                    "annotation seccomp.security.alpha.kubernetes.io/pod".to_owned(),
                    false
                ),
            ]
        );
        assert!(matches!(
            &s[4].seccomp,
            Seccomp::Localhost { operator: Some((_, n)), .. } if n == "q"
        ));
    }

    #[test]
    fn a_native_sidecar_runs_under_its_own_profile_like_any_container() {
        let p = pod(serde_json::json!({
            "metadata": {"name": "p"},
            "spec": {
                "initContainers": [
                    {"name": "proxy", "restartPolicy": "Always", "securityContext": {"allowPrivilegeEscalation": false, "seccompProfile": {"type": "Localhost", "localhostProfile": "operator/t/proxy.json"}}},
                    {"name": "bare", "restartPolicy": "Always"},
                ],
                "containers": [{"name": "a", "securityContext": {"seccompProfile": {"type": "RuntimeDefault"}}}],
            }
        }));
        let all = containers(&p, NodeDefault::Unknown);
        assert_eq!(
            all.iter().map(|c| c.name.as_str()).collect::<Vec<_>>(),
            ["proxy", "bare", "a"]
        );
        let proxy = one(&p, "proxy");
        assert_eq!(proxy.kind, INIT_CONTAINER);
        assert_eq!(proxy.violation(), None);
        assert!(one(&p, "bare").violation().unwrap().contains("\"bare\""));
    }

    #[test]
    fn an_unset_container_runs_under_the_nodes_default() {
        let p = pod(serde_json::json!({
            "metadata": {"name": "p"},
            "spec": {"containers": [
                {"name": "none", "securityContext": {"allowPrivilegeEscalation": false}},
                {"name": "unc", "securityContext": {"allowPrivilegeEscalation": false, "seccompProfile": {"type": "Unconfined"}}},
            ]}
        }));
        let on = |node| containers(&p, node);
        let defaulting = on(NodeDefault::RuntimeDefault);
        assert_eq!(defaulting[0].runs_under(), Kind::RuntimeDefault);
        assert_eq!(defaulting[0].violation(), None);
        assert_eq!(
            defaulting[1].runs_under(),
            Kind::Unconfined,
            "an explicit Unconfined stays"
        );
        let off = on(NodeDefault::Unconfined);
        assert_eq!(off[0].runs_under(), Kind::Unset);
        assert!(off[0]
            .violation()
            .unwrap()
            .contains("its node's kubelet runs such containers unconfined"));
        let unknown = on(NodeDefault::Unknown);
        assert_eq!(unknown[0].runs_under(), Kind::Unset);
        let why = unknown[0].violation().unwrap();
        assert!(
            why.contains("no seccomp profile")
                && why.contains("RuntimeDefault explicitly")
                && why.contains("not known at admission"),
            "{why}"
        );
        assert_eq!(
            Kind::Unset.on(NodeDefault::RuntimeDefault).label(),
            "runtime-default"
        );
        assert_eq!(Kind::Unset.on(NodeDefault::Unknown).label(), "unset");
        assert_eq!(
            Kind::Localhost.on(NodeDefault::RuntimeDefault),
            Kind::Localhost
        );
        assert_eq!(
            NodeDefault::from_reported(Some(true)),
            NodeDefault::RuntimeDefault
        );
        assert_eq!(NodeDefault::from_reported(None), NodeDefault::Unknown);
    }

    #[test]
    fn the_policy_accepts_runtime_default_and_operator_profiles_without_escalation() {
        let p = pod(serde_json::json!({
            "metadata": {"name": "p"},
            "spec": {"containers": [
                {"name": "ok", "securityContext": {"allowPrivilegeEscalation": false, "seccompProfile": {"type": "Localhost", "localhostProfile": "./operator//t/p.json"}}},
                {"name": "rd", "securityContext": {"allowPrivilegeEscalation": false, "seccompProfile": {"type": "RuntimeDefault"}}},
                {"name": "esc", "securityContext": {"seccompProfile": {"type": "RuntimeDefault"}}},
                {"name": "priv", "securityContext": {"privileged": true, "allowPrivilegeEscalation": false, "seccompProfile": {"type": "RuntimeDefault"}}},
                {"name": "unc", "securityContext": {"allowPrivilegeEscalation": false, "seccompProfile": {"type": "Unconfined"}}},
                {"name": "other", "securityContext": {"allowPrivilegeEscalation": false, "seccompProfile": {"type": "Localhost", "localhostProfile": "mine.json"}}},
                {"name": "none", "securityContext": {"allowPrivilegeEscalation": false}},
            ]}
        }));
        assert_eq!(one(&p, "ok").violation(), None);
        assert_eq!(one(&p, "rd").violation(), None);
        let esc = one(&p, "esc").violation().unwrap();
        assert!(
            esc.contains("\"esc\"") && esc.contains("allowPrivilegeEscalation: false"),
            "{esc}"
        );
        assert!(
            one(&p, "priv").violation().is_some(),
            "privileged escalates whatever the field says"
        );
        let unc = one(&p, "unc").violation().unwrap();
        assert!(
            unc.contains("Unconfined") && unc.contains("RuntimeDefault"),
            "{unc}"
        );
        assert!(one(&p, "other")
            .violation()
            .unwrap()
            .contains("not an operator profile"));
        assert!(one(&p, "none")
            .violation()
            .unwrap()
            .contains("no seccomp profile"));
    }
}
