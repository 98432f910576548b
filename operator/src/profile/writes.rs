//! Profile statuses the leader computed and has not seen in its cache yet: what admission
//! reads ahead of the write, and the queue of status writes.
//!
//! A reconcile computes a profile's status in memory (the node reports, the pods, the spec)
//! and hands it here ([`StatusWrites::submit`]). The install gate and the scheduling gate read
//! it at once ([`StatusWrites::fresher`]): a pod never waits for a status write.
//!
//! The writes are coalesced: only a profile's latest status is written. A status that only says
//! how far the install got (`Pending`, `Installing n/m`) is *progress*: it is written after
//! [`PROGRESS_DELAY`], at most [`PROGRESS_PER_SECOND`] a second, and only while no other
//! status waits. Every other status (`Installed`, `Error`, `Disabled`, `Terminating`) is
//! written as soon as one of [`WRITERS`] is free. So a new profile of a burst is written about
//! once, when it is Installed, and the writes a burst needs go first.
//!
//! Phase Events follow the writes ([`phase_event`]): a new profile's way to Installed is in
//! its status, not in Events.

use crate::pods::references::ProfileId;
use crate::runtime::metrics::Metrics;
use crds::apply::{apply_status, OPERATOR};
use crds::{ProfilePhase, SeccompProfile, SeccompProfileStatus};
use k8s_openapi::api::core::v1::ObjectReference;
use kube::runtime::events::{Event, EventType, Recorder};
use kube::{Api, Client, Resource, ResourceExt};
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Notify;

/// Status writes at once.
pub const WRITERS: usize = 16;
/// A progress status is written no sooner than this after it was computed: a profile
/// installed on every node by then is written once, Installed.
pub const PROGRESS_DELAY: Duration = Duration::from_secs(2);
/// Progress writes a second, at most (they yield to every other status write).
pub const PROGRESS_PER_SECOND: f64 = 5.0;
/// A failed write is tried this many times before the entry is dropped (the reconcile's
/// periodic look submits it again).
const ATTEMPTS: u32 = 5;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Waits in a queue.
    Queued,
    /// A writer is writing it.
    InFlight,
    /// Written; kept until the cache shows it.
    Written,
}

struct Entry {
    uid: String,
    generation: Option<i64>,
    status: Arc<SeccompProfileStatus>,
    /// The phase users saw before this status (the cache's, or the last write's).
    shown: Option<ProfilePhase>,
    state: State,
    urgent: bool,
    /// When a progress status may be written.
    ripe: Instant,
}

#[derive(Default)]
struct Queue {
    entries: HashMap<ProfileId, Entry>,
    urgent: VecDeque<ProfileId>,
    progress: VecDeque<ProfileId>,
    tokens: f64,
    refilled: Option<Instant>,
}

/// One write to make.
struct Job {
    id: ProfileId,
    uid: String,
    status: Arc<SeccompProfileStatus>,
    shown: Option<ProfilePhase>,
    progress: bool,
}

enum Take {
    Job(Job),
    Wait(Duration),
}

/// Whether `status` only says how far the install got.
fn is_progress(status: &SeccompProfileStatus) -> bool {
    matches!(
        status.phase,
        None | Some(ProfilePhase::Pending) | Some(ProfilePhase::Installing)
    )
}

/// Whether a write that moves a profile from phase `before` to `after` gets an Event: a
/// profile entering Error, Disabled or Terminating, and one coming back to Installed from
/// Error or Disabled. Pending and Installing never do, nor a new profile becoming Installed:
/// its status says so.
pub fn phase_event(before: Option<ProfilePhase>, after: Option<ProfilePhase>) -> bool {
    use ProfilePhase::*;
    if before == after {
        return false;
    }
    match after {
        Some(Error | Disabled | Terminating) => true,
        Some(Installed) => matches!(before, Some(Error | Disabled)),
        _ => false,
    }
}

/// The statuses to write, and the writers' shared state.
pub struct StatusWrites {
    queue: Mutex<Queue>,
    wake: Notify,
    admissible: futures::channel::mpsc::UnboundedSender<ProfileId>,
    metrics: Arc<Metrics>,
}

impl StatusWrites {
    /// An empty queue, and the stream of profiles that became admissible (for the scheduling
    /// gate).
    pub fn new(
        metrics: Arc<Metrics>,
    ) -> (
        Arc<Self>,
        futures::channel::mpsc::UnboundedReceiver<ProfileId>,
    ) {
        let (tx, rx) = futures::channel::mpsc::unbounded();
        let w = StatusWrites {
            queue: Mutex::new(Queue::default()),
            wake: Notify::new(),
            admissible: tx,
            metrics,
        };
        (Arc::new(w), rx)
    }

    /// Publish how many wait (a queue may still hold the place of an entry that moved to
    /// the other queue or was written: an upper bound).
    fn waiting(&self, q: &Queue) {
        self.metrics
            .status_writes_waiting(q.urgent.len(), q.progress.len());
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The status computed for `p` now. Nothing is written when the cache shows it already.
    pub fn submit(&self, p: &SeccompProfile, status: SeccompProfileStatus) {
        let id = (p.namespace().unwrap_or_default(), p.name_any());
        let uid = p.metadata.uid.clone().unwrap_or_default();
        let cached = p.status.as_ref();
        let now = Instant::now();
        let mut q = self.lock();
        let same_object = |e: &Entry| e.uid == uid;
        if q.entries.get(&id).is_some_and(|e| !same_object(e)) {
            // The name now belongs to a new object: the old one's status is not its.
            q.entries.remove(&id);
        }
        let before = q
            .entries
            .get(&id)
            .map(|e| e.status.phase)
            .or(cached.map(|c| c.phase));
        if cached == Some(&status) {
            // The cache caught up (or nothing changed): nothing to write, nothing fresher to
            // read. A write in flight finishes and is forgotten at the next look.
            if q.entries
                .get(&id)
                .is_some_and(|e| e.state != State::InFlight)
            {
                q.entries.remove(&id);
            }
            self.waiting(&q);
            return;
        }
        if q.entries.get(&id).is_some_and(|e| *e.status == status) {
            return;
        }
        let installed = status.phase == Some(ProfilePhase::Installed);
        if installed && before.flatten() != Some(ProfilePhase::Installed) {
            let _ = self.admissible.unbounded_send(id.clone());
            // Only a new profile's first install: its creation is when it was applied.
            let first = cached.is_none_or(|c| c.installed_at.is_none());
            if first && p.metadata.generation == Some(1) {
                if let Some(created) = &p.metadata.creation_timestamp {
                    let waited = k8s_openapi::jiff::Timestamp::now().duration_since(created.0);
                    self.metrics
                        .admissible(Duration::try_from(waited).unwrap_or_default());
                }
            }
        }
        let urgent = !is_progress(&status);
        let status = Arc::new(status);
        let generation = p.metadata.generation;
        let push = match q.entries.get_mut(&id) {
            Some(e) => {
                e.status = status;
                e.generation = generation;
                let moved = urgent != e.urgent;
                e.urgent = urgent;
                match e.state {
                    State::Written => {
                        e.state = State::Queued;
                        e.ripe = now + PROGRESS_DELAY;
                        true
                    }
                    // A queued entry keeps its place unless it changed queues (the old place
                    // is skipped); one in flight is queued again when its write ends.
                    State::Queued => moved,
                    State::InFlight => false,
                }
            }
            None => {
                q.entries.insert(
                    id.clone(),
                    Entry {
                        uid,
                        generation,
                        status,
                        shown: cached.and_then(|c| c.phase),
                        state: State::Queued,
                        urgent,
                        ripe: now + PROGRESS_DELAY,
                    },
                );
                true
            }
        };
        if push {
            if urgent {
                q.urgent.push_back(id);
            } else {
                q.progress.push_back(id);
            }
            self.wake.notify_one();
        }
        self.waiting(&q);
    }

    /// Forget a profile that is gone.
    pub fn forget(&self, id: &ProfileId) {
        let mut q = self.lock();
        q.entries.remove(id);
        self.waiting(&q);
    }

    /// `p` with the status computed for it if that is newer than the cache's (same object,
    /// same generation): what admission decides on.
    pub fn fresher(&self, p: Arc<SeccompProfile>) -> Arc<SeccompProfile> {
        let id = (p.namespace().unwrap_or_default(), p.name_any());
        let status = {
            let q = self.lock();
            match q.entries.get(&id) {
                Some(e)
                    if Some(e.uid.as_str()) == p.metadata.uid.as_deref()
                        && e.generation == p.metadata.generation =>
                {
                    e.status.clone()
                }
                _ => return p,
            }
        };
        let mut fresh = (*p).clone();
        fresh.status = Some((*status).clone());
        Arc::new(fresh)
    }

    /// The next write to make, or how long to wait for one.
    fn take(&self, now: Instant) -> Take {
        let mut q = self.lock();
        while let Some(id) = q.urgent.pop_front() {
            if let Some(job) = start(&mut q, id, now, true) {
                return Take::Job(job);
            }
        }
        // The bucket holds two seconds' worth, and starts full.
        let elapsed = q
            .refilled
            .map_or(Duration::from_secs(2), |t| now.duration_since(t));
        q.tokens =
            (q.tokens + elapsed.as_secs_f64() * PROGRESS_PER_SECOND).min(PROGRESS_PER_SECOND * 2.0);
        q.refilled = Some(now);
        while let Some(id) = q.progress.front().cloned() {
            let ripe = match q.entries.get(&id) {
                Some(e) if e.state == State::Queued && !e.urgent => e.ripe,
                _ => {
                    q.progress.pop_front();
                    continue;
                }
            };
            if ripe > now {
                return Take::Wait(ripe - now);
            }
            if q.tokens < 1.0 {
                return Take::Wait(Duration::from_secs_f64(
                    (1.0 - q.tokens) / PROGRESS_PER_SECOND,
                ));
            }
            q.progress.pop_front();
            q.tokens -= 1.0;
            if let Some(job) = start(&mut q, id, now, false) {
                return Take::Job(job);
            }
        }
        Take::Wait(Duration::from_secs(1))
    }

    /// A write of `job` ended: `Ok(true)` written, `Ok(false)` the profile is gone.
    fn done(&self, job: &Job, result: Result<bool, ()>) {
        let mut q = self.lock();
        let Some(e) = q.entries.get_mut(&job.id) else {
            return;
        };
        if e.uid != job.uid || e.state != State::InFlight {
            return;
        }
        match result {
            Ok(false) => {
                q.entries.remove(&job.id);
            }
            Ok(true) if Arc::ptr_eq(&e.status, &job.status) => {
                e.state = State::Written;
                e.shown = job.status.phase;
            }
            // Written, but a newer status came meanwhile; or not written: queue it again.
            Ok(true) | Err(()) => {
                if result.is_ok() {
                    e.shown = job.status.phase;
                }
                e.state = State::Queued;
                let urgent = e.urgent;
                if urgent {
                    q.urgent.push_back(job.id.clone());
                } else {
                    q.progress.push_back(job.id.clone());
                }
                self.wake.notify_one();
            }
        }
        self.waiting(&q);
    }

    fn clear(&self) {
        let mut q = self.lock();
        *q = Queue::default();
        self.waiting(&q);
    }

    /// Write statuses until the process ends: [`WRITERS`] at once, while `gate` is open (a
    /// replica that stops leading drops what it had: the next leader computes its own).
    pub async fn run(
        self: Arc<Self>,
        client: Client,
        recorder: Recorder,
        gate: crate::runtime::leader::Gate,
    ) {
        let writers = (0..WRITERS).map(|_| {
            let (me, client, recorder, gate) =
                (self.clone(), client.clone(), recorder.clone(), gate.clone());
            async move {
                loop {
                    // A replica that follows decides nothing: what it computed while it led
                    // must not shade the stored statuses its webhooks answer from.
                    if !gate.leads() {
                        me.clear();
                    }
                    match me.take(Instant::now()) {
                        Take::Wait(d) => {
                            tokio::select! {
                                _ = me.wake.notified() => {}
                                _ = tokio::time::sleep(d.min(Duration::from_secs(1))) => {}
                            }
                        }
                        // Only the leader writes.
                        Take::Job(_) if !gate.leads() => me.clear(),
                        Take::Job(job) => me.write(&client, &recorder, job).await,
                    }
                }
            }
        });
        futures::future::join_all(writers).await;
    }

    /// Write every queued status now, ripe or not, one after another (tests).
    #[cfg(test)]
    pub async fn flush(&self, client: &Client, recorder: &Recorder) {
        {
            let mut q = self.lock();
            let mut queued = Vec::new();
            for (id, e) in q.entries.iter_mut() {
                if e.state == State::Queued {
                    e.urgent = true;
                    queued.push(id.clone());
                }
            }
            q.progress.clear();
            q.urgent.extend(queued);
        }
        while let Take::Job(job) = self.take(Instant::now()) {
            self.write(client, recorder, job).await;
        }
    }

    /// Write one status, retrying with a growing pause; then the phase Event, if any.
    async fn write(&self, client: &Client, recorder: &Recorder, job: Job) {
        let (ns, name) = &job.id;
        let api: Api<SeccompProfile> = Api::namespaced(client.clone(), ns);
        let mut pause = Duration::from_secs(1);
        let mut result = Err(());
        for attempt in 1..=ATTEMPTS {
            match apply_status(&api, OPERATOR, name, &*job.status).await {
                Ok(_) => {
                    result = Ok(true);
                    break;
                }
                Err(kube::Error::Api(e)) if e.code == 404 => {
                    result = Ok(false);
                    break;
                }
                Err(e) => {
                    tracing::warn!(profile = %format!("{ns}/{name}"), attempt, error = %e, "writing the profile status failed");
                    if attempt < ATTEMPTS {
                        tokio::time::sleep(pause).await;
                        pause = (pause * 2).min(Duration::from_secs(30));
                    }
                }
            }
        }
        if result == Err(()) {
            // Given up for now: the reconcile's periodic look computes it again.
            self.forget(&job.id);
            return;
        }
        self.done(&job, result);
        if result == Ok(true) {
            self.metrics.status_written(job.progress);
            if phase_event(job.shown, job.status.phase) {
                publish(recorder, &job).await;
            }
        }
    }
}

/// Start writing the queued entry `id`, if it still waits in the queue it was taken from.
fn start(q: &mut Queue, id: ProfileId, now: Instant, urgent: bool) -> Option<Job> {
    let e = q.entries.get_mut(&id)?;
    if e.state != State::Queued || e.urgent != urgent || (!urgent && e.ripe > now) {
        return None;
    }
    e.state = State::InFlight;
    Some(Job {
        uid: e.uid.clone(),
        status: e.status.clone(),
        shown: e.shown,
        progress: !urgent,
        id,
    })
}

async fn publish(recorder: &Recorder, job: &Job) {
    let s = &job.status;
    let ready = s.conditions.iter().find(|c| c.type_ == "Ready");
    let valid = s.conditions.iter().find(|c| c.type_ == "Valid");
    let (type_, note) = match s.phase {
        Some(ProfilePhase::Error) => (
            EventType::Warning,
            valid
                .filter(|v| v.status == "False")
                .or(ready)
                .map(|c| c.message.clone()),
        ),
        _ => (EventType::Normal, ready.map(|c| c.message.clone())),
    };
    let reason = s
        .phase
        .map(|ph| format!("{ph:?}"))
        .unwrap_or_else(|| "Unknown".into());
    let ev = Event {
        type_,
        reason,
        note,
        action: "Reconcile".into(),
        secondary: None,
    };
    let reference = ObjectReference {
        api_version: Some(SeccompProfile::api_version(&()).into_owned()),
        kind: Some(SeccompProfile::kind(&()).into_owned()),
        namespace: Some(job.id.0.clone()),
        name: Some(job.id.1.clone()),
        uid: Some(job.uid.clone()),
        ..Default::default()
    };
    if let Err(e) = recorder.publish(&ev, &reference).await {
        tracing::warn!(error = %e, "publishing event failed");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crds::NodeCounts;

    fn profile(uid: &str, status: Option<SeccompProfileStatus>) -> SeccompProfile {
        let mut p: SeccompProfile = serde_json::from_value(serde_json::json!({
            "apiVersion": "seccomp-operator.dev/v1alpha1", "kind": "SeccompProfile",
            "metadata": {"name": "web", "namespace": "shop", "uid": uid, "generation": 1,
                         "creationTimestamp": "2026-01-01T00:00:00Z"},
            "spec": {"defaultAction": "SCMP_ACT_ERRNO"},
        }))
        .unwrap();
        p.status = status;
        p
    }

    fn status(phase: ProfilePhase, installed: u32) -> SeccompProfileStatus {
        SeccompProfileStatus {
            phase: Some(phase),
            nodes: Some(NodeCounts {
                installed,
                total: 3,
            }),
            ..Default::default()
        }
    }

    fn id() -> ProfileId {
        ("shop".into(), "web".into())
    }

    fn job(w: &StatusWrites, now: Instant) -> Option<Job> {
        match w.take(now) {
            Take::Job(j) => Some(j),
            Take::Wait(_) => None,
        }
    }

    #[test]
    fn progress_waits_and_yields_to_final_statuses() {
        let (w, _rx) = StatusWrites::new(Arc::new(Metrics::default()));
        let now = Instant::now();
        let mut other = profile("u2", None);
        other.metadata.name = Some("db".into());
        w.submit(&profile("u1", None), status(ProfilePhase::Installing, 1));
        w.submit(&other, status(ProfilePhase::Error, 0));
        // The final status goes first; the progress one is not ripe yet.
        let first = job(&w, now).expect("the Error status is written at once");
        assert_eq!(first.id.1, "db");
        assert!(job(&w, now).is_none());
        // Once ripe, it is written, within the rate.
        let later = now + PROGRESS_DELAY + Duration::from_millis(1);
        let second = job(&w, later).expect("ripe progress is written");
        assert!(second.progress && second.id == id());
    }

    #[test]
    fn a_progress_status_that_becomes_installed_is_written_once_installed() {
        let (w, mut rx) = StatusWrites::new(Arc::new(Metrics::default()));
        let p = profile("u1", None);
        w.submit(&p, status(ProfilePhase::Pending, 0));
        w.submit(&p, status(ProfilePhase::Installing, 2));
        w.submit(&p, status(ProfilePhase::Installed, 3));
        let j = job(&w, Instant::now()).expect("written at once");
        assert_eq!(j.status.phase, Some(ProfilePhase::Installed));
        // Nothing else is left to write for it: the stale progress place is skipped.
        assert!(job(&w, Instant::now() + PROGRESS_DELAY * 2).is_none());
        // The scheduling gate heard of it, once.
        assert_eq!(rx.try_recv().ok(), Some(id()));
        assert!(rx.try_recv().is_err());
        // And admission reads it before the write.
        let seen = w.fresher(Arc::new(p.clone()));
        assert_eq!(
            seen.status.as_ref().unwrap().phase,
            Some(ProfilePhase::Installed)
        );
        // Not for another object of the same name, nor after the cache caught up.
        assert!(w.fresher(Arc::new(profile("u9", None))).status.is_none());
        w.done(&j, Ok(true));
        let caught_up = profile("u1", Some(status(ProfilePhase::Installed, 3)));
        w.submit(&caught_up, status(ProfilePhase::Installed, 3));
        assert!(w.fresher(Arc::new(p)).status.is_none());
    }

    #[test]
    fn a_status_changed_while_written_is_written_again() {
        let (w, _rx) = StatusWrites::new(Arc::new(Metrics::default()));
        let p = profile("u1", None);
        w.submit(&p, status(ProfilePhase::Error, 0));
        let j = job(&w, Instant::now()).unwrap();
        w.submit(&p, status(ProfilePhase::Disabled, 0));
        assert!(job(&w, Instant::now()).is_none(), "one write at a time");
        w.done(&j, Ok(true));
        let again = job(&w, Instant::now()).expect("the newer status");
        assert_eq!(again.status.phase, Some(ProfilePhase::Disabled));
        assert_eq!(again.shown, Some(ProfilePhase::Error));
    }

    #[test]
    fn a_gone_profile_is_dropped() {
        let (w, _rx) = StatusWrites::new(Arc::new(Metrics::default()));
        let p = profile("u1", None);
        w.submit(&p, status(ProfilePhase::Error, 0));
        let j = job(&w, Instant::now()).unwrap();
        w.done(&j, Ok(false));
        assert!(w.fresher(Arc::new(p)).status.is_none());
    }

    #[test]
    fn progress_writes_are_rate_limited() {
        let (w, _rx) = StatusWrites::new(Arc::new(Metrics::default()));
        let start = Instant::now();
        for i in 0..50 {
            let mut p = profile(&format!("u{i}"), None);
            p.metadata.name = Some(format!("p{i}"));
            w.submit(&p, status(ProfilePhase::Pending, 0));
        }
        let at = start + PROGRESS_DELAY + Duration::from_millis(1);
        let mut written = 0;
        while job(&w, at).is_some() {
            written += 1;
        }
        // The bucket holds two seconds' worth.
        assert_eq!(written, (PROGRESS_PER_SECOND * 2.0) as usize);
    }

    #[test]
    fn phase_events_mark_what_users_act_on() {
        use ProfilePhase::*;
        assert!(!phase_event(None, Some(Pending)));
        assert!(!phase_event(Some(Pending), Some(Installing)));
        assert!(!phase_event(Some(Installing), Some(Installed)));
        assert!(!phase_event(None, Some(Installed)));
        assert!(phase_event(None, Some(Error)));
        assert!(phase_event(Some(Installed), Some(Disabled)));
        assert!(phase_event(Some(Error), Some(Installed)));
        assert!(phase_event(Some(Installed), Some(Terminating)));
        assert!(!phase_event(Some(Error), Some(Error)));
    }
}
