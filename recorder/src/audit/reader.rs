//! The reader thread: joins the audit netlink socket's read-only multicast group and passes
//! each accepted record on, with its container, through a bounded channel.

use super::attribution::{track_forks, Forks, Resolver};
use super::parse::{parse_record, Accept, SeccompRecord, AUDIT_SECCOMP};
use super::AuditError;
use netlink_packet_core::NetlinkBuffer;
use netlink_sys::{protocols::NETLINK_AUDIT, Socket, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError};
use std::sync::Arc;

/// `AUDIT_NLGRP_READLOG`.
const AUDIT_NLGRP_READLOG: u32 = 1;

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
                // Each reader takes its own kind, through its own socket and channel: Logs
                // recordings and the denial reporter's second reader the SCMP_ACT_LOG records,
                // the denial reporter's first reader the refusals.
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
