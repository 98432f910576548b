//! The seccomp-operator node agent: the profile installer, the eBPF syscall recorder, and the
//! libseccomp boundary they share with the `seccompctl` CLI.

pub mod audit;
pub mod heartbeat;
pub mod installer;
pub mod local;
pub mod metrics;
pub mod recorder;
pub mod recording;
pub use seccomp_filter as seccomp;
pub mod server;
