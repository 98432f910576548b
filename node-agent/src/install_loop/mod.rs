//! Feeds the [`Installer`] from the cluster: a store of all SeccompProfiles ([`store`]), a
//! debounced sync loop, and a batched status writer for this node's SeccompNodeStatus
//! (`status`).
//!
//! Safety rules:
//! - nothing is synced before the first complete list (the store is ready);
//! - when the API server goes away the store keeps its last complete state and the files stay;
//!   the watcher reconnects with backoff and a relist replaces the store only once complete;
//! - status is written at most once per [`STATUS_INTERVAL`], whatever the rate of changes.
//!
//! The status also carries what the agent learnt of its kubelet ([`crate::kubelet`]), as it
//! changes.

mod status;
pub mod store;

use crate::metrics::Metrics;
use crds::{KubeletSettings, SeccompNodeStatusStatus};
use futures::StreamExt;
use kube::runtime::{watcher, WatchStreamExt};
use kube::{Api, Client};
use profile_installer::compact::{self, StoredProfile};
use profile_installer::desired::Input;
use profile_installer::{Installer, SyncReport};
use status::status_writer;
use std::collections::HashSet;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use store::ProfileStore;
use tokio::sync::watch;

/// Most one status write per this interval.
pub const STATUS_INTERVAL: Duration = Duration::from_secs(1);
/// How often the node reports a synced version moved only by status writes and metadata
/// changes (no sync needed): a burst of the operator's status writes must not make every
/// node write its own status every [`STATUS_INTERVAL`]. A sync's version is reported at once.
pub const VERSION_REPORT_INTERVAL: Duration = Duration::from_secs(5);
/// Changes arriving within this window are applied together.
pub const DEBOUNCE: Duration = Duration::from_millis(20);
/// Full resync period (also retries failed writes).
pub const RESYNC: Duration = Duration::from_secs(60);
/// Retry period after a sync with failures.
pub const RETRY: Duration = Duration::from_secs(5);

/// Field manager name for server-side apply.
pub const MANAGER: &str = crds::apply::NODE_AGENT;
/// Repairs told as Events per resync at most (every repair is counted in the metric and
/// logged): a node whose files were all wiped must not flood the API server.
pub const MAX_REPAIR_EVENTS: usize = 10;

/// Why the install loop stopped, or a status object could not be written.
#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    /// The SeccompProfile watch ended before its first complete list.
    #[error("the SeccompProfile watch ended before its first list")]
    NeverListed(#[source] store::WatchEnded),
    /// The node's status object cannot be owned by its Node.
    #[error("owning the node's status object")]
    Owner(#[source] crate::heartbeat::OwnerError),
    /// The status object did not serialise.
    #[error("serialising the node's status object")]
    Serialize(#[source] serde_json::Error),
    /// The API server refused or failed.
    #[error("writing the node's status object")]
    Kube(#[source] kube::Error),
    /// The loop's [`SyncHooks`] refused a sync (e.g. the permits its syncs share were
    /// closed).
    #[error("the sync permits were closed")]
    Closed,
}

/// The SeccompProfiles as the install loop reads them: the store, and counters that move
/// with the watch's events.
#[derive(Clone)]
pub struct Profiles {
    /// Every SeccompProfile, compacted as it is read (see [`compact`] and [`store`]).
    pub store: ProfileStore,
    /// Moves on every watch event (a resourceVersion moved, at least).
    pub changed: watch::Receiver<u64>,
    /// Moves on every event a sync must see (see [`store`]).
    pub content: watch::Receiver<u64>,
}

/// Watch every SeccompProfile into a store, each event folded in as it arrives (the wire
/// object is not kept). Every event, list boundaries included, shows the watch works
/// (`health`). The task runs until aborted.
pub fn watch_profiles(
    client: Client,
    health: Arc<crate::health::Health>,
) -> (Profiles, tokio::task::JoinHandle<()>) {
    let api: Api<StoredProfile> = Api::all(client);
    let (profiles, mut feed) = Feed::new();
    let stream = watcher(api, crate::watch_config().any_semantic()).default_backoff();
    let task = tokio::spawn(async move {
        let mut stream = std::pin::pin!(stream);
        while let Some(ev) = stream.next().await {
            health.watch(ev.is_ok());
            match ev {
                Ok(ev) => feed.apply(ev),
                Err(e) => tracing::warn!(error = %e, "watching SeccompProfiles failed; retrying"),
            }
        }
    });
    (profiles, task)
}

/// The watch's end of [`Profiles`]: folds each event into the store and moves the counters.
pub struct Feed {
    writer: store::Writer,
    changed: watch::Sender<u64>,
    content: watch::Sender<u64>,
}

impl Feed {
    /// Empty [`Profiles`] and the feed that fills them.
    pub fn new() -> (Profiles, Feed) {
        let (reader, writer) = store::store();
        let (changed_tx, changed) = watch::channel(0u64);
        let (content_tx, content) = watch::channel(0u64);
        (
            Profiles {
                store: reader,
                changed,
                content,
            },
            Feed {
                writer,
                changed: changed_tx,
                content: content_tx,
            },
        )
    }

    /// Fold one watch event in.
    pub fn apply(&mut self, event: watcher::Event<StoredProfile>) {
        if self.writer.apply(event) {
            self.content.send_modify(|n| *n = n.wrapping_add(1));
        }
        self.changed.send_modify(|n| *n = n.wrapping_add(1));
    }
}

/// What a [`SyncLoop`] leaves to the process it runs in, around each sync: the one point
/// where a process of one loop (the agent, [`OwnProcess`]) and a process of many loops
/// sharing one heap and one machine's cores (the scale simulator, `bench/sim-nodes`) differ.
pub trait SyncHooks: Send + Sync {
    /// Held from the snapshot of the store to the end of its sync.
    type Permit: Send;
    /// Before each sync (after a resync's drift check): what the sync must hold while it
    /// runs. An error ends the loop with that error.
    fn before_sync(&self) -> impl Future<Output = Result<Self::Permit, InstallError>> + Send;
    /// After each sync, its permit dropped, with what the sync did.
    fn after_sync(&self, report: &SyncReport);
}

/// The node agent's [`SyncHooks`]: a process of one loop. Its syncs wait for nothing, and a
/// sync that wrote or removed many files hands the memory it freed back to the kernel.
#[derive(Debug, Clone, Copy, Default)]
pub struct OwnProcess;

impl SyncHooks for OwnProcess {
    type Permit = ();

    fn before_sync(&self) -> impl Future<Output = Result<(), InstallError>> + Send {
        std::future::ready(Ok(()))
    }

    fn after_sync(&self, report: &SyncReport) {
        if worth_trimming(report) {
            give_back_freed_memory();
        }
    }
}

/// Files written and removed by one sync from which the agent trims its heap after it.
const TRIM_AFTER_FILES: usize = 64;

/// Whether a sync rendered enough documents that trimming the heap after it returns memory.
fn worth_trimming(report: &SyncReport) -> bool {
    report.written + report.removed >= TRIM_AFTER_FILES
}

/// One node's install loop: keeps the files of `installer` in line with `profiles` and
/// reports the node's status, until `shutdown` turns true ([`SyncLoop::run`]). Built by its
/// caller: the agent (one loop, its own watch, [`OwnProcess`]) or the scale simulator
/// (`bench/sim-nodes`: many loops sharing one [`Profiles`], hooks of its own).
pub struct SyncLoop<H = OwnProcess> {
    /// The API client: the status writer's and the repair Events'.
    pub client: Client,
    /// The node whose files and SeccompNodeStatus these are.
    pub node_name: String,
    /// Writes the node's files.
    pub installer: Installer,
    /// The SeccompProfiles to install ([`watch_profiles`]); several loops may share them.
    pub profiles: Profiles,
    /// The node's metrics (syncs, repairs, installed files).
    pub metrics: Arc<Metrics>,
    /// Told of every sync; the first makes the node ready.
    pub health: Arc<crate::health::Health>,
    /// Turns true after the first full sync (the heartbeat starts then).
    pub synced: watch::Sender<bool>,
    /// What the node learns of its kubelet, reported with the status; a closed channel
    /// reports nothing.
    pub kubelet: watch::Receiver<Option<KubeletSettings>>,
    /// The loop ends when this turns true.
    pub shutdown: watch::Receiver<bool>,
    /// What the process does around each sync.
    pub hooks: H,
}

impl<H: SyncHooks> SyncLoop<H> {
    /// Run until `shutdown` turns true (or the watch behind `profiles` ends).
    pub async fn run(self) -> Result<(), InstallError> {
        let SyncLoop {
            client,
            node_name,
            mut installer,
            profiles,
            metrics,
            health,
            synced,
            kubelet,
            mut shutdown,
            hooks,
        } = self;
        let Profiles {
            store: reader,
            mut changed,
            mut content,
        } = profiles;
        let recorder = kube::runtime::events::Recorder::new(
            client.clone(),
            kube::runtime::events::Reporter {
                controller: MANAGER.into(),
                instance: Some(node_name.clone()),
            },
        );
        let (status_tx, status_rx) = watch::channel(None::<SeccompNodeStatusStatus>);
        let status_task = tokio::spawn(status_writer(
            client.clone(),
            node_name.clone(),
            status_rx,
            kubelet,
        ));

        tracing::info!("waiting for the first complete list of SeccompProfiles");
        tokio::select! {
            r = reader.wait_until_ready() => r.map_err(InstallError::NeverListed)?,
            _ = shutdown.changed() => return Ok(()),
        }
        // The resync (drift check, retries) runs on its own clock: changes arriving all the
        // time (a busy cluster) must not push it out forever.
        let mut resync_at = tokio::time::Instant::now() + first_resync(&node_name);
        let mut resync = false;
        // The count of the store's view the files were last synced from: the next sync covers
        // only the namespaces changed since (a resync, every namespace).
        let mut synced_view: Option<u64> = None;
        loop {
            if resync {
                // Files changed or removed by hand since the last look are restored by this
                // sync.
                let drifted = tokio::task::block_in_place(|| installer.check_drift());
                if !drifted.is_empty() {
                    metrics.repaired(drifted.len());
                    tracing::warn!(
                        profiles = drifted.len(),
                        "profile files changed on the node; restoring them"
                    );
                    tell_repairs(&recorder, &reader, &node_name, &drifted).await;
                }
            }
            let permit = hooks.before_sync().await?;
            // Whatever arrived until now is in this sync.
            content.borrow_and_update();
            changed.borrow_and_update();
            let view = reader.view(if resync { None } else { synced_view });
            // Borrowed from the store's view, with each profile's version (uid, generation):
            // an unchanged profile is not rendered again.
            let snapshot: Vec<Input> = view.profiles.iter().map(|p| p.input()).collect();
            let refused = compact::refused(
                view.profiles
                    .iter()
                    .map(|p| (p.namespace(), p.name(), p.invalid())),
            );
            let started = std::time::Instant::now();
            let report: SyncReport = tokio::task::block_in_place(|| match &view.namespaces {
                None => installer.sync_inputs(&snapshot, &refused),
                Some(changed) => {
                    let changed: HashSet<&str> = changed.iter().map(|ns| &**ns).collect();
                    installer.sync_namespaces(&snapshot, &refused, &changed)
                }
            });
            let profiles = snapshot.len();
            drop(snapshot);
            let store::SyncView {
                content: seen,
                version: synced_version,
                ..
            } = view;
            synced_view = Some(seen);
            drop(permit);
            let took = started.elapsed();
            hooks.after_sync(&report);
            let installed = installer.installed_count();
            metrics.observe_sync(&report, installed, took);
            if report != SyncReport::default() {
                tracing::info!(?report, profiles, "synced");
            }
            resync_at = next_resync_at(
                resync_at,
                tokio::time::Instant::now(),
                resync,
                report.failed > 0,
            );
            let failures = installer.failure_report();
            let mut reported = SeccompNodeStatusStatus {
                ready: true,
                installed: installed as u32,
                errors: failures.errors as u32,
                architecture: Some(seccomp_profile::Arch::native()),
                synced_resource_version: synced_version.map(|v| v.to_string()),
                not_installed: failures.not_installed,
                truncated_namespaces: failures.truncated_namespaces,
                truncated: failures.truncated,
                // Added by the status writer, from what the kubelet task learnt.
                kubelet: None,
            };
            let _ = status_tx.send(Some(reported.clone()));
            let _ = synced.send(true);
            if health.synced(report.failed == 0) {
                tracing::info!(installed, "first sync done; ready");
            }
            resync = false;
            // Until a change a sync must see, or the resync: versions moved by status writes
            // alone are reported on their own, slower clock (no sync needed).
            let mut last_report = tokio::time::Instant::now();
            let mut report_at = None;
            let stop = loop {
                tokio::select! {
                    r = content.changed() => {
                        if r.is_err() {
                            break true;
                        }
                        // At least as long as the last sync took: while profiles change all
                        // the time the agent spends at most half a core on syncs.
                        tokio::time::sleep(DEBOUNCE.max(took)).await;
                        break false;
                    }
                    r = changed.changed(), if report_at.is_none() => {
                        if r.is_err() {
                            break true;
                        }
                        changed.borrow_and_update();
                        report_at = Some(
                            tokio::time::Instant::now().max(last_report + VERSION_REPORT_INTERVAL),
                        );
                    }
                    _ = tokio::time::sleep_until(report_at.unwrap_or(resync_at)), if report_at.is_some() => {
                        report_at = None;
                        last_report = tokio::time::Instant::now();
                        // None: a change came that the next sync reports.
                        if let Some(version) = reader.version_if_unchanged(seen) {
                            let version = version.map(|v| v.to_string());
                            if version != reported.synced_resource_version {
                                reported.synced_resource_version = version;
                                let _ = status_tx.send(Some(reported.clone()));
                            }
                        }
                    }
                    _ = tokio::time::sleep_until(resync_at) => {
                        resync = true;
                        break false;
                    }
                    _ = shutdown.changed() => break true,
                }
            };
            if stop {
                break;
            }
        }
        status_task.abort();
        Ok(())
    }
}

/// A sync that rendered many documents freed them again: hand the free pages back to the
/// kernel rather than leaving them resident until glibc decides to. Only for a process of
/// one loop: loops sharing a process share its heap, and trimming all of it after each
/// loop's sync costs more than it returns.
fn give_back_freed_memory() {
    #[cfg(target_env = "gnu")]
    // SAFETY: malloc_trim only releases free memory of the allocator's own heaps.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// When a node's first resync comes: between half a [`RESYNC`] and a whole one, at a point of
/// its own (from its name). Agents started together (a rollout, a cluster's start) then do
/// their full syncs, and the reports those may write, spread over the period, not all at once.
fn first_resync(node: &str) -> Duration {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    node.hash(&mut h);
    let half = RESYNC / 2;
    let phase_ms = h.finish() % (half.as_millis() as u64).max(1);
    half + Duration::from_millis(phase_ms)
}

/// When the next resync is due, after a sync at `now`: a resync starts the period again; a
/// sync with failures brings it forward to a retry; other syncs leave it where it was.
fn next_resync_at(
    due: tokio::time::Instant,
    now: tokio::time::Instant,
    was_resync: bool,
    failed: bool,
) -> tokio::time::Instant {
    let due = if was_resync { now + RESYNC } else { due };
    if failed {
        due.min(now + RETRY)
    } else {
        due
    }
}

/// A Warning Event `ProfileRepaired` on each profile whose file was restored (at most
/// [`MAX_REPAIR_EVENTS`]); failures to publish are logged, never retried.
async fn tell_repairs(
    recorder: &kube::runtime::events::Recorder,
    profiles: &ProfileStore,
    node: &str,
    repaired: &[profile_installer::paths::ProfileKey],
) {
    for key in repaired.iter().take(MAX_REPAIR_EVENTS) {
        let Some(p) = profiles.get(&key.namespace, &key.name) else {
            continue;
        };
        let ev = kube::runtime::events::Event {
            type_: kube::runtime::events::EventType::Warning,
            reason: "ProfileRepaired".into(),
            note: Some(format!(
                "node {node}: the file operator/{}/{}.json was changed or removed on the node, not by the operator; restored",
                key.namespace, key.name
            )),
            action: "Repair".into(),
            secondary: None,
        };
        if let Err(e) = recorder.publish(&ev, &p.object_ref()).await {
            tracing::warn!(error = %e, profile = %format!("{}/{}", key.namespace, key.name), "publishing the repair event failed");
        }
    }
}

#[cfg(test)]
mod loop_tests;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nodes_start_their_resyncs_at_points_of_their_own_within_the_period() {
        let firsts: std::collections::BTreeSet<Duration> = (0..100)
            .map(|i| first_resync(&format!("node-{i:03}")))
            .collect();
        assert!(firsts.iter().all(|d| *d >= RESYNC / 2 && *d < RESYNC));
        assert_eq!(first_resync("node-007"), first_resync("node-007"));
        // Spread, not bunched: 100 nodes fall in most of ten equal slots of the half period.
        let slots: std::collections::BTreeSet<u128> = firsts
            .iter()
            .map(|d| (d.as_millis() - (RESYNC / 2).as_millis()) * 10 / (RESYNC / 2).as_millis())
            .collect();
        assert!(slots.len() >= 8, "{slots:?}");
    }

    #[test]
    fn the_synced_version_is_the_highest_integer_resource_version() {
        // The store's state after a list of profiles at these resourceVersions.
        let listed = |rvs: &[&str]| {
            let (store, mut w) = store::store();
            w.apply(watcher::Event::Init);
            for (i, rv) in rvs.iter().enumerate() {
                let p: StoredProfile = serde_json::from_value(serde_json::json!({
                    "apiVersion": "seccomp-operator.dev/v1alpha1", "kind": "SeccompProfile",
                    "metadata": {"name": format!("p{i}"), "namespace": "a", "resourceVersion": rv},
                    "spec": {"defaultAction": "SCMP_ACT_ERRNO"},
                }))
                .unwrap();
                w.apply(watcher::Event::InitApply(p));
            }
            w.apply(watcher::Event::InitDone);
            store.view(None).version
        };
        assert_eq!(listed(&["5", "12", "abc", "9"]), Some(12));
        assert_eq!(listed(&["abc", "012"]), None);
        assert_eq!(listed(&[]), None);
    }

    #[test]
    fn the_agent_trims_only_after_a_sync_of_many_files_and_never_waits() {
        let report = |written, removed| SyncReport {
            written,
            removed,
            failed: 100,
            invalid: 100,
        };
        assert!(!worth_trimming(&report(0, 0)));
        assert!(!worth_trimming(&report(63, 0)));
        assert!(!worth_trimming(&report(40, 23)));
        assert!(worth_trimming(&report(40, 24)));
        assert!(worth_trimming(&report(0, 64)));
        // A sync of the agent starts at once: its permit is ready without a wake-up.
        let waker = std::task::Waker::noop();
        let mut cx = std::task::Context::from_waker(waker);
        let mut permit = std::pin::pin!(OwnProcess.before_sync());
        assert!(matches!(
            permit.as_mut().poll(&mut cx),
            std::task::Poll::Ready(Ok(()))
        ));
    }

    #[test]
    fn changes_never_push_the_resync_out_and_failures_bring_it_forward() {
        let t0 = tokio::time::Instant::now();
        let due = t0 + RESYNC;
        // Syncs for changes, every 10 s: the resync stays due at t0 + 60 s.
        let mut d = due;
        for i in 1..6 {
            d = next_resync_at(d, t0 + Duration::from_secs(10 * i), false, false);
        }
        assert_eq!(d, due);
        // A failed sync: retried in 5 s.
        assert_eq!(
            next_resync_at(due, t0 + Duration::from_secs(20), false, true),
            t0 + Duration::from_secs(25)
        );
        // The resync itself starts a new period.
        let at = t0 + Duration::from_secs(60);
        assert_eq!(next_resync_at(due, at, true, false), at + RESYNC);
    }
}
