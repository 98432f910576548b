//! In-cluster recording on the node: containers of this node's pods that an active
//! ProfileRecording selects are recorded by the eBPF recorder from their first syscall, and
//! turned into (partial) SeccompProfiles when they end.
//!
//! How a container is found: while a recording is active the recorder is armed, so every new
//! mount namespace is recorded from its first syscall. At the container program's exec the
//! kernel side notes the name of the cgroup the process runs in — the container ID with
//! containerd, CRI-O and runc — so a namespace maps to a container even when the container has
//! already exited. Namespaces of containers no recording wants are ignored.

use crate::recorder::{Phase, Recorder};
use crds::model::builtin::OciRuntime;
use crds::model::{Arch, SeccompDocument};
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
use std::borrow::Borrow;
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// A container to record. Kept as the recorder's note about its namespace (JSON), so that a
/// restarted agent knows which container a namespace it finds recording belongs to, even when
/// the pod went away in the meantime.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
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
    /// How the container is recorded.
    #[serde(default)]
    pub recorder: crds::Recorder,
}

/// Whether a recording of this kind is recording now.
fn any_active<'a>(
    recordings: impl IntoIterator<Item = &'a ProfileRecording>,
    kind: crds::Recorder,
    now: k8s_openapi::jiff::Timestamp,
) -> bool {
    recordings
        .into_iter()
        .any(|r| r.spec.recorder == kind && r.is_active(now))
}

/// Whether a recorded container is done: it ended (or is no longer listed), or its
/// recording stopped.
fn container_done(
    t: &Target,
    id: &str,
    recordings: &[ProfileRecording],
    known: &HashMap<String, bool>,
    now: k8s_openapi::jiff::Timestamp,
) -> bool {
    let rec_live = recordings.iter().any(|r| {
        r.name_any() == t.recording
            && r.namespace().as_deref() == Some(t.namespace.as_str())
            && r.is_active(now)
    });
    known.get(id).copied().unwrap_or(true) || !rec_live
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
    for rec in recordings.iter().filter(|r| r.is_active(now)) {
        let ns = rec.namespace().unwrap_or_default();
        for pod in pods.iter().filter(|p| rec.selects_pod(p)) {
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
                        recorder: rec.spec.recorder,
                    },
                );
            }
        }
    }
    out
}

/// Whether this node needs the eBPF recorder loaded: an active `Bpf` recording selects a pod
/// that runs on this node (`node_pods`, not finished) or that no node runs yet (`unscheduled`:
/// it may land here, and the recorder must be in place before its first container starts).
/// A node where no selected pod runs or may start pays nothing.
pub fn needs_recorder<R, P>(
    recordings: &[R],
    node_pods: &[P],
    unscheduled: &[P],
    now: k8s_openapi::jiff::Timestamp,
) -> bool
where
    R: Borrow<ProfileRecording>,
    P: Borrow<Pod>,
{
    let finished = |p: &Pod| {
        p.status
            .as_ref()
            .and_then(|s| s.phase.as_deref())
            .is_some_and(|ph| ph == "Succeeded" || ph == "Failed")
    };
    recordings
        .iter()
        .map(Borrow::borrow)
        .filter(|r| r.spec.recorder == crds::Recorder::Bpf && r.is_active(now))
        .any(|r| {
            node_pods
                .iter()
                .map(Borrow::borrow)
                .chain(unscheduled.iter().map(Borrow::borrow))
                .any(|p| !finished(p) && r.selects_pod(p))
        })
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

/// The profile recorded for `t`: the container program's syscalls plus what the runtime's
/// init makes after installing the filter. Partial (disabled, labelled, owned by the
/// recording) when the recording merges per container; a finished, enabled profile otherwise.
pub fn recorded_profile(
    t: &Target,
    mut names: std::collections::BTreeSet<String>,
    runtime: OciRuntime,
) -> SeccompProfile {
    names.extend(
        runtime
            .init_syscalls(t.no_new_privs)
            .iter()
            .map(|s| s.to_string()),
    );
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

/// The recorder stays loaded this long after the last pod that needed it.
const UNLOAD_GRACE: Duration = Duration::from_secs(15);

/// Give up on a namespace nobody claims after this long.
const CLAIM_TIMEOUT: Duration = Duration::from_secs(120);

/// How the node records.
#[derive(Clone, Debug)]
pub struct Options {
    /// Where the recorder's maps and links are pinned (bpffs), so that recordings survive an
    /// agent restart; None keeps them in the process.
    pub pin_root: Option<PathBuf>,
    /// The OCI runtime the node's containers run with (what its init calls after the filter
    /// goes into every recorded profile).
    pub runtime: OciRuntime,
}

/// Record containers for ProfileRecordings on this node until the stream ends.
///
/// The eBPF recorder is loaded only while a recording is active (or recorded containers still
/// wait to be written): a node with nothing to record runs no program on its syscalls and
/// holds none of the memory the loader needs. Its maps and links are pinned: an agent that
/// restarts mid-recording finds the programs still recording and takes over.
pub async fn run(
    client: Client,
    node_name: String,
    metrics: std::sync::Arc<crate::metrics::Metrics>,
    opts: Options,
) {
    let (recs, rw) = reflector::store::<ProfileRecording>();
    let (pods, pw) = reflector::store::<Pod>();
    tokio::spawn(
        reflector::reflector(
            rw,
            watcher(
                Api::<ProfileRecording>::all(client.clone()),
                crate::watch_config(),
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
                crate::watch_config().fields(&format!("spec.nodeName={node_name}")),
            ),
        )
        .default_backoff()
        .for_each(|_| async {}),
    );
    // Pods no node runs yet: one a recording selects may be scheduled here.
    let unplaced = crate::unplaced::Unplaced::watch(client.clone());
    let pins = opts.pin_root.as_ref().map(|root| {
        let dir = crate::recorder::pin_dir(root);
        crate::recorder::remove_stale_pins(root, &dir);
        dir
    });
    let _ = recs.wait_until_ready().await;
    let _ = pods.wait_until_ready().await;
    let mut state = State {
        recorder: None,
        runtime: opts.runtime,
        sessions: HashMap::new(),
        first_seen: HashMap::new(),
        done: Default::default(),
        audit: None,
        logged: HashMap::new(),
        unclaimed: HashMap::new(),
    };
    let mut load_failed_at: Option<Instant> = None;
    let mut needed_at: Option<Instant> = None;
    loop {
        let now = k8s_openapi::jiff::Timestamp::now();
        // Only Bpf recordings need the eBPF recorder (a node without BTF still records with
        // Logs), and only on nodes where a pod they select runs or may start; a recorder a
        // previous agent left pinned is taken over to finish its work. The recorder stays a
        // little after the last need, so a pod replaced at once does not unload and reload it.
        if needs_recorder(&recs.state(), &pods.state(), &unplaced.pods(), now) {
            needed_at = Some(Instant::now());
        }
        let bpf_active = needed_at.is_some_and(|t| t.elapsed() < UNLOAD_GRACE);
        let left_pinned = pins.as_deref().is_some_and(Recorder::pinned_in);
        let may_retry = load_failed_at.is_none_or(|t| t.elapsed() > Duration::from_secs(30));
        if state.recorder.is_none() && (bpf_active || left_pinned) && may_retry {
            let loaded = match &pins {
                Some(dir) => Recorder::load_pinned(dir),
                None => Recorder::load(),
            };
            match loaded {
                Ok(recorder) => {
                    if recorder.resumed() {
                        tracing::info!(
                            "took over the eBPF recorder a previous agent left recording"
                        );
                    } else {
                        tracing::info!("a Bpf recording selects a pod on (or bound for) this node: eBPF recorder loaded");
                    }
                    release_freed_memory();
                    metrics.recorder_loaded(true);
                    state.recorder = Some(recorder);
                }
                Err(e) => {
                    tracing::warn!(error = %e, "a Bpf recording is active but the eBPF recorder cannot load");
                    load_failed_at = Some(Instant::now());
                }
            }
        }
        state.tick(&client, &recs, &pods, &metrics).await;
        if !bpf_active && state.sessions.is_empty() {
            if let Some(recorder) = state.recorder.take() {
                if let Err(e) = recorder.unpin() {
                    tracing::warn!(error = %e, "removing the recorder's pins failed");
                }
                release_freed_memory();
                metrics.observe_recorder(0, 0, 0);
                metrics.recorder_loaded(false);
                tracing::info!(
                    "no Bpf recording selects a pod on this node: eBPF recorder unloaded"
                );
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(100)) => {},
            _ = unplaced.changed() => {},
        }
    }
}

/// Give the heap the loader used (the kernel's whole BTF, parsed) back to the system.
fn release_freed_memory() {
    // SAFETY: malloc_trim only releases free memory of the allocator's own arenas.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// A recorded container, as its namespace's note says.
#[derive(serde::Serialize, serde::Deserialize)]
struct Session {
    id: String,
    target: Target,
    /// The container ended: publish, then forget the namespace.
    #[serde(default)]
    ended: bool,
}

/// What the recording loop keeps between ticks.
struct State {
    /// The eBPF recorder, while a Bpf recording is active.
    recorder: Option<Recorder>,
    runtime: OciRuntime,
    /// Watched namespace → the container it records.
    sessions: HashMap<u64, Session>,
    /// Unclaimed namespaces and when they were first seen.
    first_seen: HashMap<u64, Instant>,
    /// Containers already turned into profiles (a namespace that outlives its final read is
    /// not recorded twice).
    done: std::collections::HashSet<String>,
    /// The audit reader, while a `Logs` recording is active.
    audit: Option<crate::audit::AuditReader>,
    /// `Logs` recordings: container ID → what its audit records named so far.
    logged: HashMap<String, LogSession>,
    /// Audit records of containers not (yet) in any pod's status, and when first seen.
    unclaimed: HashMap<String, (std::collections::BTreeSet<String>, Instant)>,
}

/// A container recorded from the kernel's audit records.
struct LogSession {
    target: Target,
    names: std::collections::BTreeSet<String>,
    ended: bool,
}

impl State {
    /// Watched namespaces this process does not know yet (a previous agent process started
    /// them): their notes say which container they record.
    fn adopt_watched(&mut self) {
        let Some(recorder) = self.recorder.as_mut() else {
            return;
        };
        for ns in recorder.watched_namespaces() {
            if self.sessions.contains_key(&ns) {
                continue;
            }
            let session = recorder
                .note(ns)
                .and_then(|n| serde_json::from_slice::<Session>(&n).ok());
            match session {
                Some(s) => {
                    tracing::info!(recording = %s.target.recording, pod = %s.target.pod, container = %s.target.container, mntns = ns, "resumed recording container");
                    self.sessions.insert(ns, s);
                }
                None => {
                    tracing::warn!(mntns = ns, "a watched namespace without a note; dropped");
                    let _ = recorder.take(ns);
                }
            }
        }
    }

    async fn tick(
        &mut self,
        client: &Client,
        recs: &Store<ProfileRecording>,
        pods: &Store<Pod>,
        metrics: &crate::metrics::Metrics,
    ) {
        self.adopt_watched();
        let now = k8s_openapi::jiff::Timestamp::now();
        let idle = self.recorder.is_none()
            && self.audit.is_none()
            && self.logged.is_empty()
            && !recs.state().iter().any(|r| r.is_active(now));
        if idle {
            return;
        }
        let recordings: Vec<ProfileRecording> =
            recs.state().iter().map(|r| (**r).clone()).collect();
        let pod_list: Vec<Pod> = pods.state().iter().map(|p| (**p).clone()).collect();
        let armed = any_active(&recordings, crds::Recorder::Bpf, now);
        let wanted = targets(&pod_list, &recordings, now);
        let known = known_containers(&pod_list);
        // Finished containers are remembered while their pod is listed (a namespace can
        // outlive its final read); then they can never be wanted again.
        self.done.retain(|id| known.contains_key(id));
        self.tick_logs(client, &recordings, &wanted, &known, now, metrics)
            .await;
        let State {
            recorder,
            runtime,
            sessions,
            first_seen,
            done,
            ..
        } = self;
        let Some(recorder) = recorder.as_mut() else {
            return;
        };
        if let Err(e) = recorder.arm(armed) {
            tracing::warn!(error = %e, "arming the recorder failed");
        }
        for (ns, rec) in recorder.pending_records() {
            if sessions.contains_key(&ns) {
                // Bits a CPU put there as the namespace was being watched; read with it.
                continue;
            }
            let seen = *first_seen.entry(ns).or_insert_with(Instant::now);
            match rec.cgroup_name() {
                Some(id) if done.contains(&id) => {
                    let _ = recorder.ignore(ns);
                    first_seen.remove(&ns);
                }
                Some(id)
                    if wanted
                        .get(&id)
                        .is_some_and(|t| t.recorder == crds::Recorder::Bpf) =>
                {
                    let session = Session {
                        target: wanted[&id].clone(),
                        id,
                        ended: false,
                    };
                    let note = serde_json::to_vec(&session).unwrap_or_default();
                    if recorder.watch(ns).is_ok() {
                        if let Err(e) = recorder.set_note(ns, &note) {
                            tracing::warn!(error = %e, "keeping the session note failed; an agent restart would drop this container");
                        }
                        let t = &session.target;
                        tracing::info!(recording = %t.recording, pod = %t.pod, container = %t.container, mntns = ns, "recording container");
                        sessions.insert(ns, session);
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
        // Containers that ended, pods that went, recordings that stopped.
        for s in sessions.values_mut().filter(|s| !s.ended) {
            s.ended = container_done(&s.target, &s.id, &recordings, &known, now);
        }
        // Publish what ended; the namespace is forgotten only once its profile is written, so
        // a failed write (or an agent restart) loses nothing.
        let ended: Vec<u64> = sessions
            .iter()
            .filter(|(_, s)| s.ended)
            .map(|(ns, _)| *ns)
            .collect();
        for ns in ended {
            let Some(record) = recorder.read(ns) else {
                sessions.remove(&ns);
                continue;
            };
            let s = &sessions[&ns];
            let names = record.all_names(Phase::AfterExec);
            if settle(client, &s.target, names, *runtime, metrics).await {
                done.insert(s.id.clone());
                let _ = recorder.take(ns);
                sessions.remove(&ns);
            }
        }
        let pending = first_seen.len();
        metrics.observe_recorder(sessions.len(), pending, recorder.stats().1);
    }
}

impl State {
    /// `Logs` recordings: read the audit records that arrived, attribute them to the wanted
    /// containers, and publish the containers that ended.
    async fn tick_logs(
        &mut self,
        client: &Client,
        recordings: &[ProfileRecording],
        wanted: &HashMap<String, Target>,
        known: &HashMap<String, bool>,
        now: k8s_openapi::jiff::Timestamp,
        metrics: &crate::metrics::Metrics,
    ) {
        let logs_active = any_active(recordings, crds::Recorder::Logs, now);
        if logs_active && self.audit.is_none() {
            match crate::audit::AuditReader::start(1 << 16, crate::audit::proc_resolver()) {
                Ok(r) => {
                    tracing::info!("a Logs recording is active: reading seccomp audit records");
                    self.audit = Some(r);
                }
                Err(e) => tracing::warn!(error = %e, "Logs recordings will not work on this node"),
            }
        }
        let mut unattributed = 0;
        if let Some(reader) = &self.audit {
            while let Ok(a) = reader.records.try_recv() {
                if a.record.code != crate::audit::SECCOMP_RET_LOG {
                    continue;
                }
                let Some(id) = a.container else {
                    unattributed += 1;
                    continue;
                };
                if self.done.contains(&id) {
                    continue;
                }
                let Some(t) = wanted
                    .get(&id)
                    .filter(|t| t.recorder == crds::Recorder::Logs)
                else {
                    // A container starts making calls before the kubelet reports its ID in
                    // the pod's status: keep what it does until it is claimed or known to be
                    // someone else's.
                    if !known.contains_key(&id)
                        && (self.unclaimed.len() < 4096 || self.unclaimed.contains_key(&id))
                    {
                        let (names, _) = self
                            .unclaimed
                            .entry(id)
                            .or_insert_with(|| (Default::default(), Instant::now()));
                        names.extend(a.record.name());
                    }
                    continue;
                };
                let early = self.unclaimed.remove(&id).map(|(n, _)| n);
                let s = self.logged.entry(id).or_insert_with(|| {
                    tracing::info!(recording = %t.recording, pod = %t.pod, container = %t.container, "recording container from audit records");
                    LogSession {
                        target: t.clone(),
                        names: Default::default(),
                        ended: false,
                    }
                });
                s.names.extend(early.into_iter().flatten());
                s.names.extend(a.record.name());
            }
            metrics.observe_audit(
                reader
                    .counters
                    .received
                    .load(std::sync::atomic::Ordering::Relaxed),
                reader.lost(),
                unattributed,
            );
        }
        // Early records of containers claimed since, or never to be claimed.
        let claimed: Vec<String> = self
            .unclaimed
            .keys()
            .filter(|id| {
                wanted
                    .get(*id)
                    .is_some_and(|t| t.recorder == crds::Recorder::Logs)
            })
            .cloned()
            .collect();
        for id in claimed {
            let early = self
                .unclaimed
                .remove(&id)
                .map(|(n, _)| n)
                .unwrap_or_default();
            let t = &wanted[&id];
            tracing::info!(recording = %t.recording, pod = %t.pod, container = %t.container, "recording container from audit records");
            self.logged
                .entry(id)
                .or_insert_with(|| LogSession {
                    target: t.clone(),
                    names: Default::default(),
                    ended: false,
                })
                .names
                .extend(early);
        }
        self.unclaimed
            .retain(|id, (_, at)| !known.contains_key(id) && at.elapsed() < CLAIM_TIMEOUT);
        for (id, s) in self.logged.iter_mut().filter(|(_, s)| !s.ended) {
            s.ended = container_done(&s.target, id, recordings, known, now);
        }
        let ended: Vec<String> = self
            .logged
            .iter()
            .filter(|(_, s)| s.ended)
            .map(|(id, _)| id.clone())
            .collect();
        for id in ended {
            let s = &self.logged[&id];
            if settle(client, &s.target, s.names.clone(), self.runtime, metrics).await {
                self.done.insert(id.clone());
                self.logged.remove(&id);
            }
        }
        if !logs_active && self.logged.is_empty() && self.audit.take().is_some() {
            self.unclaimed.clear();
            tracing::info!("no Logs recording is active: audit reader stopped");
        }
    }
}

/// Publish a recorded container's profile: true once it is settled (written, or refused for
/// good), false when the write should be retried.
async fn settle(
    client: &Client,
    t: &Target,
    names: std::collections::BTreeSet<String>,
    runtime: OciRuntime,
    metrics: &crate::metrics::Metrics,
) -> bool {
    // Bounded: the recording loop must not hang on one write (a half-open connection would
    // otherwise hold every recording on this node until the client's read timeout).
    let written = tokio::time::timeout(PUBLISH_TIMEOUT, publish(client, t, names, runtime))
        .await
        .unwrap_or_else(|_| {
            Err(Publish::Retry(format!(
                "no answer within {PUBLISH_TIMEOUT:?}"
            )))
        });
    match written {
        Ok(n) => {
            metrics.recorded(n);
            true
        }
        Err(Publish::Refused(msg)) => {
            tracing::error!(pod = %t.pod, container = %t.container, error = %msg, "recorded profile refused; dropped");
            true
        }
        Err(Publish::Retry(msg)) => {
            tracing::warn!(pod = %t.pod, container = %t.container, error = %msg, "writing the recorded profile failed; retrying");
            false
        }
    }
}

/// How long one publish may take before it is retried on a later tick.
const PUBLISH_TIMEOUT: Duration = Duration::from_secs(20);

enum Publish {
    /// Retrying cannot help (the namespace is going away, or the object is refused).
    Refused(String),
    Retry(String),
}

/// Write the profile recorded for `t`; returns how many syscalls it allows. A profile already
/// written for the same recording, pod and container (an earlier instance, or a write before
/// an agent restart) is merged in, never overwritten with less.
async fn publish(
    client: &Client,
    t: &Target,
    names: std::collections::BTreeSet<String>,
    runtime: OciRuntime,
) -> Result<usize, Publish> {
    let mut p = recorded_profile(t, names, runtime);
    let api: Api<SeccompProfile> = Api::namespaced(client.clone(), &t.namespace);
    let name = p.name_any();
    match api.get_opt(&name).await {
        Ok(Some(old)) if same_source(&old, &p) => {
            let names: std::collections::BTreeSet<String> = old
                .spec
                .document
                .syscalls
                .iter()
                .chain(p.spec.document.syscalls.iter())
                .flat_map(|r| r.names.iter().cloned())
                .collect();
            p.spec.document = SeccompDocument::allowlist(names).canonical(Arch::native());
        }
        Ok(_) => {}
        Err(e) => return Err(Publish::Retry(e.to_string())),
    }
    let mut v = serde_json::to_value(&p).unwrap_or_default();
    if let Some(m) = v.as_object_mut() {
        m.remove("status");
    }
    let n = p.spec.document.syscalls.iter().map(|r| r.names.len()).sum();
    match api
        .patch(
            &name,
            &PatchParams::apply("seccomp-node-agent").force(),
            &Patch::Apply(&v),
        )
        .await
    {
        Ok(_) => {
            tracing::info!(profile = %name, namespace = %t.namespace, syscalls = n, "recorded profile written");
            Ok(n)
        }
        Err(kube::Error::Api(ae)) if matches!(ae.code, 403 | 404 | 422) => {
            Err(Publish::Refused(ae.message))
        }
        Err(e) => Err(Publish::Retry(e.to_string())),
    }
}

/// Whether `old` is a profile this agent recorded for the same recording, pod and container
/// as `new` (so merging them loses nothing and mixes nothing).
fn same_source(old: &SeccompProfile, new: &SeccompProfile) -> bool {
    [LABEL_RECORDING, LABEL_POD, LABEL_CONTAINER]
        .iter()
        .all(|l| old.labels().get(*l).is_some() && old.labels().get(*l) == new.labels().get(*l))
        && old.spec.document.default_action == new.spec.document.default_action
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recorder::NsRecord;

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
    fn the_recorder_is_needed_only_for_selected_pods_here_or_not_yet_placed() {
        let now = "2026-01-01T00:10:00Z".parse().unwrap();
        let web = |name: &str| {
            pod(
                name,
                serde_json::json!({"app": "web"}),
                "2026-01-01T00:01:00Z",
                name,
                false,
            )
        };
        let bpf = [recording(serde_json::json!({}))];
        let logs = [recording(serde_json::json!({"recorder": "Logs"}))];
        let db = pod(
            "db",
            serde_json::json!({"app": "db"}),
            "2026-01-01T00:01:00Z",
            "d",
            false,
        );
        // An idle recording (selects nothing here, nothing pending): no recorder.
        assert!(!needs_recorder(&bpf, std::slice::from_ref(&db), &[], now));
        assert!(needs_recorder(&bpf, &[web("here")], &[], now));
        assert!(
            needs_recorder(&bpf, std::slice::from_ref(&db), &[web("pending")], now),
            "a selected pod not placed yet may come here"
        );
        assert!(
            !needs_recorder(&logs, &[web("here")], &[], now),
            "Logs needs no eBPF"
        );
        let mut done = web("done");
        done.status.as_mut().unwrap().phase = Some("Succeeded".into());
        assert!(!needs_recorder(&bpf, &[done], &[], now));
        let expired = [recording(serde_json::json!({"durationSeconds": 60}))];
        assert!(!needs_recorder(&expired, &[web("here")], &[], now));
        let old = pod(
            "old",
            serde_json::json!({"app": "web"}),
            "2025-12-31T00:00:00Z",
            "o",
            false,
        );
        assert!(
            !needs_recorder(&bpf, &[old], &[], now),
            "created before the recording"
        );
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
            recorder: crds::Recorder::Bpf,
        };
        let p = recorded_profile(&t, r.all_names(Phase::AfterExec), OciRuntime::Runc);
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
                ..t.clone()
            },
            r.all_names(Phase::AfterExec),
            OciRuntime::Runc,
        );
        assert!(
            !fin.spec.disabled
                && fin.labels().get(LABEL_PARTIAL).is_none()
                && fin.owner_references().is_empty()
        );
        assert!(profile_name(&[&"a".repeat(200), &"b".repeat(100)]).len() <= 253);
    }
}
