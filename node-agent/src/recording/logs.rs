//! One turn of the audit side (`Logs` recordings): read the seccomp audit records that
//! arrived, attribute them to the wanted containers, and report the containers that ended.

use super::select::{any_active, container_done, Target};
use super::{LogSession, State, CLAIM_TIMEOUT};
use crds::ProfileRecording;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

impl State {
    /// `Logs` recordings: read the audit records that arrived, attribute them to the wanted
    /// containers, and report the containers that ended.
    pub(super) async fn turn_logs(
        &mut self,
        recordings: &[Arc<ProfileRecording>],
        wanted: &HashMap<String, Target>,
        known: &HashMap<String, bool>,
        now: k8s_openapi::jiff::Timestamp,
    ) {
        let mut started: Vec<(String, Target)> = Vec::new();
        let logs_active = any_active(recordings, crds::Recorder::Logs, now);
        if logs_active && self.audit.is_none() {
            match syscall_recorder::audit::AuditReader::start(
                1 << 16,
                syscall_recorder::audit::proc_resolver(),
                syscall_recorder::audit::is_logged_allow,
            ) {
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
                if a.record.code != syscall_recorder::audit::SECCOMP_RET_LOG {
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
                let s = self.logged.entry(id.clone()).or_insert_with(|| {
                    tracing::info!(recording = %t.recording, pod = %t.pod, container = %t.container, "recording container from audit records");
                    started.push((id, t.clone()));
                    LogSession {
                        target: t.clone(),
                        names: Default::default(),
                        ended: false,
                    }
                });
                s.names.extend(early.into_iter().flatten());
                s.names.extend(a.record.name());
            }
            self.metrics.observe_audit(
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
            started.push((id.clone(), t.clone()));
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
        let reporter = self.reporter.clone();
        for (id, t) in &started {
            reporter.clone().announce(t, id).await;
        }
        for id in ended {
            let (target, names) = {
                let s = &self.logged[&id];
                (s.target.clone(), s.names.clone())
            };
            // The audit records carry no arguments: no argument classes (see the README).
            if self.settle(&target, &id, names, Vec::new()).await {
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
