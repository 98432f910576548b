//! Reporting what this node recorded: one RecordingReport per recording and node
//! (`<recording>.<node>`), one entry per recorded container instance. The recorder is the
//! only writer of a report's spec; the operator marks entries it has turned into profiles in
//! the report's status (`consumed`), and the next write here drops them. The recorder never
//! writes a SeccompProfile.
//!
//! Nothing is lost across retries and restarts: an entry is merged into what the report
//! already lists for the same container (the union of both sets), and a recorded container is
//! forgotten here only once a report carrying its final set was written.

use super::select::Target;
use crds::{
    report_name, RecordedContainer, RecordingReport, RecordingReportSpec, LABEL_NODE,
    LABEL_RECORDING, MAX_REPORT_CONTAINERS,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::{Api, Client};
use seccomp_profile::args::union_recorded;
use seccomp_profile::builtin::OciRuntime;
use seccomp_profile::RecordedArgs;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

/// Field manager of the recorder's report writes.
pub const MANAGER: &str = crds::apply::NODE_RECORDER;

/// How long one report write may take before it is retried on a later turn: the recording
/// loop must not hang on one write (a half-open connection would otherwise hold every
/// recording on this node until the client's read timeout).
pub const SUBMIT_TIMEOUT: Duration = Duration::from_secs(20);

/// The entry for container `id` recorded for `t`. A final entry also lists what the runtime's
/// init calls after it installs the filter (the container needs those under the profile).
pub fn entry(
    t: &Target,
    id: &str,
    mut names: BTreeSet<String>,
    arguments: Vec<RecordedArgs>,
    runtime: OciRuntime,
    is_final: bool,
) -> RecordedContainer {
    if is_final {
        names.extend(
            runtime
                .init_syscalls(t.no_new_privs)
                .iter()
                .map(|s| s.to_string()),
        );
    }
    RecordedContainer {
        container_id: id.to_owned(),
        pod: t.pod.clone(),
        container: t.container.clone(),
        r#final: is_final,
        syscalls: names.into_iter().collect(),
        arguments,
    }
}

/// Why an entry was not written.
#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    /// The report lists [`MAX_REPORT_CONTAINERS`] containers the operator has not taken in
    /// yet; retried once it has.
    #[error("the report already lists {MAX_REPORT_CONTAINERS} containers the operator has not taken in yet")]
    Full,
    /// Retrying cannot help: the namespace is going away, or the object is refused.
    #[error("the report was refused")]
    Refused(#[source] kube::Error),
    /// The API server did not answer, or failed; retried.
    #[error("writing the report failed")]
    Api(#[source] kube::Error),
    /// No answer within [`SUBMIT_TIMEOUT`]; retried.
    #[error("no answer within {SUBMIT_TIMEOUT:?}")]
    Timeout,
}

impl SubmitError {
    /// Whether a later attempt may succeed.
    pub fn retry(&self) -> bool {
        !matches!(self, SubmitError::Refused(_))
    }
}

/// The report's entries once `new` is added: what it lists now minus what the operator has
/// consumed, with `new` merged into the entry of the same container (union of the sets; final
/// once either says so). Full when `new` would be one entry too many.
pub fn upsert(
    current: Option<&RecordingReport>,
    new: RecordedContainer,
) -> Result<Vec<RecordedContainer>, SubmitError> {
    let mut entries: BTreeMap<String, RecordedContainer> = current
        .into_iter()
        .flat_map(|r| r.unconsumed())
        .map(|c| (c.container_id.clone(), c.clone()))
        .collect();
    let full = entries.len() >= MAX_REPORT_CONTAINERS;
    match entries.get_mut(&new.container_id) {
        Some(old) => {
            let names: BTreeSet<String> = old.syscalls.drain(..).chain(new.syscalls).collect();
            old.syscalls = names.into_iter().collect();
            old.arguments = union_recorded(&old.arguments, &new.arguments);
            old.r#final |= new.r#final;
        }
        None if full => return Err(SubmitError::Full),
        None => {
            entries.insert(new.container_id.clone(), new);
        }
    }
    Ok(entries.into_values().collect())
}

/// The report object this node writes for `t`'s recording, listing `containers`.
pub fn report_object(
    t: &Target,
    node: &str,
    containers: Vec<RecordedContainer>,
) -> RecordingReport {
    let mut r = RecordingReport::new(
        &report_name(&t.recording, node),
        RecordingReportSpec {
            node_name: node.to_owned(),
            recording: t.recording.clone(),
            containers,
        },
    );
    r.metadata.namespace = Some(t.namespace.clone());
    r.metadata.labels = Some(BTreeMap::from([
        (LABEL_RECORDING.to_owned(), t.recording.clone()),
        (LABEL_NODE.to_owned(), node.to_owned()),
    ]));
    r.metadata.owner_references = Some(vec![OwnerReference {
        api_version: "seccomp-operator.dev/v1alpha1".into(),
        kind: "ProfileRecording".into(),
        name: t.recording.clone(),
        uid: t.recording_uid.clone(),
        controller: Some(true),
        block_owner_deletion: Some(false),
    }]);
    r
}

/// Add `new` to this node's report for `t`'s recording, bounded by [`SUBMIT_TIMEOUT`].
pub async fn submit(
    client: &Client,
    node: &str,
    t: &Target,
    new: RecordedContainer,
) -> Result<usize, SubmitError> {
    tokio::time::timeout(SUBMIT_TIMEOUT, submit_inner(client, node, t, new))
        .await
        .unwrap_or(Err(SubmitError::Timeout))
}

async fn submit_inner(
    client: &Client,
    node: &str,
    t: &Target,
    new: RecordedContainer,
) -> Result<usize, SubmitError> {
    let api: Api<RecordingReport> = Api::namespaced(client.clone(), &t.namespace);
    let name = report_name(&t.recording, node);
    let classify = |e: kube::Error| match &e {
        kube::Error::Api(ae) if matches!(ae.code, 403 | 404 | 422) => SubmitError::Refused(e),
        _ => SubmitError::Api(e),
    };
    let current = api.get_opt(&name).await.map_err(classify)?;
    let id = new.container_id.clone();
    let containers = upsert(current.as_ref(), new)?;
    let count = containers
        .iter()
        .find(|c| c.container_id == id)
        .map_or(0, |c| c.syscalls.len());
    crds::apply::apply_object(&api, MANAGER, &report_object(t, node, containers))
        .await
        .map_err(classify)?;
    Ok(count)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crds::RecordingReportStatus;

    use crate::recording::select::sample_target as target;

    fn names(v: &[&str]) -> BTreeSet<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn final_entries_carry_the_runtimes_init_calls() {
        let e = entry(
            &target(),
            "c1",
            names(&["read"]),
            vec![],
            OciRuntime::Runc,
            true,
        );
        assert!(e.r#final);
        assert!(e.syscalls.contains(&"read".to_string()));
        assert!(
            e.syscalls.contains(&"execve".to_string()),
            "runc's init execs"
        );
        let pending = entry(
            &target(),
            "c1",
            BTreeSet::new(),
            vec![],
            OciRuntime::Runc,
            false,
        );
        assert!(!pending.r#final && pending.syscalls.is_empty());
        assert_eq!((e.pod.as_str(), e.container.as_str()), ("web-1", "web"));
    }

    #[test]
    fn a_rewritten_entry_keeps_the_union_of_its_argument_classes() {
        let t = target();
        let args = |v: u64| {
            vec![RecordedArgs {
                syscall: "clone".into(),
                values: vec![v],
                any: false,
            }]
        };
        let first = entry(&t, "c1", names(&["clone"]), args(0), OciRuntime::Runc, true);
        let report = report_object(&t, "n1", vec![first]);
        let again = entry(
            &t,
            "c1",
            names(&["clone"]),
            args(0x1000_0000),
            OciRuntime::Runc,
            true,
        );
        let merged = upsert(Some(&report), again).unwrap();
        assert_eq!(merged[0].arguments[0].values, [0, 0x1000_0000]);
    }

    #[test]
    fn entries_merge_into_what_the_report_has_and_consumed_ones_go() {
        let t = target();
        let mk = |id: &str, n: &[&str], f: bool| RecordedContainer {
            container_id: id.into(),
            pod: "web-1".into(),
            container: "web".into(),
            r#final: f,
            syscalls: n.iter().map(|s| s.to_string()).collect(),
            arguments: vec![],
        };
        let mut report = report_object(
            &t,
            "n1",
            vec![mk("a", &["read"], false), mk("b", &["write"], true)],
        );
        assert_eq!(report.metadata.name.as_deref(), Some("rec.n1"));
        assert_eq!(report.metadata.labels.as_ref().unwrap()[LABEL_NODE], "n1");
        assert_eq!(
            report.metadata.owner_references.as_ref().unwrap()[0].uid,
            "u1"
        );
        report.status = Some(RecordingReportStatus {
            consumed: vec!["b".into()],
        });
        // A restarted agent re-sends a's final set: the union, final; b is dropped.
        let out = upsert(Some(&report), mk("a", &["open", "read"], true)).unwrap();
        assert_eq!(out, vec![mk("a", &["open", "read"], true)]);
        // A late non-final write never un-finalizes nor shrinks an entry.
        let mut again = report.clone();
        again.spec.containers = out;
        let out = upsert(Some(&again), mk("a", &[], false)).unwrap();
        assert_eq!(out, vec![mk("a", &["open", "read"], true)]);
        // No report yet: just the entry.
        assert_eq!(upsert(None, mk("c", &["x"], true)).unwrap().len(), 1);
    }

    #[test]
    fn a_full_report_refuses_new_containers_but_merges_known_ones() {
        let t = target();
        let full: Vec<RecordedContainer> = (0..MAX_REPORT_CONTAINERS)
            .map(|i| {
                entry(
                    &t,
                    &format!("c{i}"),
                    BTreeSet::new(),
                    vec![],
                    OciRuntime::Runc,
                    false,
                )
            })
            .collect();
        let mut report = report_object(&t, "n1", full);
        let new = entry(&t, "new", names(&["read"]), vec![], OciRuntime::Runc, true);
        assert!(matches!(
            upsert(Some(&report), new.clone()),
            Err(SubmitError::Full)
        ));
        assert!(SubmitError::Full.retry());
        let known = entry(&t, "c0", names(&["read"]), vec![], OciRuntime::Runc, true);
        assert_eq!(
            upsert(Some(&report), known).unwrap().len(),
            MAX_REPORT_CONTAINERS
        );
        // Once the operator consumed one, there is room again.
        report.status = Some(RecordingReportStatus {
            consumed: vec!["c3".into()],
        });
        assert_eq!(
            upsert(Some(&report), new).unwrap().len(),
            MAX_REPORT_CONTAINERS
        );
    }
}
