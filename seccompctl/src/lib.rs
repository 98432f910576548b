//! `seccompctl`, the local CLI: record, run, validate, convert, merge, diff, install, push and
//! pull seccomp profiles on one machine, with no cluster. The binary is `src/main.rs` (one module per
//! subcommand under `src/commands/`); the library holds what tests drive directly: [`local`]
//! (recording, reading profiles, enforcing), [`input`] (files, standard input, multi-document
//! YAML and `List`s) and [`migrate`] (ProfileBindings and ProfileRecordings, this project's and
//! the Security Profiles Operator's).

pub mod input;
pub mod local;
pub mod migrate;
