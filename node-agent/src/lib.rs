//! The seccomp-operator node agent: the profile installer, the eBPF syscall recorder, and the
//! libseccomp boundary they share with the `seccompctl` CLI.

pub mod audit;
pub mod heartbeat;
pub mod installer;
pub mod local;
pub mod metrics;
pub mod recorder;
pub mod recording;
pub mod unplaced;
pub use seccomp_filter as seccomp;
pub mod server;

/// Every watch of the agent asks the API server to end it after this long (seconds), and the
/// client gives up on a connection silent for [`READ_TIMEOUT`]: a watch on a connection that
/// died without a FIN (a node's network restarted, a NAT entry dropped) is replaced within a
/// minute instead of the client default of five, so the agent never works from a stale view
/// for long. Re-watching resumes from the last resourceVersion: no relist.
pub const WATCH_TIMEOUT_SECS: u32 = 45;
/// See [`WATCH_TIMEOUT_SECS`].
pub const READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// The agent's watch configuration.
pub fn watch_config() -> kube::runtime::watcher::Config {
    kube::runtime::watcher::Config::default().timeout(WATCH_TIMEOUT_SECS)
}
