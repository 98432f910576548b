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

use netlink_packet_core::NetlinkBuffer;
use netlink_sys::{protocols::NETLINK_AUDIT, Socket, SocketAddr};
use seccomp_profile::{Action, Arch};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError};
use std::sync::Arc;

/// `AUDIT_SECCOMP`.
pub const AUDIT_SECCOMP: u16 = 1326;
/// `SECCOMP_RET_LOG`: the action of a logged, allowed syscall.
pub const SECCOMP_RET_LOG: u32 = 0x7ffc_0000;
/// `SECCOMP_RET_ALLOW`.
pub const SECCOMP_RET_ALLOW: u32 = 0x7fff_0000;
/// `SECCOMP_RET_ACTION_FULL`: the action part of a filter's result (the rest is its data,
/// such as the errno).
pub const SECCOMP_RET_ACTION_FULL: u32 = 0xffff_0000;

/// Which records a reader passes on, by the filter's result (`code`).
pub type Accept = fn(u32) -> bool;

/// A logged, allowed syscall (`SCMP_ACT_LOG`): what `Logs` recordings read.
pub fn is_logged_allow(code: u32) -> bool {
    code == SECCOMP_RET_LOG
}

/// A syscall the filter refused: any result but allow and log (errno, trap, kill, trace,
/// user notification).
pub fn is_denial(code: u32) -> bool {
    !matches!(
        code & SECCOMP_RET_ACTION_FULL,
        SECCOMP_RET_LOG | SECCOMP_RET_ALLOW
    )
}

/// `AUDIT_NLGRP_READLOG`.
const AUDIT_NLGRP_READLOG: u32 = 1;
const X32_SYSCALL_BIT: i32 = 0x4000_0000;

/// One seccomp audit record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SeccompRecord {
    /// The process (in the initial PID namespace).
    pub pid: u32,
    /// The audit architecture (`AUDIT_ARCH_*`).
    pub arch: u32,
    /// The syscall number as the filter saw it.
    pub syscall: i32,
    /// The filter's action (`SECCOMP_RET_*`).
    pub code: u32,
}

impl SeccompRecord {
    /// The syscall's architecture and number in the form libseccomp resolves (x32 numbers
    /// keep their marker bit under [`Arch::X32`]).
    pub fn arch_and_number(&self) -> Option<(Arch, i32)> {
        let arch = match self.arch {
            0xc000_003e if self.syscall & X32_SYSCALL_BIT != 0 => Arch::X32,
            0xc000_003e => Arch::X86_64,
            0x4000_0003 => Arch::X86,
            0xc000_00b7 => Arch::Aarch64,
            0x4000_0028 => Arch::Arm,
            0xc000_00f3 => Arch::Riscv64,
            0x8000_0016 => Arch::S390X,
            0x8000_0015 => Arch::Ppc64,
            0xc000_0015 => Arch::Ppc64Le,
            _ => return None,
        };
        Some((arch, self.syscall))
    }

    /// The profile action the filter's result comes from (`SECCOMP_RET_*` without its data).
    pub fn action(&self) -> Option<Action> {
        Some(match self.code & SECCOMP_RET_ACTION_FULL {
            0x8000_0000 => Action::KillProcess,
            0x0000_0000 => Action::KillThread,
            0x0003_0000 => Action::Trap,
            0x0005_0000 => Action::Errno,
            0x7fc0_0000 => Action::Notify,
            0x7ff0_0000 => Action::Trace,
            SECCOMP_RET_LOG => Action::Log,
            SECCOMP_RET_ALLOW => Action::Allow,
            _ => return None,
        })
    }

    /// The syscall's name (libseccomp), if known.
    pub fn name(&self) -> Option<String> {
        let (arch, nr) = self.arch_and_number()?;
        seccomp_filter::syscall_name(arch, nr)
    }
}

/// Parse the text of a `type=1326` record: `audit(<time>:<serial>): auid=... pid=N ...
/// arch=c000003e syscall=N compat=0 ip=0x... code=0x7ffc0000`.
pub fn parse_record(text: &str) -> Option<SeccompRecord> {
    let mut pid = None;
    let mut arch = None;
    let mut syscall = None;
    let mut code = None;
    for field in text.split_whitespace() {
        let Some((k, v)) = field.split_once('=') else {
            continue;
        };
        match k {
            "pid" => pid = v.parse().ok(),
            "arch" => arch = u32::from_str_radix(v, 16).ok(),
            "syscall" => syscall = v.parse().ok(),
            "code" => code = u32::from_str_radix(v.trim_start_matches("0x"), 16).ok(),
            _ => {}
        }
    }
    Some(SeccompRecord {
        pid: pid?,
        arch: arch?,
        syscall: syscall?,
        code: code?,
    })
}

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

/// Counters of a running reader.
#[derive(Debug, Default)]
pub struct AuditCounters {
    /// Records received that the reader's filter accepts.
    pub received: AtomicU64,
    /// Records lost: socket overruns the kernel reported (ENOBUFS; the number of records
    /// in each overrun is unknown, each counts as one) and records the consumer had no room
    /// for.
    pub lost: AtomicU64,
}

/// A record with the container its process belongs to, found as soon as it arrives (the
/// process may be gone a moment later).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attributed {
    /// The record.
    pub record: SeccompRecord,
    /// The container ID, when the process was found in one.
    pub container: Option<String>,
}

/// Finds a process's container; runs on the reader threads.
pub type Resolver = Arc<dyn Fn(u32) -> Option<String> + Send + Sync>;

/// A container resolver through `/proc/<pid>/cgroup` (host PIDs: needs the host's PID
/// namespace).
pub fn proc_resolver() -> Resolver {
    Arc::new(|pid| {
        let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
        crate::procfs::container_id_from_cgroup(&text)
    })
}

/// Process → container, from the kernel's process events connector: a child gets the
/// container of its parent at fork time, a process that execs the container it is in then.
/// A short-lived child (`ls`, `cat`) is often reaped before its audit records arrive, and so
/// is a process its filter killed, and their `/proc` entries with them; the parent forking,
/// or the process execing, was alive to be asked. An entry stays while its process lives and
/// [`FORK_TTL`] after it exits.
#[derive(Default)]
struct Forks {
    children: std::sync::Mutex<std::collections::HashMap<u32, ForkEntry>>,
}

/// How long a process's container is remembered after it exits.
const FORK_TTL: std::time::Duration = std::time::Duration::from_secs(10);
/// Entries past which the exited ones, then the oldest, are forgotten.
const MAX_FORKS: usize = 65536;

struct ForkEntry {
    container: String,
    /// When it was noted, or when its process exited.
    at: std::time::Instant,
    exited: bool,
}

impl Forks {
    fn get(&self, pid: u32) -> Option<String> {
        let map = self.children.lock().unwrap_or_else(|e| e.into_inner());
        map.get(&pid).map(|e| e.container.clone())
    }

    /// `pid` now runs in `container` (None: in no container; a stale entry for a reused PID
    /// goes).
    fn note(&self, pid: u32, container: Option<String>, now: std::time::Instant) {
        let mut map = self.children.lock().unwrap_or_else(|e| e.into_inner());
        let Some(container) = container else {
            map.remove(&pid);
            return;
        };
        if map.len() >= MAX_FORKS {
            map.retain(|_, e| !e.exited || now.duration_since(e.at) < FORK_TTL);
            if map.len() >= MAX_FORKS {
                // Processes whose exit was missed (the connector overran): the oldest go.
                map.retain(|_, e| now.duration_since(e.at) < FORK_TTL);
            }
        }
        map.insert(
            pid,
            ForkEntry {
                container,
                at: now,
                exited: false,
            },
        );
    }

    fn exited(&self, pid: u32, now: std::time::Instant) {
        let mut map = self.children.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(e) = map.get_mut(&pid) {
            e.exited = true;
            e.at = now;
        }
    }
}

/// A process event, as far as attribution cares (threads are left out).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ProcessEvent {
    Fork { parent: u32, child: u32 },
    Exec { pid: u32 },
    Exit { pid: u32 },
}

impl ProcessEvent {
    /// The event of a whole process (a thread's fork, exec or exit is none).
    fn of(ev: proc_connector::ProcEvent) -> Option<Self> {
        use proc_connector::ProcEvent as E;
        match ev {
            E::Fork {
                parent_tgid,
                child_tgid,
                child_pid,
                ..
            } if child_pid == child_tgid => Some(Self::Fork {
                parent: parent_tgid,
                child: child_tgid,
            }),
            E::Exec { pid, tgid, .. } if pid == tgid => Some(Self::Exec { pid: tgid }),
            E::Exit { pid, tgid, .. } if pid == tgid => Some(Self::Exit { pid: tgid }),
            _ => None,
        }
    }
}

/// Turns process events into [`Forks`] entries.
///
/// The events arrive after the fact, and a short-lived process is often gone by the time
/// its exec is read: the resolver then finds nothing, and what its fork said stands (an
/// exec does not move a process to another cgroup). Forgetting it there was a race that
/// left such a process's records unattributed.
struct ForkTracker {
    forks: Arc<Forks>,
    resolve: Resolver,
    /// Parents asked recently: a shell forks many children in a row.
    parents: std::collections::HashMap<u32, (Option<String>, std::time::Instant)>,
}

/// How long a parent's container is reused without asking again.
const PARENT_TTL: std::time::Duration = std::time::Duration::from_secs(10);

impl ForkTracker {
    fn new(forks: Arc<Forks>, resolve: Resolver) -> Self {
        ForkTracker {
            forks,
            resolve,
            parents: Default::default(),
        }
    }

    fn handle(&mut self, ev: ProcessEvent, now: std::time::Instant) {
        match ev {
            ProcessEvent::Exec { pid } => {
                // Alive: its cgroup says. Gone already: what its fork noted stands.
                if let Some(id) = (self.resolve)(pid) {
                    self.forks.note(pid, Some(id), now);
                }
                self.parents.remove(&pid);
            }
            ProcessEvent::Exit { pid } => {
                self.forks.exited(pid, now);
                // Its PID may come back as another process.
                self.parents.remove(&pid);
            }
            ProcessEvent::Fork { parent, child } => {
                self.parents.remove(&child);
                let id = match self.parents.get(&parent) {
                    Some((id, at)) if now.duration_since(*at) < PARENT_TTL => id.clone(),
                    _ => {
                        // A parent that forked and exited at once is found through its own
                        // fork.
                        let id = (self.resolve)(parent).or_else(|| self.forks.get(parent));
                        if self.parents.len() > 8192 {
                            self.parents
                                .retain(|_, (_, at)| now.duration_since(*at) < PARENT_TTL);
                        }
                        self.parents.insert(parent, (id.clone(), now));
                        id
                    }
                };
                self.forks.note(child, id, now);
            }
        }
    }
}

/// Follow forks, execs and exits until `stop`: each child of a process in a container, and
/// each process that execs in one, is noted with that container. Needs CAP_NET_ADMIN and the
/// host's network namespace.
fn track_forks(
    forks: Arc<Forks>,
    resolve: Resolver,
    stop: Arc<std::sync::atomic::AtomicBool>,
) -> Result<(), AuditError> {
    let conn = proc_connector::ProcConnector::new().map_err(|e| AuditError::Socket {
        what: "subscribing to process events (proc connector)",
        err: std::io::Error::other(e),
    })?;
    let _ = conn.set_recv_buf_size(4 << 20);
    let mut tracker = ForkTracker::new(forks, resolve);
    std::thread::Builder::new()
        .name("fork-tracker".into())
        .spawn(move || {
            let mut buf = vec![0u8; 8192];
            while !stop.load(Ordering::Relaxed) {
                let ev = match conn.recv_timeout(&mut buf, std::time::Duration::from_millis(200)) {
                    Ok(Some(ev)) => ev,
                    Ok(None) | Err(_) => continue,
                };
                if let Some(ev) = ProcessEvent::of(ev) {
                    tracker.handle(ev, std::time::Instant::now());
                }
            }
        })
        .map_err(|err| AuditError::Socket {
            what: "spawning the fork tracker",
            err,
        })?;
    Ok(())
}

/// A thread reading seccomp records into a bounded channel.
pub struct AuditReader {
    /// Records, in the order the kernel sent them.
    pub records: Receiver<Attributed>,
    /// What was received and lost.
    pub counters: Arc<AuditCounters>,
    stop: Arc<std::sync::atomic::AtomicBool>,
}

impl AuditReader {
    /// Join the read-only multicast group and start reading the records `accept` takes.
    /// `capacity` bounds the records waiting for the consumer; `resolve` finds each record's
    /// container.
    pub fn start(capacity: usize, resolve: Resolver, accept: Accept) -> Result<Self, AuditError> {
        let err = |what| move |err| AuditError::Socket { what, err };
        let mut socket = Socket::new(NETLINK_AUDIT).map_err(err("socket"))?;
        socket.bind(&SocketAddr::new(0, 0)).map_err(err("bind"))?;
        socket
            .add_membership(AUDIT_NLGRP_READLOG)
            .map_err(err("joining AUDIT_NLGRP_READLOG"))?;
        set_receive_buffer(&socket, 8 << 20);
        set_receive_timeout(&socket, std::time::Duration::from_millis(20));
        let (tx, rx) = std::sync::mpsc::sync_channel(capacity);
        let counters = Arc::new(AuditCounters::default());
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let forks = Arc::new(Forks::default());
        if let Err(e) = track_forks(forks.clone(), resolve.clone(), stop.clone()) {
            tracing::warn!(error = %e, "short-lived processes may go unattributed");
        }
        let (c, s) = (counters.clone(), stop.clone());
        std::thread::Builder::new()
            .name("audit-reader".into())
            .spawn(move || read_loop(socket, tx, c, s, resolve, forks, accept))
            .map_err(err("spawning the reader thread"))?;
        Ok(AuditReader {
            records: rx,
            counters,
            stop,
        })
    }

    /// Records lost so far.
    pub fn lost(&self) -> u64 {
        self.counters.lost.load(Ordering::Relaxed)
    }
}

impl Drop for AuditReader {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn set_receive_buffer(socket: &Socket, bytes: usize) {
    use nix::sys::socket::{setsockopt, sockopt};
    // RCVBUFFORCE (CAP_NET_ADMIN) goes past rmem_max; fall back to the capped one.
    if setsockopt(socket, sockopt::RcvBufForce, &bytes).is_err() {
        let _ = setsockopt(socket, sockopt::RcvBuf, &bytes);
    }
}

fn set_receive_timeout(socket: &Socket, d: std::time::Duration) {
    use nix::sys::socket::{setsockopt, sockopt};
    use nix::sys::time::{TimeVal, TimeValLike};
    let _ = setsockopt(
        socket,
        sockopt::ReceiveTimeout,
        &TimeVal::microseconds(d.as_micros() as i64),
    );
}

fn read_loop(
    socket: Socket,
    tx: SyncSender<Attributed>,
    counters: Arc<AuditCounters>,
    stop: Arc<std::sync::atomic::AtomicBool>,
    resolve: Resolver,
    forks: Arc<Forks>,
    accept: Accept,
) {
    let mut buf = vec![0u8; 16 << 10];
    // PID → container, briefly: a process makes many logged calls in a row, and a PID is
    // reused only after its process is gone.
    let mut cache: std::collections::HashMap<u32, (String, std::time::Instant)> =
        Default::default();
    let ttl = std::time::Duration::from_secs(2);
    // Records whose process was gone: asked again of the fork tracker (whose event for that
    // child may still be on its way), then sent unattributed.
    let mut deferred: std::collections::VecDeque<(SeccompRecord, std::time::Instant)> =
        Default::default();
    let send = |a: Attributed| match tx.try_send(a) {
        Ok(()) => true,
        Err(TrySendError::Full(_)) => {
            counters.lost.fetch_add(1, Ordering::Relaxed);
            true
        }
        Err(TrySendError::Disconnected(_)) => false,
    };
    while !stop.load(Ordering::Relaxed) {
        let now = std::time::Instant::now();
        while let Some((r, at)) = deferred.front() {
            let late = now.duration_since(*at);
            if late < std::time::Duration::from_millis(30) {
                break;
            }
            // The fork tracker's answer, or the process's own if it is still alive (its
            // records may have arrived before the resolver could place it).
            let container = forks.get(r.pid).or_else(|| resolve(r.pid));
            if container.is_none() && late < std::time::Duration::from_millis(500) {
                break;
            }
            let (record, _) = deferred.pop_front().expect("front exists");
            if let Some(id) = &container {
                cache.insert(record.pid, (id.clone(), now));
            }
            if !send(Attributed { record, container }) {
                return;
            }
        }
        let n = match socket.recv(&mut &mut buf[..], 0) {
            Ok(n) => n,
            Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => {
                counters.lost.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock
                        | std::io::ErrorKind::TimedOut
                        | std::io::ErrorKind::Interrupted
                ) =>
            {
                continue;
            }
            Err(e) => {
                tracing::error!(error = %e, "reading the audit socket failed; audit recording stops");
                return;
            }
        };
        let mut offset = 0;
        while offset < n {
            let Ok(msg) = NetlinkBuffer::new_checked(&buf[offset..n]) else {
                break;
            };
            let len = (msg.length() as usize).max(16);
            if msg.message_type() == AUDIT_SECCOMP {
                let text = String::from_utf8_lossy(msg.payload());
                // Each consumer takes its own kind: Logs recordings the SCMP_ACT_LOG records,
                // the denial reporter the refusals.
                if let Some(r) = parse_record(&text).filter(|r| accept(r.code)) {
                    counters.received.fetch_add(1, Ordering::Relaxed);
                    let now = std::time::Instant::now();
                    let container = match cache.get(&r.pid) {
                        Some((c, at)) if now.duration_since(*at) < ttl => Some(c.clone()),
                        _ => resolve(r.pid).or_else(|| forks.get(r.pid)),
                    };
                    match container {
                        Some(c) => {
                            if cache.len() > 4096 {
                                cache.retain(|_, (_, at)| now.duration_since(*at) < ttl);
                            }
                            cache.insert(r.pid, (c.clone(), now));
                            if !send(Attributed {
                                record: r,
                                container: Some(c),
                            }) {
                                return;
                            }
                        }
                        // Bounded like the channel: past it, sent unattributed at once.
                        None if deferred.len() < 65536 => deferred.push_back((r, now)),
                        None => {
                            if !send(Attributed {
                                record: r,
                                container: None,
                            }) {
                                return;
                            }
                        }
                    }
                }
            }
            offset += (len + 3) & !3;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_kernel_records() {
        // As printed by 6.18 for a runc container under an SCMP_ACT_LOG profile.
        let r = parse_record("audit(1795365805.696:9270): auid=4294967295 uid=0 gid=0 ses=4294967295 pid=32767 comm=\"sh\" exe=\"/bin/busybox\" sig=0 arch=c000003e syscall=1 compat=0 ip=0x47b7a0 code=0x7ffc0000").unwrap();
        assert_eq!(
            r,
            SeccompRecord {
                pid: 32767,
                arch: 0xc000_003e,
                syscall: 1,
                code: SECCOMP_RET_LOG
            }
        );
        assert_eq!(r.name().as_deref(), Some("write"));
        // With an LSM label and a comm with spaces (quoted fields never hold '=' here).
        let r = parse_record("audit(1.2:3): auid=1000 uid=1000 gid=1000 ses=2 subj=unconfined pid=7 comm=\"my prog\" exe=\"/x\" sig=0 arch=40000003 syscall=5 compat=1 ip=0xf7f0 code=0x50000").unwrap();
        assert_eq!((r.pid, r.code), (7, 0x50000));
        assert_eq!(
            r.arch_and_number(),
            Some((Arch::X86, 5)),
            "ia32 numbers stay on ia32 (5 is open there, fstat natively)"
        );
        assert_eq!(r.name().as_deref(), Some("open"));
        let x32 = SeccompRecord {
            pid: 1,
            arch: 0xc000_003e,
            syscall: 0x4000_0001,
            code: SECCOMP_RET_LOG,
        };
        assert_eq!(x32.arch_and_number().map(|a| a.0), Some(Arch::X32));
        assert_eq!(parse_record("audit(1.2:3): pid=1 arch=c000003e"), None);
        assert_eq!(parse_record("garbage"), None);
    }

    #[test]
    fn filter_results_name_their_action_and_denials_are_told_apart() {
        let with = |code| SeccompRecord {
            pid: 1,
            arch: 0xc000_003e,
            syscall: 84,
            code,
        };
        assert_eq!(with(0x8000_0000).action(), Some(Action::KillProcess));
        assert_eq!(with(0).action(), Some(Action::KillThread));
        assert_eq!(
            with(0x0005_0001).action(),
            Some(Action::Errno),
            "errno 1 in the data"
        );
        assert_eq!(with(SECCOMP_RET_LOG).action(), Some(Action::Log));
        assert_eq!(with(0x1234_0000).action(), None);
        assert!(is_denial(0x8000_0000) && is_denial(0x0005_0001) && is_denial(0x0003_0000));
        assert!(!is_denial(SECCOMP_RET_LOG) && !is_denial(SECCOMP_RET_ALLOW));
        assert!(is_logged_allow(SECCOMP_RET_LOG) && !is_logged_allow(0x0005_0001));
    }

    /// A resolver over a table of live processes the test changes.
    fn live(table: &Arc<std::sync::Mutex<std::collections::HashMap<u32, String>>>) -> Resolver {
        let t = table.clone();
        Arc::new(move |pid| t.lock().unwrap().get(&pid).cloned())
    }

    #[test]
    fn a_child_gone_before_its_exec_is_read_keeps_its_parents_container() {
        let alive = Arc::new(std::sync::Mutex::new(std::collections::HashMap::new()));
        alive.lock().unwrap().insert(10, "ctr".to_owned());
        let forks = Arc::new(Forks::default());
        let mut t = ForkTracker::new(forks.clone(), live(&alive));
        let now = std::time::Instant::now();
        // sh (10) forks 11, which execs mkdir and exits; all before the events are read.
        t.handle(
            ProcessEvent::Fork {
                parent: 10,
                child: 11,
            },
            now,
        );
        t.handle(ProcessEvent::Exec { pid: 11 }, now);
        t.handle(ProcessEvent::Exit { pid: 11 }, now);
        assert_eq!(forks.get(11).as_deref(), Some("ctr"));

        // A process that execs while alive is noted with its own container (runc's init
        // execing the entrypoint: its fork came from outside).
        alive.lock().unwrap().insert(20, "other".to_owned());
        t.handle(ProcessEvent::Exec { pid: 20 }, now);
        assert_eq!(forks.get(20).as_deref(), Some("other"));

        // A parent that forked and exited at once (a double fork) is found through its fork.
        t.handle(
            ProcessEvent::Fork {
                parent: 11,
                child: 12,
            },
            now,
        );
        assert_eq!(forks.get(12).as_deref(), Some("ctr"));

        // A reused PID forked from outside any container forgets the old entry, and its
        // parent's cached answer is not reused once that parent has exited.
        t.handle(ProcessEvent::Exit { pid: 10 }, now);
        alive.lock().unwrap().remove(&10);
        t.handle(
            ProcessEvent::Fork {
                parent: 1,
                child: 10,
            },
            now,
        );
        t.handle(
            ProcessEvent::Fork {
                parent: 10,
                child: 13,
            },
            now,
        );
        assert_eq!(forks.get(13).as_deref(), None, "the old sh's container");
    }
}
