//! Which operator profiles a pod names: its seccomp references, from the one walk of a pod's
//! settings ([`crds::confinement::settings`]). Pure, tested without an API server.
//!
//! A pod uses the operator profiles its fields name — the pod's (also its sandbox's profile,
//! even when every container sets its own) and every container's: init containers, native
//! sidecars, containers, ephemeral containers. A legacy annotation does nothing since
//! Kubernetes 1.27: a profile it names is not used, and its deletion is not held for that pod.

use crds::confinement::Seccomp;
use k8s_openapi::api::core::v1::Pod;
use kube::ResourceExt;
use std::collections::BTreeSet;

pub use crds::localhost::ProfileId;

/// The operator profile a `localhostProfile` value names, as the kubelet resolves it (see
/// [`crds::localhost`]): `Ok(None)` for a file outside the operator's directory, an error for a
/// value that must be refused.
pub fn parse_localhost(path: &str) -> Result<Option<ProfileId>, crds::localhost::RefError> {
    crds::localhost::operator_profile(path)
}

/// One place in a pod that names a Localhost seccomp profile.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Reference {
    /// Where: `pod`, `container <name>`, `initContainer <name>`, `ephemeralContainer <name>`,
    /// or `annotation <key>`.
    pub place: String,
    /// The `localhostProfile` value (for an annotation, what follows `localhost/`).
    pub path: String,
    /// Whether the kubelet applies it (false for a legacy annotation).
    pub in_effect: bool,
}

/// Every Localhost seccomp reference written in a pod, with whether the kubelet applies it:
/// the pod-level and container-level fields (init containers, native sidecars included,
/// containers and ephemeral containers), and the legacy annotations (not in effect).
pub fn references(pod: &Pod) -> Vec<Reference> {
    crds::confinement::settings(pod)
        .into_iter()
        .filter_map(|s| {
            let in_effect = s.in_effect();
            match s.seccomp {
                Seccomp::Localhost { path, .. } => Some(Reference {
                    place: s.place.to_string(),
                    path,
                    in_effect,
                }),
                _ => None,
            }
        })
        .collect()
}

/// The operator's profiles a pod uses.
pub fn profiles_of(pod: &Pod) -> BTreeSet<ProfileId> {
    references(pod)
        .iter()
        .filter(|r| r.in_effect)
        .filter_map(|r| parse_localhost(&r.path).ok().flatten())
        .collect()
}

/// Whether a pod still counts as a user: its containers can still start (not Succeeded or
/// Failed).
pub fn is_live(pod: &Pod) -> bool {
    !matches!(
        pod.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Succeeded" | "Failed")
    )
}

/// `<namespace>/<name>` of a pod.
pub fn pod_key(pod: &Pod) -> String {
    format!("{}/{}", pod.namespace().unwrap_or_default(), pod.name_any())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn pod(name: &str, json: serde_json::Value) -> Pod {
        let mut v = serde_json::json!({"apiVersion":"v1","kind":"Pod","metadata":{"name":name,"namespace":"shop"}});
        v.as_object_mut()
            .unwrap()
            .extend(json.as_object().unwrap().clone());
        serde_json::from_value(v).unwrap()
    }

    pub(crate) fn localhost(p: &str) -> serde_json::Value {
        serde_json::json!({"seccompProfile":{"type":"Localhost","localhostProfile":p}})
    }

    #[test]
    fn localhost_values_name_operator_profiles() {
        let ok = |v: &str| parse_localhost(v).unwrap();
        assert_eq!(
            ok("operator/shop/web.json"),
            Some(("shop".into(), "web".into()))
        );
        assert_eq!(
            ok("operator/shop/web.v2.json"),
            Some(("shop".into(), "web.v2".into()))
        );
        // Spelled as the kubelet resolves it (the full table is in crds::localhost).
        assert_eq!(
            ok("./operator/shop/web.json"),
            Some(("shop".into(), "web".into()))
        );
        assert_eq!(ok("profiles/web.json"), None);
        assert_eq!(ok("operatorx/shop/web.json"), None);
        for bad in [
            "operator/shop/web.yaml",
            "operator/shop/a/b.json",
            "operator//x.json",
            "../x.json",
        ] {
            assert!(parse_localhost(bad).is_err(), "{bad}");
        }
        // The index counts a pod that spells the path differently as a user of the profile;
        // a legacy annotation (no effect since Kubernetes 1.27) makes no user.
        let p = pod(
            "p",
            serde_json::json!({"metadata": {"name":"p","namespace":"shop","annotations":{"container.seccomp.security.alpha.kubernetes.io/a":"localhost/./operator/shop/web.json"}},
                "spec": {"containers": [{"name":"a","image":"x"},{"name":"b","image":"x","securityContext":localhost("operator//shop/api.json")}]}}),
        );
        assert_eq!(
            profiles_of(&p),
            BTreeSet::from([("shop".to_string(), "api".to_string())])
        );
    }

    #[test]
    fn finds_every_reference() {
        let p = pod(
            "p",
            serde_json::json!({
                "metadata": {"name":"p","namespace":"shop","annotations":{"container.seccomp.security.alpha.kubernetes.io/old":"localhost/operator/shop/legacy.json"}},
                "spec": {
                    "securityContext": localhost("operator/shop/podlevel.json"),
                    "containers": [{"name":"a","image":"x","securityContext":localhost("operator/shop/a.json")},
                                   {"name":"b","image":"x","securityContext":{"seccompProfile":{"type":"RuntimeDefault"}}}],
                    "initContainers": [{"name":"i","image":"x","securityContext":localhost("operator/other/i.json")},
                                       {"name":"proxy","image":"x","restartPolicy":"Always","securityContext":localhost("operator/shop/proxy.json")}],
                    "ephemeralContainers": [{"name":"e","image":"x","securityContext":localhost("operator/shop/e.json")}]
                }
            }),
        );
        let names: Vec<String> = profiles_of(&p)
            .into_iter()
            .map(|(ns, n)| format!("{ns}/{n}"))
            .collect();
        assert_eq!(
            names,
            vec!["other/i", "shop/a", "shop/e", "shop/podlevel", "shop/proxy"],
            "every field, the sidecar's too; not the legacy annotation"
        );
        // The annotation is still listed, for the webhooks that look at it, not in effect.
        let legacy: Vec<Reference> = references(&p)
            .into_iter()
            .filter(|r| !r.in_effect)
            .collect();
        assert_eq!(
            legacy,
            vec![Reference {
                place: "annotation container.seccomp.security.alpha.kubernetes.io/old".into(),
                path: "operator/shop/legacy.json".into(),
                in_effect: false
            }]
        );
    }
}
