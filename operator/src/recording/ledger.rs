//! The recording's ledger (pure): every selected container instance that ran while the
//! recording was active, from the pods' statuses and the nodes' reports, and whether its node
//! reported it. It lives in `status.containers`, so it outlives the pods (a replica scaled
//! away is still owed a report) and the operator (a new leader picks it up).
//!
//! The rule: a recording is complete when every instance in the ledger is `Reported`. An
//! instance whose node says nothing about it is `Waiting` for [`REPORT_DEADLINE`] after the
//! operator saw it and after it ended; then it is `NotRecorded` (the node is live but its
//! recorder missed it) and stays so until a report arrives. One whose node is gone or not
//! Ready is `Lost`. The merge waits for `Waiting` and `Recording` instances, never for
//! `NotRecorded` or `Lost` ones: the recording then ends `Partial`, never `Completed`.

use crds::{
    container_instances, ProfileRecording, RecordingReport, TrackedContainer, TrackedState,
    MAX_TRACKED_CONTAINERS,
};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::ResourceExt;
use std::collections::{BTreeMap, BTreeSet};

/// How long a live node has to say anything about a container instance (announce it, or
/// report it final) after the operator saw it run, and to report it final after it ended.
/// Recorders announce a container within a poll (0.1 s) of learning its ID from the pod's
/// status and report it within a poll of its end; the deadline covers a slow kubelet status
/// update, watch lag and a few failed writes, and is shorter than the recorder's own
/// give-up time (it stops waiting for a namespace after two minutes).
pub const REPORT_DEADLINE: SignedDuration = SignedDuration::from_secs(60);

/// The ledger after a reconcile.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Ledger {
    /// The tracked instances, oldest first.
    pub containers: Vec<TrackedContainer>,
    /// Instances seen now that did not fit in the ledger.
    pub untracked: u32,
}

/// What the ledger says about the recording.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Verdict {
    /// Some instance may still be reported: the merge waits.
    pub waiting: bool,
    /// Instances a live node did not report.
    pub not_recorded: Vec<TrackedContainer>,
    /// Instances of nodes that are gone or not Ready.
    pub lost: Vec<TrackedContainer>,
}

/// What a node's reports say about one instance.
struct Word<'a> {
    node: &'a str,
    pod: &'a str,
    container: &'a str,
    reported: bool,
}

/// Instance ID → what the reports say about it: a final entry or an ID the operator marked
/// consumed is reported; an entry that is not final is being recorded.
fn words(reports: &[RecordingReport]) -> BTreeMap<&str, Word<'_>> {
    let mut out: BTreeMap<&str, Word<'_>> = BTreeMap::new();
    for r in reports {
        let consumed: BTreeSet<&str> = r
            .status
            .iter()
            .flat_map(|s| s.consumed.iter().map(String::as_str))
            .collect();
        for c in &r.spec.containers {
            let reported = c.r#final || consumed.contains(c.container_id.as_str());
            let w = out.entry(c.container_id.as_str()).or_insert(Word {
                node: &r.spec.node_name,
                pod: &c.pod,
                container: &c.container,
                reported,
            });
            w.reported |= reported;
        }
    }
    out
}

/// An instance the pods' statuses show, with whether it is over.
struct Ran {
    pod: String,
    container: String,
    node: String,
    id: String,
    ended: bool,
}

/// Selected instances that ran while the recording was active, from `pods` (the label
/// query's answer: `selects_pod` and `spec.containers` decide, as on the nodes).
fn ran(rec: &ProfileRecording, pods: &[Pod], now: Timestamp) -> Vec<Ran> {
    let ends = rec.ends_at();
    let expired = ends.is_some_and(|e| now >= e);
    let mut out = Vec::new();
    for pod in pods.iter().filter(|p| rec.selects_pod(p)) {
        let Some(node) = pod.spec.as_ref().and_then(|s| s.node_name.clone()) else {
            continue;
        };
        let pod_over = pod.metadata.deletion_timestamp.is_some()
            || pod
                .status
                .as_ref()
                .and_then(|s| s.phase.as_deref())
                .is_some_and(|p| p == "Succeeded" || p == "Failed");
        for inst in container_instances(pod) {
            if !rec.records_container(&inst.name) {
                continue;
            }
            // An instance that started after the recording stopped was never recorded.
            if let (Some(started), Some(ends)) = (inst.started_at, ends) {
                if started >= ends {
                    continue;
                }
            }
            out.push(Ran {
                pod: pod.name_any(),
                container: inst.name,
                node: node.clone(),
                id: inst.id,
                ended: inst.ended || pod_over || expired,
            });
        }
    }
    out
}

/// The ledger after this reconcile: `earlier` (the status's) brought up to date with the pods
/// and reports seen now. Node liveness is [`judge`]'s.
pub fn update(
    earlier: &[TrackedContainer],
    rec: &ProfileRecording,
    pods: &[Pod],
    reports: &[RecordingReport],
    now: Timestamp,
) -> Ledger {
    let words = words(reports);
    let ran = ran(rec, pods, now);
    let ran_ids: BTreeMap<&str, &Ran> = ran.iter().map(|r| (r.id.as_str(), r)).collect();
    let listed_pods: BTreeSet<String> = pods.iter().map(|p| p.name_any()).collect();
    let t = Time(now);
    let mut out: Vec<TrackedContainer> = Vec::new();
    let mut have: BTreeSet<String> = BTreeSet::new();
    for e in earlier {
        if !have.insert(e.container_id.clone()) {
            continue;
        }
        let mut e = e.clone();
        let word = words.get(e.container_id.as_str());
        let seen = ran_ids.get(e.container_id.as_str());
        e.state = match (e.state, word) {
            (TrackedState::Reported, _) => TrackedState::Reported,
            (_, Some(w)) if w.reported => TrackedState::Reported,
            (_, Some(_)) => TrackedState::Recording,
            // Announced, then dropped without a final word: the node lost it.
            (TrackedState::Recording, None) => TrackedState::Waiting,
            (s, None) => s,
        };
        let over = seen.is_none_or(|r| r.ended);
        if e.ended_at.is_none() && over {
            e.ended_at = Some(t.clone());
        }
        // A reported instance of a pod that is gone is settled: nothing can bring it back.
        if e.state == TrackedState::Reported && !listed_pods.contains(&e.pod) {
            continue;
        }
        out.push(e);
    }
    let mut untracked = 0u32;
    let mut add = |out: &mut Vec<TrackedContainer>, e: TrackedContainer| {
        if out.len() < MAX_TRACKED_CONTAINERS {
            out.push(e);
        } else {
            untracked = untracked.saturating_add(1);
        }
    };
    for r in &ran {
        if !have.insert(r.id.clone()) {
            continue;
        }
        let state = match words.get(r.id.as_str()) {
            Some(w) if w.reported => TrackedState::Reported,
            Some(_) => TrackedState::Recording,
            None => TrackedState::Waiting,
        };
        add(
            &mut out,
            TrackedContainer {
                pod: r.pod.clone(),
                container: r.container.clone(),
                node: r.node.clone(),
                container_id: r.id.clone(),
                state,
                seen_at: t.clone(),
                ended_at: r.ended.then(|| t.clone()),
            },
        );
    }
    // Instances only the reports name (a pod that came and went between two reconciles).
    for (id, w) in &words {
        if !have.insert((*id).to_owned()) || (w.reported && !listed_pods.contains(w.pod)) {
            continue;
        }
        add(
            &mut out,
            TrackedContainer {
                pod: w.pod.to_owned(),
                container: w.container.to_owned(),
                node: w.node.to_owned(),
                container_id: (*id).to_owned(),
                state: if w.reported {
                    TrackedState::Reported
                } else {
                    TrackedState::Recording
                },
                seen_at: t.clone(),
                ended_at: None,
            },
        );
    }
    Ledger {
        containers: out,
        untracked,
    }
}

/// Nodes whose liveness [`judge`] needs: those of instances not reported yet.
pub fn nodes_in_question(ledger: &Ledger) -> BTreeSet<String> {
    ledger
        .containers
        .iter()
        .filter(|e| e.state != TrackedState::Reported)
        .map(|e| e.node.clone())
        .collect()
}

/// Settle the instances no report settled: `live` says which nodes are live (a node it does
/// not name counts as live).
pub fn judge(ledger: &mut Ledger, live: &BTreeMap<String, bool>, now: Timestamp) {
    for e in &mut ledger.containers {
        if e.state == TrackedState::Reported {
            continue;
        }
        if !live.get(&e.node).copied().unwrap_or(true) {
            e.state = TrackedState::Lost;
            continue;
        }
        e.state = match e.state {
            TrackedState::Recording => TrackedState::Recording,
            // Stays so until a report arrives (no flapping when the instance ends later).
            TrackedState::NotRecorded => TrackedState::NotRecorded,
            _ => {
                let since = e
                    .ended_at
                    .as_ref()
                    .map_or(e.seen_at.0, |t| t.0.max(e.seen_at.0));
                if now.duration_since(since) > REPORT_DEADLINE {
                    TrackedState::NotRecorded
                } else {
                    TrackedState::Waiting
                }
            }
        };
    }
}

/// What the ledger says.
pub fn verdict(ledger: &Ledger) -> Verdict {
    let mut v = Verdict::default();
    for e in &ledger.containers {
        match e.state {
            TrackedState::Waiting | TrackedState::Recording => v.waiting = true,
            TrackedState::NotRecorded => v.not_recorded.push(e.clone()),
            TrackedState::Lost => v.lost.push(e.clone()),
            TrackedState::Reported => {}
        }
    }
    v
}

/// Instances that became `NotRecorded` or `Lost` in this reconcile (for Events and the
/// counter): not so in `earlier`.
pub fn newly_unreported<'a>(
    earlier: &[TrackedContainer],
    now: &'a Ledger,
) -> Vec<&'a TrackedContainer> {
    let before: BTreeMap<&str, TrackedState> = earlier
        .iter()
        .map(|e| (e.container_id.as_str(), e.state))
        .collect();
    now.containers
        .iter()
        .filter(|e| matches!(e.state, TrackedState::NotRecorded | TrackedState::Lost))
        .filter(|e| before.get(e.container_id.as_str()) != Some(&e.state))
        .collect()
}

/// `pod/container on node` for messages.
pub fn describe(e: &TrackedContainer) -> String {
    format!("pod {} container {} on {}", e.pod, e.container, e.node)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crds::{RecordedContainer, RecordingReportSpec, RecordingReportStatus};

    fn rec() -> ProfileRecording {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "seccomp-operator.dev/v1alpha1", "kind": "ProfileRecording",
            "metadata": {"name": "rec", "namespace": "shop", "uid": "u1",
                         "creationTimestamp": "2026-01-01T00:00:00Z"},
            "spec": {"podSelector": {"matchLabels": {"app": "web"}}, "durationSeconds": 3600}
        }))
        .unwrap()
    }

    fn at(secs: i64) -> Timestamp {
        Timestamp::from_second(1_767_225_600 + secs).unwrap()
    }

    /// A replica of `app=web` on `node` running (or terminated) instance `id`.
    fn pod(name: &str, node: &str, id: &str, terminated: bool, deleting: bool) -> Pod {
        let state = if terminated {
            serde_json::json!({"terminated": {"exitCode": 0, "startedAt": "2026-01-01T00:00:10Z"}})
        } else {
            serde_json::json!({"running": {"startedAt": "2026-01-01T00:00:10Z"}})
        };
        let mut meta = serde_json::json!({"name": name, "namespace": "shop", "labels": {"app": "web"},
            "creationTimestamp": "2026-01-01T00:00:05Z"});
        if deleting {
            meta["deletionTimestamp"] = serde_json::json!("2026-01-01T00:01:00Z");
        }
        serde_json::from_value(serde_json::json!({
            "apiVersion": "v1", "kind": "Pod", "metadata": meta,
            "spec": {"nodeName": node, "containers": [{"name": "app", "image": "x"}]},
            "status": {"containerStatuses": [{"name": "app", "containerID": format!("containerd://{id}"),
                "image": "x", "imageID": "", "ready": true, "restartCount": 0, "state": state}]}
        }))
        .unwrap()
    }

    fn report(node: &str, entries: &[(&str, &str, bool)], consumed: &[&str]) -> RecordingReport {
        let mut r = RecordingReport::new(
            &crds::report_name("rec", node),
            RecordingReportSpec {
                node_name: node.into(),
                recording: "rec".into(),
                containers: entries
                    .iter()
                    .map(|(id, pod, fin)| RecordedContainer {
                        container_id: (*id).into(),
                        pod: (*pod).into(),
                        container: "app".into(),
                        r#final: *fin,
                        syscalls: vec!["read".into()],
                        arguments: vec![],
                    })
                    .collect(),
            },
        );
        r.status = Some(RecordingReportStatus {
            consumed: consumed.iter().map(|s| s.to_string()).collect(),
        });
        r
    }

    fn states(l: &Ledger) -> Vec<(String, TrackedState)> {
        l.containers
            .iter()
            .map(|e| (e.container_id.clone(), e.state))
            .collect()
    }

    fn live() -> BTreeMap<String, bool> {
        BTreeMap::from([("vm".to_owned(), true), ("node-2".to_owned(), true)])
    }

    /// One reconcile: update, then judge.
    fn step(
        earlier: &[TrackedContainer],
        pods: &[Pod],
        reports: &[RecordingReport],
        live: &BTreeMap<String, bool>,
        now: Timestamp,
    ) -> Ledger {
        let mut l = update(earlier, &rec(), pods, reports, now);
        judge(&mut l, live, now);
        l
    }

    #[test]
    fn a_node_that_reports_nothing_for_a_pod_it_ran_holds_the_merge_then_makes_it_partial() {
        // Two replicas: vm records and reports its one; node-2's recorder misses its one.
        let running = [
            pod("web-a", "vm", "c-a", false, false),
            pod("web-b", "node-2", "c-b", false, false),
        ];
        let announced = [report("vm", &[("c-a", "web-a", false)], &[])];
        let l1 = step(&[], &running, &announced, &live(), at(20));
        assert_eq!(
            states(&l1),
            [
                ("c-a".into(), TrackedState::Recording),
                ("c-b".into(), TrackedState::Waiting)
            ]
        );
        // Scaled to zero: the pods go; vm reports its replica final and it is taken in.
        let final_a = [report("vm", &[("c-a", "web-a", true)], &["c-a"])];
        let l2 = step(&l1.containers, &[], &final_a, &live(), at(70));
        assert_eq!(
            states(&l2),
            [("c-b".into(), TrackedState::Waiting)],
            "the reported replica of a gone pod is settled; the other is owed a report"
        );
        let v = verdict(&l2);
        assert!(v.waiting, "the merge waits for node-2");
        // node-2 says nothing: a minute after the pod went it is NotRecorded, the merge goes
        // ahead, and the recording is Partial, naming the pod, container and node.
        let l3 = step(&l2.containers, &[], &[], &live(), at(131));
        assert_eq!(states(&l3), [("c-b".into(), TrackedState::NotRecorded)]);
        let v = verdict(&l3);
        assert!(!v.waiting);
        assert_eq!(
            v.not_recorded.iter().map(describe).collect::<Vec<_>>(),
            ["pod web-b container app on node-2"]
        );
        assert_eq!(newly_unreported(&l2.containers, &l3).len(), 1);
        // Said once: the next reconcile does not count it again.
        let l4 = step(&l3.containers, &[], &[], &live(), at(200));
        assert!(newly_unreported(&l3.containers, &l4).is_empty());
        // A report that still arrives settles it.
        let late = [report("node-2", &[("c-b", "web-b", true)], &[])];
        let l5 = step(&l4.containers, &[], &late, &live(), at(210));
        assert!(l5.containers.is_empty() || verdict(&l5).not_recorded.is_empty());
        assert!(!verdict(&l5).waiting);
    }

    #[test]
    fn reported_instances_stay_reported_while_their_pod_is_listed() {
        // A finished instance whose report was taken in and then dropped by the recorder:
        // the pod still lists it; it must not be owed a report again.
        let done = [pod("web-a", "vm", "c-a", true, false)];
        let l1 = step(
            &[],
            &done,
            &[report("vm", &[("c-a", "web-a", true)], &[])],
            &live(),
            at(20),
        );
        assert_eq!(states(&l1), [("c-a".into(), TrackedState::Reported)]);
        let l2 = step(&l1.containers, &done, &[], &live(), at(500));
        assert_eq!(states(&l2), [("c-a".into(), TrackedState::Reported)]);
        assert_eq!(verdict(&l2), Verdict::default());
    }

    #[test]
    fn instances_of_a_dead_node_are_lost_and_do_not_hold_the_merge() {
        let running = [pod("web-b", "node-2", "c-b", false, true)];
        let l1 = step(
            &[],
            &running,
            &[report("node-2", &[("c-b", "web-b", false)], &[])],
            &live(),
            at(20),
        );
        assert!(verdict(&l1).waiting);
        let dead = BTreeMap::from([("node-2".to_owned(), false)]);
        let l2 = step(&l1.containers, &running, &[], &dead, at(25));
        let v = verdict(&l2);
        assert!(!v.waiting);
        assert_eq!(v.lost.len(), 1);
        assert!(v.not_recorded.is_empty());
    }

    #[test]
    fn an_instance_is_waited_for_only_within_the_deadline_after_it_ended() {
        // Seen running at 20 s, ended at 100 s: owed a report until 160 s.
        let running = [pod("web-a", "vm", "c-a", false, false)];
        let reports = [report("vm", &[("c-a", "web-a", false)], &[])];
        let l1 = step(&[], &running, &reports, &live(), at(20));
        // The recorder drops it without a final word (its record vanished).
        let ended = [pod("web-a", "vm", "c-a", true, false)];
        let l2 = step(&l1.containers, &ended, &[], &live(), at(100));
        assert_eq!(states(&l2), [("c-a".into(), TrackedState::Waiting)]);
        let l3 = step(&l2.containers, &ended, &[], &live(), at(159));
        assert_eq!(states(&l3), [("c-a".into(), TrackedState::Waiting)]);
        let l4 = step(&l3.containers, &ended, &[], &live(), at(161));
        assert_eq!(states(&l4), [("c-a".into(), TrackedState::NotRecorded)]);
    }

    #[test]
    fn instances_started_after_the_recording_stopped_and_unselected_containers_are_not_owed() {
        let mut late = pod("web-a", "vm", "c-late", false, false);
        if let Some(st) = late.status.as_mut() {
            let cs = &mut st.container_statuses.as_mut().unwrap()[0];
            cs.state = serde_json::from_value(
                serde_json::json!({"running": {"startedAt": "2026-01-01T02:00:00Z"}}),
            )
            .unwrap();
        }
        let l = step(&[], &[late], &[], &live(), at(7300));
        assert!(l.containers.is_empty());
        let mut r = rec();
        r.spec.containers = Some(vec!["other".into()]);
        let l = update(
            &[],
            &r,
            &[pod("web-a", "vm", "c-a", false, false)],
            &[],
            at(20),
        );
        assert!(l.containers.is_empty());
    }

    #[test]
    fn the_ledger_is_bounded() {
        let pods: Vec<Pod> = (0..MAX_TRACKED_CONTAINERS + 5)
            .map(|i| pod(&format!("web-{i}"), "vm", &format!("c-{i}"), false, false))
            .collect();
        let l = step(&[], &pods, &[], &live(), at(20));
        assert_eq!(l.containers.len(), MAX_TRACKED_CONTAINERS);
        assert_eq!(l.untracked, 5);
        // The next reconcile counts the same overflow, not more.
        let l2 = step(&l.containers, &pods, &[], &live(), at(21));
        assert_eq!(l2.untracked, 5);
    }
}
