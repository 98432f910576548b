//! The one merge of recorded profiles: a container's merged `<recording>-<container>` is the
//! union of what an earlier merge produced and the per-pod partials present now, so merging
//! is idempotent and monotone.

use crate::{Error, Result};
use crds::{
    ProfileRecording, SeccompProfile, SeccompProfileSpec, LABEL_CONTAINER, LABEL_RECORDING,
};
use kube::api::DeleteParams;
use kube::{Api, ResourceExt};
use seccomp_profile::{merge, Arch};
use std::collections::BTreeMap;

/// The name of a merged profile.
pub fn merged_name(recording: &str, container: &str) -> String {
    format!("{recording}-{container}")
}

/// The merged document of one container: the union of what an earlier merge produced (if
/// any) and the partials present now. Folding the earlier result in makes merging
/// idempotent and monotone: the same partials merged twice give the same document, and a
/// partial that arrives after a merge (a slower node, a retried publish) adds to the merged
/// profile instead of replacing it.
pub fn merged_document(
    earlier: Option<&seccomp_profile::SeccompDocument>,
    partials: &[&seccomp_profile::SeccompDocument],
    native: Arch,
) -> Result<seccomp_profile::SeccompDocument> {
    let docs: Vec<seccomp_profile::SeccompDocument> = earlier
        .into_iter()
        .chain(partials.iter().copied())
        .cloned()
        .collect();
    merge(&docs, native).map_err(Error::Merge)
}

/// The `spec.mode` of a recording's result: the recording's `profileMode` for a new one; an
/// earlier result keeps its own (a late report must never turn an enforced profile back to
/// Complain).
pub fn result_mode(
    rec: &ProfileRecording,
    earlier: Option<seccomp_profile::Mode>,
) -> seccomp_profile::Mode {
    earlier.unwrap_or(rec.spec.profile_mode)
}

/// Merge the partials per container into `<recording>-<container>` (server-side apply, so a
/// retry after a crash converges), then delete the partials.
pub async fn merge_partials(
    client: &kube::Client,
    rec: &ProfileRecording,
    ns: &str,
    parts: &[SeccompProfile],
) -> Result<()> {
    let name = rec.name_any();
    let mut by_container: BTreeMap<String, Vec<&SeccompProfile>> = BTreeMap::new();
    for p in parts {
        let c = p
            .labels()
            .get(LABEL_CONTAINER)
            .cloned()
            .unwrap_or_else(|| "container".into());
        by_container.entry(c).or_default().push(p);
    }
    let api: Api<SeccompProfile> = Api::namespaced(client.clone(), ns);
    for (container, ps) in &by_container {
        let target = merged_name(&name, container);
        // The result of an earlier merge of this recording, if there is one.
        let earlier = api
            .get_opt(&target)
            .await
            .map_err(Error::Kube)?
            .filter(|p| p.labels().get(LABEL_RECORDING) == Some(&name));
        let docs: Vec<&seccomp_profile::SeccompDocument> =
            ps.iter().map(|p| &p.spec.document).collect();
        let doc = merged_document(
            earlier.as_ref().map(|p| &p.spec.document),
            &docs,
            Arch::native(),
        )?;
        let mut obj = SeccompProfile::new(
            &target,
            SeccompProfileSpec::from(seccomp_profile::ProfileSpec {
                document: doc,
                base_profile_name: None,
                disabled: false,
                report_denials: None,
                // The recording's mode for a new result; an earlier result keeps its own (a
                // late report must never turn an enforced profile back to Complain).
                mode: result_mode(rec, earlier.as_ref().map(|p| p.spec.mode)),
            }),
        );
        obj.metadata.labels = Some(BTreeMap::from([
            (LABEL_RECORDING.to_owned(), name.clone()),
            (LABEL_CONTAINER.to_owned(), container.clone()),
        ]));
        crds::apply::apply_object(&api, crds::apply::OPERATOR, &obj)
            .await
            .map_err(Error::Kube)?;
        tracing::info!(recording = %name, profile = %target, partials = ps.len(), "merged");
    }
    for p in parts {
        match api.delete(&p.name_any(), &DeleteParams::default()).await {
            Ok(_) => {}
            Err(kube::Error::Api(e)) if e.code == 404 => {}
            Err(e) => return Err(Error::Kube(e)),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allow(names: &[&str]) -> seccomp_profile::SeccompDocument {
        seccomp_profile::SeccompDocument::allowlist(names.iter().map(|s| s.to_string()))
    }

    fn allowed(d: &seccomp_profile::SeccompDocument) -> Vec<String> {
        let mut v: Vec<String> = d.syscalls.iter().flat_map(|r| r.names.clone()).collect();
        v.sort();
        v
    }

    #[test]
    fn merging_is_idempotent_and_a_late_partial_only_adds() {
        let a = allow(&["read", "mkdir"]);
        let b = allow(&["read", "symlink"]);
        let first = merged_document(None, &[&a], Arch::X86_64).unwrap();
        assert_eq!(allowed(&first), ["mkdir", "read"]);
        // The same partial merged again: the same document.
        let again = merged_document(Some(&first), &[&a], Arch::X86_64).unwrap();
        assert_eq!(again, first);
        // A partial from another node after the merge: the union, never fewer syscalls.
        let late = merged_document(Some(&first), &[&b], Arch::X86_64).unwrap();
        assert_eq!(allowed(&late), ["mkdir", "read", "symlink"]);
        let both = merged_document(None, &[&a, &b], Arch::X86_64).unwrap();
        assert_eq!(late, both);
        // And merging that result with nothing new keeps it.
        let settled = merged_document(Some(&late), &[], Arch::X86_64).unwrap();
        assert_eq!(settled, late);
    }

    #[test]
    fn reports_taken_in_twice_or_late_never_shrink_the_merged_profile() {
        use super::super::intake::per_pod_profile;
        let rec: ProfileRecording = serde_json::from_value(serde_json::json!({
            "apiVersion": "seccomp-operator.dev/v1alpha1", "kind": "ProfileRecording",
            "metadata": {"name": "rec", "namespace": "shop", "uid": "u1"},
            "spec": {"podSelector": {}}
        }))
        .unwrap();
        let entry = |id: &str, pod: &str, names: &[&str]| crds::RecordedContainer {
            container_id: id.into(),
            pod: pod.into(),
            container: "web".into(),
            r#final: true,
            syscalls: names.iter().map(|s| s.to_string()).collect(),
            arguments: vec![],
        };
        let (a, b) = (
            entry("a", "p1", &["read", "mkdir"]),
            entry("b", "p2", &["read", "close"]),
        );
        let pa = per_pod_profile(&rec, &a, None).unwrap();
        let pb = per_pod_profile(&rec, &b, None).unwrap();
        let merged =
            merged_document(None, &[&pa.spec.document, &pb.spec.document], Arch::X86_64).unwrap();
        assert_eq!(allowed(&merged), ["close", "mkdir", "read"]);
        // The same reports taken in again: the same partials, the same merged profile.
        let pa2 = per_pod_profile(&rec, &a, Some(&pa.spec.profile)).unwrap();
        assert_eq!(pa2.spec, pa.spec);
        let again = merged_document(
            Some(&merged),
            &[&pa2.spec.document, &pb.spec.document],
            Arch::X86_64,
        )
        .unwrap();
        assert_eq!(again, merged);
        // A report that arrives after the merge, with fewer syscalls: only adds.
        let late = per_pod_profile(&rec, &entry("c", "p3", &["symlink"]), None).unwrap();
        let after = merged_document(Some(&merged), &[&late.spec.document], Arch::X86_64).unwrap();
        assert_eq!(allowed(&after), ["close", "mkdir", "read", "symlink"]);
    }
}
