//! Prometheus metrics of the node agent.

use profile_installer::SyncReport;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::Registry;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A counter fed from a running total kept elsewhere (a kernel map, the audit reader) that
/// starts again from zero when its source restarts: the counter only ever grows.
#[derive(Default)]
struct FollowedTotal {
    counter: Counter,
    last: AtomicU64,
}

impl FollowedTotal {
    fn observe(&self, total: u64) {
        let last = self.last.swap(total, Ordering::Relaxed);
        // A total below the last one means the source restarted from zero.
        self.counter
            .inc_by(if total >= last { total - last } else { total });
    }
}

/// The agent's metrics and their registry.
pub struct Metrics {
    registry: Mutex<Registry>,
    installed: Gauge,
    install_errors: Counter,
    writes: Counter,
    removals: Counter,
    apply_duration: Histogram,
    recording_containers: Gauge,
    recorder_loaded: Gauge,
    pending_namespaces: Gauge,
    recorded_profiles: Counter,
    recorded_syscalls: Counter,
    missed_containers: Counter,
    argument_overflows: Counter,
    repairs: Counter,
    dropped_namespaces: FollowedTotal,
    audit_records: FollowedTotal,
    audit_lost: FollowedTotal,
    audit_unattributed: Counter,
    last_sync: Gauge,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A fresh registry with every metric registered.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("seccomp_agent");
        registry.register(
            "build",
            "The agent's version",
            Info::new(vec![("version", env!("CARGO_PKG_VERSION"))]),
        );
        let last_sync = Gauge::default();
        registry.register(
            "last_sync_timestamp_seconds",
            "When the agent last finished applying the profiles it watches to disk (seconds since the epoch)",
            last_sync.clone(),
        );
        let installed = Gauge::default();
        let install_errors = Counter::default();
        let writes = Counter::default();
        let removals = Counter::default();
        let apply_duration = Histogram::new(exponential_buckets(0.0005, 2.0, 16));
        registry.register(
            "installed_profiles",
            "Profiles installed on this node with their current content",
            installed.clone(),
        );
        registry.register(
            "install_errors",
            "Failed profile writes and removals",
            install_errors.clone(),
        );
        registry.register("profile_writes", "Profile files written", writes.clone());
        registry.register(
            "profile_removals",
            "Profile files removed",
            removals.clone(),
        );
        registry.register(
            "apply_duration_seconds",
            "Time to apply one snapshot of profiles to disk",
            apply_duration.clone(),
        );
        let recording_containers = Gauge::default();
        let pending_namespaces = Gauge::default();
        let recorded_profiles = Counter::default();
        let missed_containers = Counter::default();
        registry.register(
            "recording_missed_containers",
            "Selected containers found running that the recorder never met from their start (they started before it was armed, or their namespace was lost): not recorded",
            missed_containers.clone(),
        );
        let recorded_syscalls = Counter::default();
        let dropped_namespaces = FollowedTotal::default();
        let repairs = Counter::default();
        registry.register(
            "profile_repairs",
            "Profile files found changed or removed on the node (not by the agent) and restored",
            repairs.clone(),
        );
        let argument_overflows = Counter::default();
        registry.register(
            "recorded_argument_overflows",
            "Tracked syscalls of recorded containers whose argument classes were not captured (more distinct values than kept, a compat ABI, an unreadable clone3): allowed with any arguments",
            argument_overflows.clone(),
        );
        registry.register(
            "recording_containers",
            "Containers being recorded",
            recording_containers.clone(),
        );
        let recorder_loaded = Gauge::default();
        registry.register(
            "recorder_loaded",
            "1 while the eBPF recorder is loaded on this node (a Bpf recording selects a pod on or bound for it)",
            recorder_loaded.clone(),
        );
        registry.register(
            "recorder_pending_namespaces",
            "Mount namespaces recorded but not yet matched to a container (LRU map occupancy)",
            pending_namespaces.clone(),
        );
        registry.register(
            "recorded_profiles",
            "Recorded profiles written",
            recorded_profiles.clone(),
        );
        registry.register(
            "recorded_syscalls",
            "Distinct syscalls in the recorded profiles written",
            recorded_syscalls.clone(),
        );
        registry.register(
            "recorder_dropped_namespaces",
            "Namespaces the kernel could not add to the full pending map",
            dropped_namespaces.counter.clone(),
        );
        let audit_records = FollowedTotal::default();
        let audit_lost = FollowedTotal::default();
        let audit_unattributed = Counter::default();
        registry.register(
            "audit_records",
            "Seccomp audit records received (Logs recordings)",
            audit_records.counter.clone(),
        );
        registry.register(
            "audit_lost",
            "Seccomp audit records lost (socket overruns and a full queue)",
            audit_lost.counter.clone(),
        );
        registry.register(
            "audit_unattributed",
            "Seccomp audit records of a Logs recording's filter whose process was gone before its container was found",
            audit_unattributed.clone(),
        );
        Metrics {
            audit_records,
            audit_lost,
            audit_unattributed,
            recording_containers,
            recorder_loaded,
            pending_namespaces,
            recorded_profiles,
            recorded_syscalls,
            missed_containers,
            argument_overflows,
            repairs,
            dropped_namespaces,
            last_sync,
            registry: Mutex::new(registry),
            installed,
            install_errors,
            writes,
            removals,
            apply_duration,
        }
    }

    /// Profiles installed with their current content, as of the last sync.
    pub fn installed(&self) -> i64 {
        self.installed.get()
    }

    /// Record one installer sync.
    pub fn observe_sync(&self, r: &SyncReport, installed: usize, took: Duration) {
        self.installed.set(installed as i64);
        self.install_errors.inc_by(r.failed as u64);
        self.writes.inc_by(r.written as u64);
        self.removals.inc_by(r.removed as u64);
        self.apply_duration.observe(took.as_secs_f64());
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        self.last_sync.set(now.as_secs() as i64);
    }

    /// Count selected containers the recorder missed.
    pub fn missed_containers(&self, n: u64) {
        if n > 0 {
            self.missed_containers.inc_by(n);
        }
    }

    /// Record the recorder's state.
    pub fn observe_recorder(&self, recording: usize, pending: usize, dropped: u64) {
        self.recording_containers.set(recording as i64);
        self.pending_namespaces.set(pending as i64);
        self.dropped_namespaces.observe(dropped);
    }

    /// Record whether the eBPF recorder is loaded.
    pub fn recorder_loaded(&self, loaded: bool) {
        self.recorder_loaded.set(loaded as i64);
    }

    /// Record the audit reader's running totals, and records that could not be attributed.
    pub fn observe_audit(&self, received: u64, lost: u64, unattributed: u64) {
        self.audit_records.observe(received);
        self.audit_lost.observe(lost);
        self.audit_unattributed.inc_by(unattributed);
    }

    /// Count profile files restored after a change on the node.
    pub fn repaired(&self, n: usize) {
        self.repairs.inc_by(n as u64);
    }

    /// Record a written recorded profile.
    pub fn recorded(&self, syscalls: usize, argument_overflows: usize) {
        self.recorded_profiles.inc();
        self.recorded_syscalls.inc_by(syscalls as u64);
        self.argument_overflows.inc_by(argument_overflows as u64);
    }

    /// The registry, for other parts of the agent to register their own metrics.
    pub fn with_registry<T>(&self, f: impl FnOnce(&mut Registry) -> T) -> T {
        f(&mut self.registry.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let reg = self.registry.lock().unwrap_or_else(|e| e.into_inner());
        let _ = encode(&mut out, &reg);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(text: &str, name: &str) -> Option<f64> {
        text.lines()
            .find(|l| l.split([' ', '{']).next() == Some(name))
            .and_then(|l| l.rsplit(' ').next()?.parse().ok())
    }

    #[test]
    fn running_totals_become_counters_that_survive_a_restart_of_their_source() {
        let m = Metrics::new();
        m.observe_audit(5, 1, 0);
        m.observe_audit(9, 1, 2);
        // The reader started again (the recording ended, a new one began).
        m.observe_audit(3, 0, 0);
        let text = m.render();
        assert_eq!(
            value(&text, "seccomp_agent_audit_records_total"),
            Some(12.0)
        );
        assert_eq!(value(&text, "seccomp_agent_audit_lost_total"), Some(1.0));
        assert_eq!(
            value(&text, "seccomp_agent_audit_unattributed_total"),
            Some(2.0)
        );
        assert!(
            text.contains("# TYPE seccomp_agent_audit_records counter"),
            "{text}"
        );
        m.observe_recorder(1, 0, 4);
        m.observe_recorder(0, 0, 0);
        m.observe_recorder(1, 0, 2);
        let text = m.render();
        assert_eq!(
            value(&text, "seccomp_agent_recorder_dropped_namespaces_total"),
            Some(6.0)
        );
    }

    #[test]
    fn build_info_and_the_last_sync_time_are_exported() {
        let m = Metrics::new();
        assert_eq!(
            value(&m.render(), "seccomp_agent_last_sync_timestamp_seconds"),
            Some(0.0)
        );
        m.observe_sync(&SyncReport::default(), 0, Duration::from_millis(1));
        let text = m.render();
        assert!(value(&text, "seccomp_agent_last_sync_timestamp_seconds").unwrap() > 1.7e9);
        let version = format!(
            "seccomp_agent_build_info{{version=\"{}\"}} 1",
            env!("CARGO_PKG_VERSION")
        );
        assert!(text.contains(&version), "{text}");
    }
}
