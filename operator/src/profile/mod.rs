//! The `SeccompProfile` controller: its reconcile, the status it writes from the nodes'
//! reports and the writes that carry it, the `RuntimeDefault` base, and the denials reported
//! against a profile.

pub mod artifacts;
pub mod complain;
pub mod controller;
pub mod denials;
pub mod dependents;
pub mod hold;
pub mod runtime_default;
pub mod status;
pub mod versions;
pub mod writes;
