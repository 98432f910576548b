//! Pods: the seccomp profiles each uses (index and watch), their confinement report, and
//! lifting the scheduling gate once their profiles are installed.

pub mod confinement;
pub mod index;
pub mod references;
pub mod report;
pub mod ungate;
pub mod watch;
