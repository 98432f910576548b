//! `seccompctl`, the local CLI: record, run, validate, convert, merge, diff and install seccomp
//! profiles on one machine, with no cluster. The binary is `src/main.rs`; [`local`] holds what
//! `record` and `run` do, so that tests drive it directly.

pub mod local;
