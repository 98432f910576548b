//! One turn of the eBPF side: claim new namespaces of wanted containers, take over those a
//! previous agent process left recording, and report the containers that ended.

use super::claim::{Decision, Met, UNMATCHED_GRACE};
use super::select::{any_active, container_done, Target};
use super::{Session, State, CLAIM_TIMEOUT};
use crds::ProfileRecording;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Instant;
use syscall_recorder::Phase;

impl State {
    /// Watched namespaces this process does not know yet (a previous agent process started
    /// them): their notes say which container they record.
    pub(super) fn adopt_watched(&mut self) {
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

    /// The Bpf part of a turn.
    pub(super) async fn turn_bpf(
        &mut self,
        recordings: &[Arc<ProfileRecording>],
        wanted: &HashMap<String, Target>,
        known: &HashMap<String, bool>,
        now: k8s_openapi::jiff::Timestamp,
    ) {
        let armed = any_active(recordings, crds::Recorder::Bpf, now);
        let mut started: Vec<(String, Target)> = Vec::new();
        let mut missed = 0u64;
        {
            let State {
                recorder,
                sessions,
                unclaimed_ns: unclaimed,
                unmatched,
                done,
                ..
            } = self;
            let Some(recorder) = recorder.as_mut() else {
                return;
            };
            if let Err(e) = recorder.arm(armed) {
                tracing::warn!(error = %crate::error_chain(&e), "arming the recorder failed");
            }
            let met = recorder.pending_records();
            unclaimed.retain_met(&met.iter().map(|(ns, _)| *ns).collect());
            let now_i = Instant::now();
            for (ns, rec) in met {
                if sessions.contains_key(&ns) {
                    // Bits a CPU put there as the namespace was being watched; read with it.
                    continue;
                }
                let m = Met {
                    ns,
                    gen: rec.generation(),
                    cgroup: rec.cgroup_name(),
                };
                match unclaimed.decide(&m, now_i, CLAIM_TIMEOUT, wanted, known, done) {
                    Decision::Wait => {}
                    Decision::Ignore => {
                        if let Ok(false) = recorder.ignore_record(ns, &rec) {
                            tracing::debug!(mntns = ns, "a namespace number was reused as it was being ignored; the new namespace is kept");
                        }
                    }
                    Decision::Record(id) => {
                        let session = Session {
                            target: wanted[&id].clone(),
                            id,
                            ended: false,
                        };
                        let note =
                            serde_json::to_vec(&session).expect("a session note always serialises");
                        match recorder.watch(ns) {
                            Ok(()) => {
                                if let Err(e) = recorder.set_note(ns, &note) {
                                    tracing::warn!(error = %crate::error_chain(&e), "keeping the session note failed; an agent restart would drop this container");
                                }
                                let t = &session.target;
                                tracing::info!(recording = %t.recording, pod = %t.pod, container = %t.container, mntns = ns, "recording container");
                                started.push((session.id.clone(), t.clone()));
                                sessions.insert(ns, session);
                            }
                            Err(e) => {
                                let t = &session.target;
                                tracing::error!(recording = %t.recording, pod = %t.pod, container = %t.container, error = %crate::error_chain(&e), "recording the container failed; it will be reported as not recorded");
                            }
                        }
                    }
                }
            }
            // Running containers this recorder should have and does not.
            let running: HashSet<String> = wanted
                .iter()
                .filter(|(id, t)| {
                    t.recorder == crds::Recorder::Bpf && known.get(*id) == Some(&false)
                })
                .map(|(id, _)| id.clone())
                .collect();
            let recorded: HashSet<String> = sessions
                .values()
                .map(|s| s.id.clone())
                .chain(done.iter().cloned())
                .collect();
            for id in unmatched.overdue(&running, &recorded, now_i, UNMATCHED_GRACE) {
                let t = &wanted[&id];
                tracing::warn!(recording = %t.recording, namespace = %t.namespace, pod = %t.pod, container = %t.container, container_id = %id, "a selected container runs but the recorder never met its start (it started before the recorder was armed, or its namespace was lost): not recorded; the recording will list it as NotRecorded");
                missed += 1;
            }
            // Containers that ended, pods that went, recordings that stopped.
            for s in sessions.values_mut().filter(|s| !s.ended) {
                s.ended = container_done(&s.target, &s.id, recordings, known, now);
            }
        }
        self.metrics.missed_containers(missed);
        let reporter = self.reporter.clone();
        for (id, t) in &started {
            reporter.clone().announce(t, id).await;
        }
        // Report what ended; the namespace is forgotten only once its final set is written,
        // so a failed write (or an agent restart) loses nothing.
        let ended: Vec<u64> = self
            .sessions
            .iter()
            .filter(|(_, s)| s.ended)
            .map(|(ns, _)| *ns)
            .collect();
        for ns in ended {
            let Some(recorder) = self.recorder.as_mut() else {
                return;
            };
            let Some(record) = recorder.read(ns) else {
                if let Some(s) = self.sessions.remove(&ns) {
                    let t = &s.target;
                    tracing::error!(recording = %t.recording, pod = %t.pod, container = %t.container, mntns = ns, "the recorded container's record is gone from the recorder's maps; it will be reported as not recorded");
                }
                continue;
            };
            let (target, id) = {
                let s = &self.sessions[&ns];
                (s.target.clone(), s.id.clone())
            };
            if self
                .settle(
                    &target,
                    &id,
                    record.all_names(Phase::AfterExec),
                    record.arguments().to_recorded(),
                )
                .await
            {
                self.done.insert(id);
                if let Some(recorder) = self.recorder.as_mut() {
                    let _ = recorder.take(ns);
                }
                self.sessions.remove(&ns);
            }
        }
        let pending = self.unclaimed_ns.len();
        if let Some(recorder) = self.recorder.as_mut() {
            let dropped = recorder.stats().1;
            self.metrics
                .observe_recorder(self.sessions.len(), pending, dropped);
        }
    }
}
