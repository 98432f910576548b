//! Which container a record's process belongs to: a resolver asked when a record arrives,
//! and the fork/exec tracker that remembers the containers of processes gone by then.

use super::AuditError;
use std::sync::atomic::Ordering;
use std::sync::Arc;

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
pub(super) struct Forks {
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
    pub(super) fn get(&self, pid: u32) -> Option<String> {
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
pub(super) fn track_forks(
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

#[cfg(test)]
mod tests {
    use super::*;

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
