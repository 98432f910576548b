//! Taking in what the node recorders report (pure): the per-pod profile a final report entry
//! becomes, what a report's `status.consumed` says after an intake, and which nodes still
//! record a selected container. The operator is the only writer of recorded profiles; the
//! recorders only write RecordingReports.

use super::merge::merged_document;
use crate::{Error, Result};
use crds::{
    recorded_profile_name, MergeStrategy, ProfileRecording, RecordedContainer, RecordingReport,
    SeccompProfile, SeccompProfileSpec, LABEL_CONTAINER, LABEL_PARTIAL, LABEL_POD, LABEL_RECORDING,
};
use kube::ResourceExt;
use seccomp_profile::{recorded_document, Arch, ArgClasses};
use std::collections::{BTreeMap, BTreeSet};

/// The name of the per-pod profile of `entry`.
pub fn per_pod_name(recording: &str, entry: &RecordedContainer) -> String {
    recorded_profile_name(&[recording, &entry.pod, &entry.container])
}

/// Whether `p` is the per-pod profile `rec` produced for the pod and container of `entry`
/// (so folding it in mixes nothing: a tenant's own profile of that name is replaced, never
/// merged).
pub fn same_source(p: &SeccompProfile, rec: &str, entry: &RecordedContainer) -> bool {
    let l = p.labels();
    l.get(LABEL_RECORDING).map(String::as_str) == Some(rec)
        && l.get(LABEL_POD) == Some(&entry.pod)
        && l.get(LABEL_CONTAINER) == Some(&entry.container)
}

/// The per-pod profile of a final entry: the union of `earlier` (the same profile as written
/// before: an earlier instance of the container, or an entry taken in twice) and the entry's
/// set. Partial (disabled, labelled `partial=true`, owned by the recording) when the recording
/// merges per container; a finished, enabled profile otherwise.
pub fn per_pod_profile(
    rec: &ProfileRecording,
    entry: &RecordedContainer,
    earlier: Option<&seccomp_profile::ProfileSpec>,
) -> Result<SeccompProfile> {
    let name = rec.name_any();
    let recorded = recorded_document(
        entry.syscalls.iter().cloned(),
        &ArgClasses::from_recorded(&entry.arguments),
    );
    let doc = merged_document(earlier.map(|e| &e.document), &[&recorded], Arch::native())?;
    let partial = rec.spec.merge_strategy == MergeStrategy::Containers;
    let mut p = SeccompProfile::new(
        &per_pod_name(&name, entry),
        SeccompProfileSpec::from(seccomp_profile::ProfileSpec {
            document: doc,
            base_profile_name: None,
            disabled: partial,
            report_denials: None,
            mode: crate::recording::merge::result_mode(rec, earlier.map(|e| e.mode)),
        }),
    );
    p.metadata.namespace = rec.namespace();
    let mut labels = BTreeMap::from([
        (LABEL_RECORDING.to_owned(), name.clone()),
        (LABEL_CONTAINER.to_owned(), entry.container.clone()),
        (LABEL_POD.to_owned(), entry.pod.clone()),
    ]);
    if partial {
        labels.insert(LABEL_PARTIAL.to_owned(), "true".to_owned());
        p.metadata.owner_references = Some(vec![
            crds::apply::owner_reference(rec, false).ok_or(Error::MissingUid)?
        ]);
    }
    p.metadata.labels = Some(labels);
    Ok(p)
}

/// Final entries of `report` not taken in yet.
pub fn to_take_in(report: &RecordingReport) -> impl Iterator<Item = &RecordedContainer> {
    report.unconsumed().filter(|c| c.r#final)
}

/// `status.consumed` of `report` once `taken` were taken in: the IDs the report still lists
/// (those it dropped are forgotten, so the list stays bounded by the report's size) plus the
/// new ones.
pub fn consumed_after(report: &RecordingReport, taken: &[String]) -> Vec<String> {
    let listed: BTreeSet<&str> = report
        .spec
        .containers
        .iter()
        .map(|c| c.container_id.as_str())
        .collect();
    let old = report.status.iter().flat_map(|s| s.consumed.iter());
    let mut out: Vec<String> = old
        .chain(taken.iter())
        .filter(|id| listed.contains(id.as_str()))
        .cloned()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    out.truncate(2 * crds::MAX_REPORT_CONTAINERS);
    out
}

/// Nodes whose report lists a container still being recorded, with how many.
pub fn still_recording(reports: &[RecordingReport]) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for r in reports {
        let n = r.unconsumed().filter(|c| !c.r#final).count();
        if n > 0 {
            *out.entry(r.spec.node_name.clone()).or_default() += n;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crds::{RecordingReportSpec, RecordingReportStatus};

    fn rec(strategy: &str) -> ProfileRecording {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "seccomp-operator.dev/v1alpha1", "kind": "ProfileRecording",
            "metadata": {"name": "rec", "namespace": "shop", "uid": "u1"},
            "spec": {"podSelector": {}, "mergeStrategy": strategy}
        }))
        .unwrap()
    }

    fn entry(id: &str, names: &[&str], fin: bool) -> RecordedContainer {
        RecordedContainer {
            container_id: id.into(),
            pod: "web-1".into(),
            container: "web".into(),
            r#final: fin,
            syscalls: names.iter().map(|s| s.to_string()).collect(),
            arguments: vec![],
        }
    }

    fn report(node: &str, entries: Vec<RecordedContainer>, consumed: &[&str]) -> RecordingReport {
        let mut r = RecordingReport::new(
            &crds::report_name("rec", node),
            RecordingReportSpec {
                node_name: node.into(),
                recording: "rec".into(),
                containers: entries,
            },
        );
        r.status = Some(RecordingReportStatus {
            consumed: consumed.iter().map(|s| s.to_string()).collect(),
        });
        r
    }

    fn allowed(p: &SeccompProfile) -> Vec<String> {
        let mut v: Vec<String> = p
            .spec
            .document
            .syscalls
            .iter()
            .flat_map(|r| r.names.clone())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn final_entries_become_per_pod_profiles_partial_or_final() {
        let e = entry("c1", &["read", "write"], true);
        let p = per_pod_profile(&rec("Containers"), &e, None).unwrap();
        assert_eq!(p.name_any(), "rec-web-1-web");
        assert!(p.spec.disabled);
        assert_eq!(p.labels()[LABEL_PARTIAL], "true");
        assert_eq!(p.labels()[LABEL_POD], "web-1");
        assert_eq!(p.owner_references()[0].uid, "u1");
        assert_eq!(allowed(&p), ["read", "write"]);
        assert!(same_source(&p, "rec", &e));
        let fin = per_pod_profile(&rec("None"), &e, None).unwrap();
        assert!(!fin.spec.disabled && fin.labels().get(LABEL_PARTIAL).is_none());
        assert!(fin.owner_references().is_empty());
    }

    #[test]
    fn taking_an_entry_in_twice_or_late_only_adds() {
        let r = rec("Containers");
        let first = per_pod_profile(&r, &entry("c1", &["read", "mkdir"], true), None).unwrap();
        // The same entry again (a retried intake, an agent that re-sent it): the same profile.
        let again = per_pod_profile(
            &r,
            &entry("c1", &["read", "mkdir"], true),
            Some(&first.spec.profile),
        )
        .unwrap();
        assert_eq!(again.spec, first.spec);
        // A later instance of the container with fewer syscalls: never fewer than before.
        let later = per_pod_profile(
            &r,
            &entry("c2", &["read", "symlink"], true),
            Some(&first.spec.profile),
        )
        .unwrap();
        assert_eq!(allowed(&later), ["mkdir", "read", "symlink"]);
    }

    #[test]
    fn a_result_keeps_its_own_mode_when_a_late_report_arrives() {
        let mut r = rec("None");
        r.spec.profile_mode = seccomp_profile::Mode::Complain;
        let first = per_pod_profile(&r, &entry("c1", &["read"], true), None).unwrap();
        assert_eq!(
            first.spec.mode,
            seccomp_profile::Mode::Complain,
            "the recording's mode"
        );
        let mut enforced = first.spec.profile.clone();
        enforced.mode = seccomp_profile::Mode::Enforce;
        let late = per_pod_profile(&r, &entry("c2", &["write"], true), Some(&enforced)).unwrap();
        assert_eq!(
            late.spec.mode,
            seccomp_profile::Mode::Enforce,
            "switched to Enforce by its tenant: a late report never turns it back"
        );
    }

    #[test]
    fn argument_classes_become_argument_rules_and_later_instances_widen_them() {
        let r = rec("None");
        let mut e = entry("c1", &["read", "clone", "socket"], true);
        e.arguments = vec![
            seccomp_profile::RecordedArgs {
                syscall: "clone".into(),
                values: vec![0],
                any: false,
            },
            seccomp_profile::RecordedArgs {
                syscall: "socket".into(),
                values: vec![(2 << 16) | 1],
                any: false,
            },
        ];
        let first = per_pod_profile(&r, &e, None).unwrap();
        let rules = |p: &SeccompProfile, name: &str| -> Vec<usize> {
            p.spec
                .document
                .syscalls
                .iter()
                .filter(|r| r.names.iter().any(|n| n == name))
                .map(|r| r.args.len())
                .collect()
        };
        assert_eq!(rules(&first, "clone"), [1]);
        assert_eq!(rules(&first, "socket"), [2]);
        // A later instance whose socket calls were not captured: any socket, clone unchanged.
        let later = per_pod_profile(
            &r,
            &entry("c2", &["read", "socket"], true),
            Some(&first.spec.profile),
        )
        .unwrap();
        assert_eq!(rules(&later, "clone"), [1]);
        assert_eq!(rules(&later, "socket"), [0]);
    }

    #[test]
    fn consumed_ids_follow_the_report_and_stay_bounded() {
        let r = report(
            "n1",
            vec![entry("a", &["read"], true), entry("b", &[], false)],
            &["gone", "a"],
        );
        let taken: Vec<String> = to_take_in(&r).map(|c| c.container_id.clone()).collect();
        assert!(taken.is_empty(), "a was consumed; b is not final");
        let r2 = report(
            "n1",
            vec![entry("a", &["read"], true), entry("b", &["x"], true)],
            &["a"],
        );
        let taken: Vec<String> = to_take_in(&r2).map(|c| c.container_id.clone()).collect();
        assert_eq!(taken, ["b"]);
        assert_eq!(consumed_after(&r2, &taken), ["a", "b"]);
        // IDs the recorder dropped are forgotten.
        assert_eq!(consumed_after(&r, &[]), ["a"]);
    }

    #[test]
    fn nodes_still_recording_are_named() {
        let reports = vec![
            report(
                "n1",
                vec![entry("a", &[], false), entry("b", &[], false)],
                &[],
            ),
            report("n2", vec![entry("c", &["read"], true)], &[]),
            report("n3", vec![entry("d", &[], false)], &["d"]),
        ];
        let pending = still_recording(&reports);
        assert_eq!(pending, BTreeMap::from([("n1".to_owned(), 2)]));
    }
}
