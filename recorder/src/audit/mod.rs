//! The kernel's seccomp audit records (`type=1326`), read from the audit netlink socket's
//! read-only multicast group (`AUDIT_NLGRP_READLOG`).
//!
//! Why netlink and not `/dev/kmsg`: without auditd the kernel also prints each record, but
//! through printk's rate limit (10 per 5 s by default), so most are dropped there. The
//! multicast group gets every record, needs only CAP_AUDIT_READ, and coexists with auditd
//! (which owns the unicast connection). When the kernel's queue is full, a process making
//! logged syscalls waits for it to drain rather than losing records; what can still be lost
//! is a record our socket buffer has no room for — the kernel says so (ENOBUFS) and the
//! reader counts it. The kernel sends the records to listeners in the initial network
//! namespace only: the agent runs with the host's network.
//!
//! - `parse`: a record's text to a [`SeccompRecord`] (pure);
//! - `attribution`: a record's process to its container, through `/proc` and the kernel's
//!   fork and exec events;
//! - `reader`: the netlink socket and the thread reading it ([`AuditReader`]).

mod attribution;
mod parse;
mod reader;

pub use attribution::{proc_resolver, Resolver};
pub use parse::{
    is_denial, is_logged_allow, parse_record, Accept, SeccompRecord, AUDIT_SECCOMP,
    SECCOMP_RET_ACTION_FULL, SECCOMP_RET_ALLOW, SECCOMP_RET_LOG,
};
pub use reader::{Attributed, AuditCounters, AuditReader};

/// Why the audit socket could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// A socket operation failed.
    #[error("audit netlink socket: {what}: {err} (needs CAP_AUDIT_READ)")]
    Socket {
        /// The operation.
        what: &'static str,
        /// The error.
        err: std::io::Error,
    },
}
