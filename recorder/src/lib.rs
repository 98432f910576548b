//! The eBPF syscall recorder: loads `bpf/recorder.bpf.c` with aya, attaches it to the raw
//! `sys_enter` tracepoint and `sched_process_exec`, and reads per-mount-namespace syscall sets.
//!
//! See the C source for the kernel side. The userspace contract:
//! - [`Recorder::watch`] a namespace before (or as soon as) its processes run: its syscalls are
//!   kept in a map that never evicts, until [`Recorder::take`];
//! - while [`Recorder::arm`]ed, namespaces nobody watched yet are recorded into a bounded LRU map
//!   from their first syscall; `watch` moves what was recorded so far, [`Recorder::ignore`] stops
//!   recording a namespace that is not wanted;
//! - bits are never cleared while a namespace is watched: reading is a copy, and `take`
//!   (copy, then delete) is for a namespace whose processes are gone.
//!
//! Kernel-facing only (no Kubernetes): the eBPF program and its loader, the seccomp audit
//! reader and procfs lookups, used by the node agent and by `seccompctl`.
//!
//! - [`layout`]: the C structs' mirrors, checked at compile time;
//! - [`record`]: decoding a namespace's record into syscall names;
//! - [`pins`]: bpffs pins that let a restarted agent take over;
//! - [`loader`]: [`Recorder`], loading, attaching and map operations;
//! - [`audit`]: the audit netlink reader (`SCMP_ACT_LOG` records); [`procfs`]: /proc lookups.

pub mod audit;
pub mod layout;
pub mod loader;
pub mod pins;
pub mod procfs;
pub mod record;

pub use layout::NsRecord;
pub use loader::{load_empty_program, preflight, Recorder};
pub use pins::{pin_dir, remove_stale_pins};
pub use record::Phase;

use std::os::unix::fs::MetadataExt;

/// Why the recorder could not start or act.
#[derive(Debug, thiserror::Error)]
pub enum RecorderError {
    /// Not root (CAP_BPF/CAP_PERFMON/CAP_SYS_ADMIN are needed).
    #[error("the eBPF recorder needs root (CAP_BPF, CAP_PERFMON and CAP_SYS_ADMIN); run as root")]
    NotRoot,
    /// The kernel has no BTF.
    #[error("this kernel has no BTF (/sys/kernel/btf/vmlinux is missing); the recorder needs a kernel built with CONFIG_DEBUG_INFO_BTF=y")]
    NoBtf,
    /// Loading or attaching failed.
    #[error("loading the eBPF recorder failed ({step})")]
    Load {
        /// The step that failed.
        step: String,
        /// Why.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A map operation failed.
    #[error("eBPF map `{map}`")]
    Map {
        /// The map.
        map: &'static str,
        /// What failed.
        #[source]
        source: aya::maps::MapError,
    },
    /// A note too large for the notes map.
    #[error("a note of {0} bytes does not fit the notes map (at most {max})", max = layout::NOTE_LEN)]
    NoteTooLarge(usize),
}

/// An error of loading step `step`.
pub(crate) fn load_err<E>(step: impl Into<String>) -> impl FnOnce(E) -> RecorderError
where
    E: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let step = step.into();
    move |e| RecorderError::Load {
        step,
        source: e.into(),
    }
}

pub(crate) fn map_err(map: &'static str) -> impl Fn(aya::maps::MapError) -> RecorderError {
    move |source| RecorderError::Map { map, source }
}

/// The inode of a process's mount namespace (`/proc/<pid>/ns/mnt`).
pub fn mntns_of(pid: &str) -> std::io::Result<u64> {
    Ok(std::fs::metadata(format!("/proc/{pid}/ns/mnt"))?.ino())
}
