//! What seccomp profile each container of a pod runs under, decided as the kubelet decides it,
//! and whether it may gain privileges. One definition for the node agent (which profile a
//! denied syscall came from) and the operator (which pods run unconfined; the namespace
//! policy).
//!
//! The kubelet (v1.19+) takes, for each container, the first of: the container's
//! `securityContext.seccompProfile`, the pod's `securityContext.seccompProfile`, the legacy
//! container annotation `container.seccomp.security.alpha.kubernetes.io/<name>`, the legacy pod
//! annotation `seccomp.security.alpha.kubernetes.io/pod`. Nothing set means unconfined up to
//! v1.26 (and on later kubelets unless `--seccomp-default` is on), so [`Seccomp::Unset`] is
//! counted apart from an explicit `Unconfined` but treated like it by the policy.

use k8s_openapi::api::core::v1::{Pod, SeccompProfile, SecurityContext};
use std::fmt;

/// Legacy pod-level seccomp annotation.
pub const ANNOTATION_POD: &str = "seccomp.security.alpha.kubernetes.io/pod";
/// Prefix of the legacy per-container seccomp annotation (the container's name follows).
pub const ANNOTATION_CONTAINER_PREFIX: &str = "container.seccomp.security.alpha.kubernetes.io/";

/// The seccomp profile a container runs under.
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
    /// Nothing set anywhere: unconfined on the kubelets this project supports by default.
    Unset,
}

impl Seccomp {
    /// The metric label value: `localhost`, `runtime-default`, `unconfined`, `unset`.
    pub fn kind(&self) -> &'static str {
        match self {
            Seccomp::Localhost { .. } => "localhost",
            Seccomp::RuntimeDefault => "runtime-default",
            Seccomp::Unconfined => "unconfined",
            Seccomp::Unset => "unset",
        }
    }

    /// Whether the namespace policy accepts it: `RuntimeDefault` or an operator profile.
    pub fn satisfies_policy(&self) -> bool {
        matches!(
            self,
            Seccomp::RuntimeDefault
                | Seccomp::Localhost {
                    operator: Some(_),
                    ..
                }
        )
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

fn from_annotation(v: &str) -> Seccomp {
    match v {
        "runtime/default" | "docker/default" => Seccomp::RuntimeDefault,
        v => match v.strip_prefix("localhost/") {
            Some(path) => localhost(path),
            None => Seccomp::Unconfined,
        },
    }
}

/// One container of a pod (regular, init or ephemeral) as the policy sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContainerConfinement {
    /// `container`, `initContainer` or `ephemeralContainer`.
    pub kind: &'static str,
    /// The container's name.
    pub name: String,
    /// Its seccomp profile.
    pub seccomp: Seccomp,
    /// Whether a process in it may gain privileges: `allowPrivilegeEscalation` is not `false`,
    /// or the container is privileged.
    pub privilege_escalation: bool,
}

impl ContainerConfinement {
    /// What the namespace policy objects to, as a sentence naming the field to set; None when
    /// nothing.
    pub fn violation(&self) -> Option<String> {
        let mut wrong = Vec::new();
        if !self.seccomp.satisfies_policy() {
            wrong.push(match &self.seccomp {
                Seccomp::Localhost { path, .. } => format!(
                    "its seccomp profile {path} is not an operator profile; set securityContext.seccompProfile to RuntimeDefault or to Localhost operator/<namespace>/<name>.json"
                ),
                other => format!(
                    "it runs with {other} (unconfined); set securityContext.seccompProfile.type to RuntimeDefault or Localhost with an operator profile"
                ),
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

/// Every container of `pod` with its effective profile and privilege escalation.
pub fn containers(pod: &Pod) -> Vec<ContainerConfinement> {
    let Some(spec) = &pod.spec else {
        return Vec::new();
    };
    let annotations = pod.metadata.annotations.as_ref();
    let pod_field = spec
        .security_context
        .as_ref()
        .and_then(|s| s.seccomp_profile.as_ref());
    let pod_annotation = annotations.and_then(|a| a.get(ANNOTATION_POD));
    let decide = |kind: &'static str, name: &str, sc: Option<&SecurityContext>| {
        let container_annotation =
            annotations.and_then(|a| a.get(&format!("{ANNOTATION_CONTAINER_PREFIX}{name}")));
        let seccomp = if let Some(p) = sc.and_then(|s| s.seccomp_profile.as_ref()) {
            from_field(p)
        } else if let Some(p) = pod_field {
            from_field(p)
        } else if let Some(v) = container_annotation {
            from_annotation(v)
        } else if let Some(v) = pod_annotation {
            from_annotation(v)
        } else {
            Seccomp::Unset
        };
        let privileged = sc.and_then(|s| s.privileged).unwrap_or(false);
        let no_escalation = sc.and_then(|s| s.allow_privilege_escalation) == Some(false);
        ContainerConfinement {
            kind,
            name: name.to_owned(),
            seccomp,
            privilege_escalation: privileged || !no_escalation,
        }
    };
    let mut out: Vec<ContainerConfinement> = spec
        .init_containers
        .iter()
        .flatten()
        .map(|c| decide("initContainer", &c.name, c.security_context.as_ref()))
        .collect();
    out.extend(
        spec.containers
            .iter()
            .map(|c| decide("container", &c.name, c.security_context.as_ref())),
    );
    out.extend(
        spec.ephemeral_containers
            .iter()
            .flatten()
            .map(|c| decide("ephemeralContainer", &c.name, c.security_context.as_ref())),
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(json: serde_json::Value) -> Pod {
        serde_json::from_value(json).unwrap()
    }

    fn one(p: &Pod, name: &str) -> ContainerConfinement {
        containers(p).into_iter().find(|c| c.name == name).unwrap()
    }

    #[test]
    fn container_field_wins_then_pod_field_then_annotations() {
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
            "the pod's field goes before any annotation"
        );
        let p = pod(serde_json::json!({
            "metadata": {"name": "p", "annotations": {
                "seccomp.security.alpha.kubernetes.io/pod": "localhost/operator/t/q.json",
                "container.seccomp.security.alpha.kubernetes.io/b": "runtime/default",
            }},
            "spec": {"containers": [{"name": "a"}, {"name": "b"}], "initContainers": [{"name": "i"}]}
        }));
        assert_eq!(one(&p, "b").seccomp, Seccomp::RuntimeDefault);
        assert!(
            matches!(one(&p, "a").seccomp, Seccomp::Localhost { operator: Some((_, ref n)), .. } if n == "q")
        );
        assert_eq!(one(&p, "i").kind, "initContainer");
        let bare = pod(
            serde_json::json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "a"}]}}),
        );
        assert_eq!(one(&bare, "a").seccomp, Seccomp::Unset);
        assert!(one(&bare, "a").privilege_escalation);
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
