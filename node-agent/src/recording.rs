//! In-cluster recording on the node: containers of this node's pods that an active
//! ProfileRecording selects are recorded by the eBPF recorder from their first syscall, and
//! turned into (partial) SeccompProfiles when they end.
//!
//! How a container is found: while a recording is active the recorder is armed, so every new
//! mount namespace is recorded from its first syscall. At the container program's exec the
//! kernel side notes the name of the cgroup the process runs in — the container ID with
//! containerd, CRI-O and runc — so a namespace maps to a container even when the container has
//! already exited. Namespaces of containers no recording wants are ignored.

use crate::recorder::{NsRecord, Phase, Recorder};
use crds::model::{builtin, Arch, SeccompDocument};
use crds::{
    MergeStrategy, ProfileRecording, SeccompProfile, SeccompProfileSpec, LABEL_CONTAINER,
    LABEL_PARTIAL, LABEL_POD, LABEL_RECORDING,
};
use futures::StreamExt;
use k8s_openapi::api::core::v1::{Container, ContainerStatus, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{Patch, PatchParams};
use kube::runtime::reflector::{self, Store};
use kube::runtime::{watcher, WatchStreamExt};
use kube::{Api, Client, ResourceExt};
use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

/// A container to record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// The recording.
    pub recording: String,
    /// The recording's UID (owner of partial profiles).
    pub recording_uid: String,
    /// Namespace of the recording and the pod.
    pub namespace: String,
    /// The pod.
    pub pod: String,
    /// The container.
    pub container: String,
    /// Whether the container runs with NoNewPrivileges (`allowPrivilegeEscalation: false`).
    pub no_new_privs: bool,
    /// The recording's merge strategy.
    pub strategy: MergeStrategy,
}

/// Whether a recording is recording now.
pub fn is_active(rec: &ProfileRecording, now: k8s_openapi::jiff::Timestamp) -> bool {
    if rec.metadata.deletion_timestamp.is_some() {
        return false;
    }
    match (
        rec.metadata.creation_timestamp.as_ref(),
        rec.spec.duration_seconds,
    ) {
        (Some(c), Some(d)) => now < c.0 + k8s_openapi::jiff::SignedDuration::from_secs(d.into()),
        _ => true,
    }
}

fn container_id(s: &ContainerStatus) -> Option<String> {
    let id = s.container_id.as_deref()?;
    Some(
        id.split_once("://")
            .map(|(_, id)| id)
            .unwrap_or(id)
            .to_owned(),
    )
}

fn statuses(pod: &Pod) -> impl Iterator<Item = &ContainerStatus> {
    let st = pod.status.as_ref();
    st.and_then(|s| s.container_statuses.as_ref())
        .into_iter()
        .flatten()
        .chain(
            st.and_then(|s| s.init_container_statuses.as_ref())
                .into_iter()
                .flatten(),
        )
}

fn spec_container<'a>(pod: &'a Pod, name: &str) -> Option<&'a Container> {
    let spec = pod.spec.as_ref()?;
    spec.containers
        .iter()
        .chain(spec.init_containers.iter().flatten())
        .find(|c| c.name == name)
}

/// Container ID → target, for every container of `pods` that an active recording in the same
/// namespace selects (pod labels, optional container names, pod created after the recording).
pub fn targets(
    pods: &[Pod],
    recordings: &[ProfileRecording],
    now: k8s_openapi::jiff::Timestamp,
) -> HashMap<String, Target> {
    let mut out = HashMap::new();
    for rec in recordings.iter().filter(|r| is_active(r, now)) {
        let ns = rec.namespace().unwrap_or_default();
        for pod in pods
            .iter()
            .filter(|p| p.namespace().as_deref() == Some(ns.as_str()))
        {
            if !crds::selector_matches(&rec.spec.pod_selector, pod.labels()) {
                continue;
            }
            let newer = match (
                rec.metadata.creation_timestamp.as_ref(),
                pod.metadata.creation_timestamp.as_ref(),
            ) {
                (Some(r), Some(p)) => p.0 >= r.0,
                _ => true,
            };
            if !newer {
                continue;
            }
            for st in statuses(pod) {
                if rec
                    .spec
                    .containers
                    .as_ref()
                    .is_some_and(|names| !names.contains(&st.name))
                {
                    continue;
                }
                let Some(id) = container_id(st) else { continue };
                let no_new_privs = spec_container(pod, &st.name)
                    .and_then(|c| c.security_context.as_ref())
                    .and_then(|s| s.allow_privilege_escalation)
                    == Some(false);
                out.insert(
                    id,
                    Target {
                        recording: rec.name_any(),
                        recording_uid: rec.uid().unwrap_or_default(),
                        namespace: ns.clone(),
                        pod: pod.name_any(),
                        container: st.name.clone(),
                        no_new_privs,
                        strategy: rec.spec.merge_strategy,
                    },
                );
            }
        }
    }
    out
}

/// Container ID → whether it has ended, for every container this node's pods report.
pub fn known_containers(pods: &[Pod]) -> HashMap<String, bool> {
    let mut out = HashMap::new();
    for pod in pods {
        let gone = pod.metadata.deletion_timestamp.is_some();
        for st in statuses(pod) {
            if let Some(id) = container_id(st) {
                let ended = st.state.as_ref().is_some_and(|s| s.terminated.is_some());
                out.insert(id, ended || gone);
            }
            // a restarted container's previous instance has ended
            if let Some(prev) = st.last_state.as_ref().and_then(|s| s.terminated.as_ref()) {
                if let Some(id) = prev.container_id.as_deref() {
                    let id = id
                        .split_once("://")
                        .map(|(_, id)| id)
                        .unwrap_or(id)
                        .to_owned();
                    out.insert(id, true);
                }
            }
        }
    }
    out
}

/// A valid object name `<a>-<b>-<c>`, shortened with a hash when too long.
pub fn profile_name(parts: &[&str]) -> String {
    let full = parts.join("-");
    if full.len() <= 253 {
        return full;
    }
    let h = crds::model::content_hash(full.as_bytes());
    format!("{}-{}", full[..240].trim_end_matches(['-', '.']), &h[7..19])
}

/// The profile recorded for `t`: the container program's syscalls plus what runc's init makes
/// after installing the filter. Partial (disabled, labelled, owned by the recording) when the
/// recording merges per container; a finished, enabled profile otherwise.
pub fn recorded_profile(t: &Target, rec: &NsRecord) -> SeccompProfile {
    let mut names = rec.all_names(Phase::AfterExec);
    let runtime = if t.no_new_privs {
        builtin::RUNC_INIT_NNP
    } else {
        builtin::RUNC_INIT
    };
    names.extend(runtime.iter().map(|s| s.to_string()));
    let partial = t.strategy == MergeStrategy::Containers;
    let mut p = SeccompProfile::new(
        &profile_name(&[&t.recording, &t.pod, &t.container]),
        SeccompProfileSpec {
            document: SeccompDocument::allowlist(names).canonical(Arch::native()),
            base_profile_name: None,
            disabled: partial,
        },
    );
    p.metadata.namespace = Some(t.namespace.clone());
    let mut labels = BTreeMap::from([
        (LABEL_RECORDING.to_owned(), t.recording.clone()),
        (LABEL_CONTAINER.to_owned(), t.container.clone()),
        (LABEL_POD.to_owned(), t.pod.clone()),
    ]);
    if partial {
        labels.insert(LABEL_PARTIAL.to_owned(), "true".to_owned());
        p.metadata.owner_references = Some(vec![OwnerReference {
            api_version: "seccomp-operator.dev/v1alpha1".into(),
            kind: "ProfileRecording".into(),
            name: t.recording.clone(),
            uid: t.recording_uid.clone(),
            controller: Some(false),
            block_owner_deletion: Some(false),
        }]);
    }
    p.metadata.labels = Some(labels);
    p
}

/// Give up on a namespace nobody claims after this long.
const CLAIM_TIMEOUT: Duration = Duration::from_secs(120);

/// Record containers for ProfileRecordings on this node until the stream ends.
///
/// The eBPF recorder is loaded only while a recording is active (or recorded containers still
/// wait to be written): a node with nothing to record runs no program on its syscalls and
/// holds none of the memory the loader needs.
pub async fn run(
    client: Client,
    node_name: String,
    metrics: std::sync::Arc<crate::metrics::Metrics>,
) {
    let (recs, rw) = reflector::store::<ProfileRecording>();
    let (pods, pw) = reflector::store::<Pod>();
    tokio::spawn(
        reflector::reflector(
            rw,
            watcher(
                Api::<ProfileRecording>::all(client.clone()),
                watcher::Config::default(),
            ),
        )
        .default_backoff()
        .for_each(|_| async {}),
    );
    tokio::spawn(
        reflector::reflector(
            pw,
            watcher(
                Api::<Pod>::all(client.clone()),
                watcher::Config::default().fields(&format!("spec.nodeName={node_name}")),
            ),
        )
        .default_backoff()
        .for_each(|_| async {}),
    );
    let _ = recs.wait_until_ready().await;
    let _ = pods.wait_until_ready().await;
    let mut state: Option<State> = None;
    let mut load_failed_at: Option<Instant> = None;
    loop {
        let now = k8s_openapi::jiff::Timestamp::now();
        let active = recs.state().iter().any(|r| is_active(r, now));
        let may_retry = load_failed_at.is_none_or(|t| t.elapsed() > Duration::from_secs(30));
        if state.is_none() && active && may_retry {
            match Recorder::load() {
                Ok(recorder) => {
                    tracing::info!("a recording is active: eBPF recorder loaded");
                    release_freed_memory();
                    state = Some(State {
                        recorder,
                        sessions: HashMap::new(),
                        first_seen: HashMap::new(),
                        finished: Vec::new(),
                        done: Default::default(),
                    });
                }
                Err(e) => {
                    tracing::warn!(error = %e, "a recording is active but the eBPF recorder cannot load");
                    load_failed_at = Some(Instant::now());
                }
            }
        }
        if let Some(st) = state.as_mut() {
            st.tick(&client, &recs, &pods, &metrics).await;
            if !active && st.sessions.is_empty() && st.finished.is_empty() {
                state = None;
                release_freed_memory();
                metrics.observe_recorder(0, 0, 0);
                tracing::info!("no recording is active: eBPF recorder unloaded");
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Give the heap the loader used (the kernel's whole BTF, parsed) back to the system.
fn release_freed_memory() {
    // SAFETY: malloc_trim only releases free memory of the allocator's own arenas.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// What the recording loop keeps between ticks.
struct State {
    recorder: Recorder,
    /// Watched namespace → (container ID, target).
    sessions: HashMap<u64, (String, Target)>,
    /// Unclaimed namespaces and when they were first seen.
    first_seen: HashMap<u64, Instant>,
    /// Records read but not yet written as profiles.
    finished: Vec<(Target, NsRecord)>,
    /// Containers already turned into profiles (a namespace that outlives its final read is
    /// not recorded twice).
    done: std::collections::HashSet<String>,
}

impl State {
    async fn tick(
        &mut self,
        client: &Client,
        recs: &Store<ProfileRecording>,
        pods: &Store<Pod>,
        metrics: &crate::metrics::Metrics,
    ) {
        let State {
            recorder,
            sessions,
            first_seen,
            finished,
            done,
        } = self;
        let now = k8s_openapi::jiff::Timestamp::now();
        let recordings: Vec<ProfileRecording> =
            recs.state().iter().map(|r| (**r).clone()).collect();
        let pod_list: Vec<Pod> = pods.state().iter().map(|p| (**p).clone()).collect();
        let armed = recordings.iter().any(|r| is_active(r, now));
        if let Err(e) = recorder.arm(armed) {
            tracing::warn!(error = %e, "arming the recorder failed");
        }
        let wanted = targets(&pod_list, &recordings, now);
        let known = known_containers(&pod_list);
        for (ns, rec) in recorder.pending_records() {
            let seen = *first_seen.entry(ns).or_insert_with(Instant::now);
            match rec.cgroup_name() {
                Some(id) if done.contains(&id) => {
                    let _ = recorder.ignore(ns);
                    first_seen.remove(&ns);
                }
                Some(id) if wanted.contains_key(&id) => {
                    let t = wanted[&id].clone();
                    if recorder.watch(ns).is_ok() {
                        tracing::info!(recording = %t.recording, pod = %t.pod, container = %t.container, mntns = ns, "recording container");
                        sessions.insert(ns, (id, t));
                        first_seen.remove(&ns);
                    }
                }
                Some(id) if known.contains_key(&id) => {
                    let _ = recorder.ignore(ns);
                    first_seen.remove(&ns);
                }
                _ if seen.elapsed() > CLAIM_TIMEOUT => {
                    let _ = recorder.ignore(ns);
                    first_seen.remove(&ns);
                }
                _ => {}
            }
        }
        // Containers that ended, pods that went, recordings that stopped: final read.
        let ended: Vec<u64> = sessions
            .iter()
            .filter(|(_, (id, t))| {
                let rec_live = recordings.iter().any(|r| {
                    r.name_any() == t.recording
                        && r.namespace().as_deref() == Some(t.namespace.as_str())
                        && is_active(r, now)
                });
                known.get(id).copied().unwrap_or(true) || !rec_live
            })
            .map(|(ns, _)| *ns)
            .collect();
        for ns in ended {
            if let Some((id, t)) = sessions.remove(&ns) {
                done.insert(id);
                if let Some(r) = recorder.take(ns) {
                    finished.push((t, r));
                }
            }
        }
        // Publish, keeping what failed for the next tick: nothing recorded is dropped.
        let mut retry = Vec::new();
        for (t, r) in finished.drain(..) {
            let p = recorded_profile(&t, &r);
            let api: Api<SeccompProfile> = Api::namespaced(client.clone(), &t.namespace);
            let mut v = serde_json::to_value(&p).unwrap_or_default();
            if let Some(m) = v.as_object_mut() {
                m.remove("status");
            }
            match api
                .patch(
                    &p.name_any(),
                    &PatchParams::apply("seccomp-node-agent").force(),
                    &Patch::Apply(&v),
                )
                .await
            {
                Ok(_) => {
                    let n = p.spec.document.syscalls.iter().map(|r| r.names.len()).sum();
                    metrics.recorded(n);
                    tracing::info!(profile = %p.name_any(), namespace = %t.namespace, syscalls = n, "recorded profile written");
                }
                // The namespace is going away, or the object is refused: retrying cannot help.
                Err(kube::Error::Api(ae)) if matches!(ae.code, 403 | 404 | 422) => {
                    tracing::error!(profile = %p.name_any(), error = %ae.message, "recorded profile refused; dropped");
                }
                Err(e) => {
                    tracing::warn!(profile = %p.name_any(), error = %e, "writing the recorded profile failed; retrying");
                    retry.push((t, r));
                }
            }
        }
        *finished = retry;
        let pending = first_seen.len();
        metrics.observe_recorder(sessions.len(), pending, recorder.stats().1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(json: serde_json::Value) -> ProfileRecording {
        serde_json::from_value(json).unwrap()
    }

    fn pod(
        name: &str,
        labels: serde_json::Value,
        created: &str,
        id: &str,
        terminated: bool,
    ) -> Pod {
        let state = if terminated {
            serde_json::json!({"terminated": {"exitCode": 0}})
        } else {
            serde_json::json!({"running": {}})
        };
        serde_json::from_value(serde_json::json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": "shop", "labels": labels, "creationTimestamp": created},
            "spec": {"containers": [{"name": "web", "image": "x", "securityContext": {"allowPrivilegeEscalation": false}}, {"name": "side", "image": "y"}]},
            "status": {"containerStatuses": [
                {"name": "web", "containerID": format!("containerd://{id}"), "image": "x", "imageID": "", "ready": true, "restartCount": 0, "state": state},
                {"name": "side", "containerID": format!("containerd://{id}-side"), "image": "y", "imageID": "", "ready": true, "restartCount": 0, "state": {"running": {}}}
            ]}
        }))
        .unwrap()
    }

    fn recording(extra: serde_json::Value) -> ProfileRecording {
        let mut spec = serde_json::json!({"podSelector": {"matchLabels": {"app": "web"}}});
        spec.as_object_mut()
            .unwrap()
            .extend(extra.as_object().cloned().unwrap_or_default());
        rec(
            serde_json::json!({"apiVersion": "seccomp-operator.dev/v1alpha1", "kind": "ProfileRecording",
            "metadata": {"name": "rec", "namespace": "shop", "uid": "u1", "creationTimestamp": "2026-01-01T00:00:00Z"}, "spec": spec}),
        )
    }

    #[test]
    fn selects_new_matching_pods_and_allowed_containers() {
        let now = "2026-01-01T00:10:00Z".parse().unwrap();
        let pods = vec![
            pod(
                "new",
                serde_json::json!({"app": "web"}),
                "2026-01-01T00:01:00Z",
                "aaa",
                false,
            ),
            pod(
                "old",
                serde_json::json!({"app": "web"}),
                "2025-12-31T00:00:00Z",
                "bbb",
                false,
            ),
            pod(
                "other",
                serde_json::json!({"app": "db"}),
                "2026-01-01T00:01:00Z",
                "ccc",
                false,
            ),
        ];
        let t = targets(
            &pods,
            &[recording(serde_json::json!({"containers": ["web"]}))],
            now,
        );
        assert_eq!(t.keys().collect::<Vec<_>>(), vec!["aaa"]);
        assert!(t["aaa"].no_new_privs);
        assert_eq!(t["aaa"].strategy, MergeStrategy::Containers);
        let all = targets(&pods, &[recording(serde_json::json!({}))], now);
        assert_eq!(all.len(), 2, "both containers of the new pod");
        // a recording whose duration passed selects nothing
        assert!(targets(
            &pods,
            &[recording(serde_json::json!({"durationSeconds": 60}))],
            now
        )
        .is_empty());
    }

    #[test]
    fn knows_ended_containers() {
        let pods = vec![pod(
            "p",
            serde_json::json!({}),
            "2026-01-01T00:01:00Z",
            "aaa",
            true,
        )];
        let k = known_containers(&pods);
        assert_eq!(k.get("aaa"), Some(&true));
        assert_eq!(k.get("aaa-side"), Some(&false));
    }

    #[test]
    fn recorded_profiles_are_partial_or_final() {
        let mut r = NsRecord::default();
        r.set(Phase::BeforeExec, 0, 165); // mount: runtime set-up, left out
        r.set(Phase::AfterExec, 0, 0); // read
        let t = Target {
            recording: "rec".into(),
            recording_uid: "u1".into(),
            namespace: "shop".into(),
            pod: "web-1".into(),
            container: "web".into(),
            no_new_privs: true,
            strategy: MergeStrategy::Containers,
        };
        let p = recorded_profile(&t, &r);
        assert_eq!(p.name_any(), "rec-web-1-web");
        assert!(p.spec.disabled);
        assert_eq!(p.labels()[LABEL_PARTIAL], "true");
        assert_eq!(p.owner_references()[0].name, "rec");
        let names = &p.spec.document.syscalls[0].names;
        assert!(names.contains(&"read".to_string()) && names.contains(&"execve".to_string()));
        assert!(!names.contains(&"mount".to_string()));
        let fin = recorded_profile(
            &Target {
                strategy: MergeStrategy::None,
                ..t
            },
            &r,
        );
        assert!(
            !fin.spec.disabled
                && fin.labels().get(LABEL_PARTIAL).is_none()
                && fin.owner_references().is_empty()
        );
        assert!(profile_name(&[&"a".repeat(200), &"b".repeat(100)]).len() <= 253);
    }
}
