//! The seccomp-operator node agent: thin Kubernetes loops around the installer core
//! (`profile-installer`) and the kernel-facing recorder (`syscall-recorder`).
//!
//! - [`install_loop`]: watch every SeccompProfile, sync the files, report the node's
//!   SeccompNodeStatus; [`heartbeat`]: the agent's Lease; [`kubelet`]: the node's kubelet's
//!   `seccompDefault`, reported in the SeccompNodeStatus;
//! - [`recording`]: record the containers ProfileRecordings select and report what each
//!   recorded into the node's RecordingReports (never SeccompProfiles);
//! - [`denials`]: report syscalls refused under operator profiles (SyscallDenied Events), and
//!   those their enforced form would refuse under complain mode (SyscallWouldBeDenied);
//! - [`unplaced`]: pods no node runs yet; [`metrics`], [`server`]: /metrics, /healthz, /readyz;
//!   [`health`]: what readiness means.

pub mod denials;
pub mod health;
pub mod heartbeat;
pub mod install_loop;
pub mod kubelet;
pub mod metrics;
pub mod recording;
pub mod server;
pub mod unplaced;

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

/// `e` and every error under it, `outer: inner: ...` ([`seccomp_profile::error::chain`]).
pub use seccomp_profile::error::chain as error_chain;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_chain_names_every_cause_once() {
        let json = serde_json::from_str::<serde_json::Value>("<html>").unwrap_err();
        let e = kubelet::KubeletError::Configz {
            url: "https://10.0.0.1:10250".into(),
            source: kubelet::ConfigzError::NotJson(json),
        };
        assert_eq!(e.to_string(), "GET https://10.0.0.1:10250/configz");
        assert_eq!(
            error_chain(&e),
            "GET https://10.0.0.1:10250/configz: the answer is not JSON: expected value at line 1 column 1"
        );
        // A cause already printed by the error above it is not printed again.
        let io = std::io::Error::other(kubelet::ConfigzError::NoKubeletConfig);
        assert_eq!(
            error_chain(&io),
            "the answer has no \"kubeletconfig\" object"
        );
    }
}
