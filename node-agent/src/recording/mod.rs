//! In-cluster recording on the node: containers of this node's pods that an active
//! ProfileRecording selects are recorded — by the eBPF recorder from their first syscall, or
//! from the kernel's seccomp audit records — and what each recorded is reported into the
//! node's RecordingReport for that recording. The operator turns reports into profiles.
//!
//! How a container is found: while a Bpf recording is active the recorder is armed, so every
//! new mount namespace is recorded from its first syscall. At the container program's exec
//! the kernel side notes the name of the cgroup the process runs in — the container ID with
//! containerd, CRI-O and runc — so a namespace maps to a container even when the container
//! has already exited. Namespaces of containers no recording wants are ignored.
//!
//! - [`select`]: which containers are wanted and when one is done (pure);
//! - [`bpf`]: one turn of the eBPF side; [`claim`]: what becomes of a namespace it met;
//!   [`logs`]: one turn of the audit side;
//! - [`report`]: the entries and the writes of the node's reports.
//!
//! The loop is event-driven: it runs a turn when a watched recording or pod changes, when a
//! pod no node runs yet appears, or on a timer that has a reason — the armed recorder is
//! polled for new namespaces (the kernel does not signal them) and audit records are drained
//! every [`POLL`]; the recorder's unload grace ends; failed writes are retried after
//! [`RETRY`]. An idle node runs a turn every [`IDLE`] only, as a safety net.

pub mod bpf;
pub mod claim;
pub mod logs;
pub mod report;
pub mod select;

use crate::metrics::Metrics;
use crds::ProfileRecording;
use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{watcher, WatchStreamExt};
use kube::{Api, Client};
use seccomp_profile::builtin::OciRuntime;
use seccomp_profile::RecordedArgs;
use select::{needs_recorder, Target};
use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use syscall_recorder::Recorder;
use tokio::sync::Notify;

/// The recorder stays loaded this long after the last pod that needed it.
pub const UNLOAD_GRACE: Duration = Duration::from_secs(15);
/// Give up on a namespace nobody claims after this long.
pub const CLAIM_TIMEOUT: Duration = Duration::from_secs(120);
/// While the recorder is armed, or audit records are read, a turn runs this often.
pub const POLL: Duration = Duration::from_millis(100);
/// A failed report write is retried after this long.
pub const RETRY: Duration = Duration::from_secs(2);
/// With nothing to record, a turn still runs this often.
pub const IDLE: Duration = Duration::from_secs(60);
/// After a failed load, the recorder is tried again after this long.
const LOAD_RETRY: Duration = Duration::from_secs(30);

/// How the node records.
#[derive(Clone, Debug)]
pub struct Options {
    /// Where the recorder's maps and links are pinned (bpffs), so that recordings survive an
    /// agent restart; None keeps them in the process.
    pub pin_root: Option<PathBuf>,
    /// The OCI runtime the node's containers run with (what its init calls after the filter
    /// goes into every recorded set).
    pub runtime: OciRuntime,
}

/// Watch `api` into a store, waking `changed` on every event.
fn watch_into<K>(api: Api<K>, cfg: watcher::Config, changed: Arc<Notify>) -> Store<K>
where
    K: kube::Resource<DynamicType = ()>
        + Clone
        + std::fmt::Debug
        + serde::de::DeserializeOwned
        + Send
        + Sync
        + 'static,
{
    let (store, writer) = reflector::store::<K>();
    tokio::spawn(
        reflector::reflector(writer, watcher(api, cfg))
            .default_backoff()
            .for_each(move |_| {
                changed.notify_one();
                async {}
            }),
    );
    store
}

/// Record containers for ProfileRecordings on this node, forever.
///
/// The eBPF recorder is loaded only while a Bpf recording selects a pod on (or bound for) this
/// node, or recorded containers still wait to be reported: a node with nothing to record runs
/// no program on its syscalls and holds none of the memory the loader needs. Its maps and
/// links are pinned: an agent that restarts mid-recording finds the programs still recording
/// and takes over.
pub async fn run(client: Client, node_name: String, metrics: Arc<Metrics>, opts: Options) {
    let changed = Arc::new(Notify::new());
    let recs = watch_into(
        Api::<ProfileRecording>::all(client.clone()),
        crate::watch_config(),
        changed.clone(),
    );
    let pods = watch_into(
        Api::<Pod>::all(client.clone()),
        crate::watch_config().fields(&format!("spec.nodeName={node_name}")),
        changed.clone(),
    );
    // Pods no node runs yet: one a recording selects may be scheduled here.
    let unplaced = crate::unplaced::Unplaced::watch(client.clone());
    let pins = opts.pin_root.as_ref().map(|root| {
        let dir = syscall_recorder::pin_dir(root);
        syscall_recorder::remove_stale_pins(root, &dir);
        dir
    });
    let _ = recs.wait_until_ready().await;
    let _ = pods.wait_until_ready().await;
    let mut state = State {
        reporter: Reporter {
            client,
            node: node_name,
            runtime: opts.runtime,
            metrics: metrics.clone(),
        },
        metrics,
        recorder: None,
        sessions: HashMap::new(),
        unclaimed_ns: claim::Unclaimed::default(),
        unmatched: claim::Unmatched::default(),
        done: HashSet::new(),
        audit: None,
        logged: HashMap::new(),
        unclaimed: HashMap::new(),
        retry: false,
    };
    let mut load_failed_at: Option<Instant> = None;
    let mut needed_at: Option<Instant> = None;
    loop {
        let now = k8s_openapi::jiff::Timestamp::now();
        let recordings = recs.state();
        let node_pods = pods.state();
        // Only Bpf recordings need the eBPF recorder (a node without BTF still records with
        // Logs), and only on nodes where a pod they select runs or may start; a recorder a
        // previous agent left pinned is taken over to finish its work. The recorder stays a
        // little after the last need, so a pod replaced at once does not unload and reload it.
        if needs_recorder(&recordings, &node_pods, &unplaced.pods(), now) {
            needed_at = Some(Instant::now());
        }
        let grace_left = needed_at.map(|t| UNLOAD_GRACE.saturating_sub(t.elapsed()));
        let bpf_active = grace_left.is_some_and(|d| !d.is_zero());
        let left_pinned = pins.as_deref().is_some_and(Recorder::pinned_in);
        let may_retry = load_failed_at.is_none_or(|t| t.elapsed() > LOAD_RETRY);
        if state.recorder.is_none() && (bpf_active || left_pinned) && may_retry {
            if let Err(e) = state.load_recorder(pins.as_deref()) {
                tracing::warn!(error = %crate::error_chain(&e), "a Bpf recording is active but the eBPF recorder cannot load");
                load_failed_at = Some(Instant::now());
            }
        }
        state.retry = false;
        state.turn(&recordings, &node_pods, now).await;
        if !bpf_active && state.sessions.is_empty() {
            state.unload_recorder();
        }
        let wait = state.next_turn(grace_left.filter(|d| !d.is_zero()));
        tokio::select! {
            _ = tokio::time::sleep(wait) => {},
            _ = changed.notified() => {},
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
pub struct Session {
    /// The container ID.
    pub id: String,
    /// Whom it is recorded for.
    pub target: Target,
    /// The container ended: report, then forget the namespace.
    #[serde(default)]
    pub ended: bool,
}

/// A container recorded from the kernel's audit records.
pub struct LogSession {
    target: Target,
    names: BTreeSet<String>,
    ended: bool,
}

/// What the recording loop keeps between turns.
pub struct State {
    reporter: Reporter,
    metrics: Arc<Metrics>,
    /// The eBPF recorder, while a Bpf recording needs it.
    recorder: Option<Recorder>,
    /// Watched namespace → the container it records.
    sessions: HashMap<u64, Session>,
    /// Namespaces the armed recorder met that nobody claimed yet.
    unclaimed_ns: claim::Unclaimed,
    /// Wanted containers that run without being recorded.
    unmatched: claim::Unmatched,
    /// Containers already reported final (a namespace that outlives its final read is not
    /// recorded twice).
    done: HashSet<String>,
    /// The audit reader, while a `Logs` recording is active.
    audit: Option<syscall_recorder::audit::AuditReader>,
    /// `Logs` recordings: container ID → what its audit records named so far.
    logged: HashMap<String, LogSession>,
    /// Audit records of containers not (yet) in any pod's status, and when first seen.
    unclaimed: HashMap<String, (BTreeSet<String>, Instant)>,
    /// A report write failed this turn.
    retry: bool,
}

impl State {
    fn load_recorder(
        &mut self,
        pins: Option<&std::path::Path>,
    ) -> Result<(), syscall_recorder::RecorderError> {
        let recorder = match pins {
            Some(dir) => Recorder::load_pinned(dir)?,
            None => Recorder::load()?,
        };
        if recorder.resumed() {
            tracing::info!("took over the eBPF recorder a previous agent left recording");
        } else {
            tracing::info!(
                "a Bpf recording selects a pod on (or bound for) this node: eBPF recorder loaded"
            );
        }
        release_freed_memory();
        self.metrics.recorder_loaded(true);
        self.recorder = Some(recorder);
        Ok(())
    }

    fn unload_recorder(&mut self) {
        let Some(recorder) = self.recorder.take() else {
            return;
        };
        if let Err(e) = recorder.unpin() {
            tracing::warn!(error = %crate::error_chain(&e), "removing the recorder's pins failed");
        }
        // Its maps are gone: what was timed about their namespaces goes with them.
        self.unclaimed_ns.clear();
        self.unmatched.clear();
        release_freed_memory();
        self.metrics.observe_recorder(0, 0, 0);
        self.metrics.recorder_loaded(false);
        tracing::info!("no Bpf recording selects a pod on this node: eBPF recorder unloaded");
    }

    /// One turn: both recorders, from the watched recordings and this node's pods.
    async fn turn(
        &mut self,
        recordings: &[Arc<ProfileRecording>],
        pods: &[Arc<Pod>],
        now: k8s_openapi::jiff::Timestamp,
    ) {
        self.adopt_watched();
        let idle = self.recorder.is_none()
            && self.audit.is_none()
            && self.logged.is_empty()
            && !recordings.iter().any(|r| r.is_active(now));
        if idle {
            return;
        }
        let wanted = select::targets(pods, recordings, now);
        let known = select::known_containers(pods);
        // Finished containers are remembered while their pod is listed (a namespace can
        // outlive its final read); then they can never be wanted again.
        self.done.retain(|id| known.contains_key(id));
        self.turn_logs(recordings, &wanted, &known, now).await;
        self.turn_bpf(recordings, &wanted, &known, now).await;
    }

    /// How long until the next turn when nothing wakes the loop.
    fn next_turn(&self, grace_left: Option<Duration>) -> Duration {
        let polling = self.recorder.is_some() || self.audit.is_some();
        let mut wait = if polling { POLL } else { IDLE };
        if self.retry {
            wait = wait.min(RETRY);
        }
        if let Some(g) = grace_left {
            wait = wait.min(g);
        }
        wait
    }

    /// Report `t`'s container `id` final with `names`: true once settled (written, or refused
    /// for good), false when it should be retried soon.
    async fn settle(
        &mut self,
        t: &Target,
        id: &str,
        names: BTreeSet<String>,
        arguments: Vec<RecordedArgs>,
    ) -> bool {
        let settled = self.reporter.clone().settle(t, id, names, arguments).await;
        self.retry |= !settled;
        settled
    }
}

/// What writes this node's reports (cloned out of the loop's state for each write, so the
/// state is not held across the await).
#[derive(Clone)]
struct Reporter {
    client: Client,
    node: String,
    runtime: OciRuntime,
    metrics: Arc<Metrics>,
}

impl Reporter {
    async fn settle(
        self,
        t: &Target,
        id: &str,
        names: BTreeSet<String>,
        arguments: Vec<RecordedArgs>,
    ) -> bool {
        let overflows: Vec<String> = arguments
            .iter()
            .filter(|a| a.any)
            .map(|a| a.syscall.clone())
            .collect();
        let e = report::entry(t, id, names, arguments, self.runtime, true);
        match report::submit(&self.client, &self.node, t, e).await {
            Ok(n) => {
                self.metrics.recorded(n, overflows.len());
                tracing::info!(recording = %t.recording, namespace = %t.namespace, pod = %t.pod, container = %t.container, syscalls = n, "recorded container reported");
                if !overflows.is_empty() {
                    tracing::warn!(pod = %t.pod, container = %t.container, syscalls = ?overflows, "argument classes not captured (more distinct values than kept, or a compat ABI): these syscalls are allowed with any arguments");
                }
                true
            }
            Err(e) if !e.retry() => {
                tracing::error!(pod = %t.pod, container = %t.container, error = %crate::error_chain(&e), "recorded container's report refused; dropped");
                true
            }
            Err(e) => {
                tracing::warn!(pod = %t.pod, container = %t.container, error = %crate::error_chain(&e), "reporting the recorded container failed; retrying");
                false
            }
        }
    }

    /// Tell the operator a container is being recorded here (an entry that is not final yet),
    /// so that it waits for this node's final set before it merges. Best effort: the final
    /// entry says the same.
    async fn announce(self, t: &Target, id: &str) {
        let e = report::entry(t, id, BTreeSet::new(), Vec::new(), self.runtime, false);
        if let Err(e) = report::submit(&self.client, &self.node, t, e).await {
            tracing::debug!(pod = %t.pod, container = %t.container, error = %crate::error_chain(&e), "announcing the recorded container failed");
        }
    }
}
