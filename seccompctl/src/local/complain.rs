//! `seccompctl run --complain`: a command under the complain rendering of a profile (every
//! refusing action installed as `SCMP_ACT_LOG`, so nothing is refused), and what enforcing
//! the profile would have denied, from the kernel's seccomp audit records of the command's
//! processes.
//!
//! The records come from the audit reader of `syscall_recorder` (the netlink multicast group,
//! as the node agent's `Logs` recordings read them). A record names its process by PID: the
//! command's processes are seccompctl's descendants, found through the parent PIDs in
//! `/proc/<pid>/stat` while they live and through the reader's fork tracking once they are
//! gone. seccompctl is a child subreaper meanwhile, so an orphaned daemon stays in the tree,
//! and the command stays unreaped until the records are read.

use super::process::{exit_code, forward_signals_to, stop_forwarding, wait_exited, wait_for};
use super::run::Prepared;
use anyhow::{anyhow, bail, Context};
use nix::unistd::{fork, ForkResult};
use seccomp_profile::{would_deny, Arch, SeccompDocument, WouldDeny};
use std::collections::BTreeMap;
use std::ffi::OsString;
use std::io::{Read, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use syscall_recorder::audit::{is_logged_allow, AuditError, AuditReader, Resolver};

/// What the resolver calls the command's process tree.
const TREE: &str = "command";
/// Records waiting for the tally thread.
const CAPACITY: usize = 1 << 16;
/// After the command exits, records are read until none of its own arrived for this long
/// (longer than the reader holds a record whose process it is still placing)...
const QUIET: Duration = Duration::from_millis(700);
/// ...and for this long at most.
const MAX_DRAIN: Duration = Duration::from_secs(5);

/// `CAP_NET_ADMIN` (the fork tracking's process events).
const CAP_NET_ADMIN: u32 = 12;
/// `CAP_AUDIT_READ` (the audit multicast group).
const CAP_AUDIT_READ: u32 = 37;

/// A syscall the command made that enforcing the profile would have refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WouldBeDenied {
    /// Its name (`syscall N` when libseccomp does not know the number).
    pub syscall: String,
    /// How many calls the kernel logged.
    pub calls: u64,
    /// What the enforced profile would have done.
    pub deny: WouldDeny,
}

/// The outcome of a complain run.
#[derive(Clone, Debug)]
pub struct Complaint {
    /// How the command ended, as a shell reports it (code, or 128 + signal).
    pub exit_code: i32,
    /// What enforcement would have refused, by syscall name.
    pub denied: Vec<WouldBeDenied>,
    /// Audit records lost (socket overruns, a full queue): that many calls are not counted.
    pub lost: u64,
    /// Why the summary may be incomplete, found before or during the run.
    pub warnings: Vec<String>,
}

impl Complaint {
    /// The summary, one line each: what would have been denied, then why it may be
    /// incomplete.
    pub fn summary(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.denied.is_empty() {
            out.push("complain: nothing would have been denied".to_owned());
        } else {
            out.push("complain: enforcing the profile would have denied:".to_owned());
            let width = self
                .denied
                .iter()
                .map(|d| d.syscall.len())
                .max()
                .unwrap_or(0);
            for d in &self.denied {
                let calls = format!("{} call{}", d.calls, if d.calls == 1 { "" } else { "s" });
                let note = d.deny.argument_note();
                out.push(format!(
                    "  {:width$}  {calls:>10}  {}{}{note}",
                    d.syscall,
                    d.deny.action.as_str(),
                    if note.is_empty() { "" } else { ": " },
                ));
            }
        }
        if self.lost > 0 {
            out.push(format!(
                "complain: {} audit record{} lost: calls are missing from this summary",
                self.lost,
                if self.lost == 1 { " was" } else { "s were" }
            ));
        }
        out.extend(self.warnings.iter().map(|w| format!("complain: {w}")));
        out
    }
}

/// Run `argv` under the complain rendering of `doc` (the profile as enforcement would
/// install it: canonical for this machine) and report what enforcing `doc` would have
/// denied. Standard input, output and error are the caller's; the summary is not printed.
pub fn run_complaining(doc: &SeccompDocument, argv: &[OsString]) -> anyhow::Result<Complaint> {
    check_audit_access()?;
    let mut warnings = trust_warnings();
    let complain = doc.clone().complain().canonical(Arch::native());
    let prepared = Prepared::new(&complain, argv)?;
    // Orphans of the command become seccompctl's children, so they stay in its tree.
    nix::sys::prctl::set_child_subreaper(true).context("prctl(PR_SET_CHILD_SUBREAPER)")?;
    let (go_r, go_w) = nix::unistd::pipe()?;
    // SAFETY: seccompctl is single-threaded here (the reader's threads start after the fork),
    // so the child may allocate, as libseccomp does to load the filter.
    match unsafe { fork() }? {
        ForkResult::Child => {
            drop(go_w);
            let mut b = [0u8; 1];
            if std::fs::File::from(go_r).read_exact(&mut b).is_ok() {
                let e = prepared.exec();
                eprintln!("seccompctl: {e:#}");
            }
            // SAFETY: _exit has no preconditions (there is no safe wrapper).
            unsafe { libc::_exit(127) }
        }
        ForkResult::Parent { child } => {
            drop(go_r);
            drop(prepared);
            // The command waits for `go` until the reader runs: none of its calls under the
            // filter happens before.
            let reader = match AuditReader::start(
                CAPACITY,
                command_tree(std::process::id()),
                is_logged_allow,
            ) {
                Ok(r) => r,
                Err(e) => {
                    drop(go_w);
                    let _ = wait_for(child);
                    return Err(reader_error(e));
                }
            };
            forward_signals_to(child);
            let done = Arc::new(AtomicBool::new(false));
            let tally = {
                let done = done.clone();
                std::thread::Builder::new()
                    .name("complain-tally".into())
                    .spawn(move || tally(reader, &done))
                    .context("starting the thread counting the audit records")?
            };
            let started = std::fs::File::from(go_w).write_all(b"1");
            let status = wait_exited(child);
            stop_forwarding();
            done.store(true, Ordering::SeqCst);
            let tallied = tally
                .join()
                .map_err(|_| anyhow!("the thread counting the audit records panicked"))?;
            let _ = wait_for(child);
            started.context("starting the command")?;
            let status = status?;
            if tallied.reader_stopped {
                warnings.push(
                    "the audit reader stopped before the command ended: calls are missing from this summary"
                        .to_owned(),
                );
            }
            Ok(Complaint {
                exit_code: exit_code(status),
                denied: would_have_denied(doc, tallied.calls),
                lost: tallied.lost,
                warnings,
            })
        }
    }
}

/// The logged calls enforcement would have refused (an original `SCMP_ACT_LOG` rule's calls
/// are logged too, and left out).
fn would_have_denied(doc: &SeccompDocument, calls: BTreeMap<String, u64>) -> Vec<WouldBeDenied> {
    calls
        .into_iter()
        .filter_map(|(syscall, calls)| {
            let deny = would_deny(doc, &syscall)?;
            Some(WouldBeDenied {
                syscall,
                calls,
                deny,
            })
        })
        .collect()
}

/// The records of one run, counted.
struct Tallied {
    calls: BTreeMap<String, u64>,
    lost: u64,
    /// The reader's thread ended (a socket error) before the command did.
    reader_stopped: bool,
}

/// Count the command's logged calls by syscall until `done` and then [`QUIET`].
fn tally(reader: AuditReader, done: &AtomicBool) -> Tallied {
    use std::sync::mpsc::RecvTimeoutError;
    let mut calls: BTreeMap<String, u64> = BTreeMap::new();
    let mut done_at: Option<Instant> = None;
    let mut last = Instant::now();
    let mut reader_stopped = false;
    loop {
        match reader.records.recv_timeout(Duration::from_millis(50)) {
            Ok(a) if a.container.as_deref() == Some(TREE) => {
                let name = a
                    .record
                    .name()
                    .unwrap_or_else(|| format!("syscall {}", a.record.syscall));
                *calls.entry(name).or_default() += 1;
                last = Instant::now();
            }
            // Another process's logged call.
            Ok(_) | Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => {
                reader_stopped = !done.load(Ordering::SeqCst);
                break;
            }
        }
        if done.load(Ordering::SeqCst) {
            let now = Instant::now();
            let at = *done_at.get_or_insert(now);
            if now.duration_since(at.max(last)) >= QUIET || now.duration_since(at) >= MAX_DRAIN {
                break;
            }
        }
    }
    Tallied {
        calls,
        lost: reader.lost(),
        reader_stopped,
    }
}

/// The resolver that places a process in [`TREE`] when it descends from `ancestor`
/// (seccompctl, whose one child is the command).
fn command_tree(ancestor: u32) -> Resolver {
    Arc::new(move |pid| descends_from(pid, ancestor).then(|| TREE.to_owned()))
}

/// Whether `ancestor` is among the parents of `pid` (while `pid` lives, or is a zombie).
fn descends_from(pid: u32, ancestor: u32) -> bool {
    let mut p = pid;
    // A parent chain is short; the bound only guards against a loop of reused PIDs.
    for _ in 0..1024 {
        match parent_of(p) {
            Some(pp) if pp == ancestor => return true,
            Some(pp) if pp > 1 && pp != p => p = pp,
            _ => return false,
        }
    }
    false
}

/// The parent PID in `/proc/<pid>/stat`.
fn parent_of(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // `pid (comm) state ppid ...`, where comm may hold spaces and parentheses.
    let (_, rest) = stat.rsplit_once(')')?;
    rest.split_whitespace().nth(1)?.parse().ok()
}

/// The effective capabilities of seccompctl.
fn effective_capabilities() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let hex = status.lines().find_map(|l| l.strip_prefix("CapEff:"))?;
    u64::from_str_radix(hex.trim(), 16).ok()
}

fn has_capability(caps: Option<u64>, cap: u32) -> bool {
    caps.is_some_and(|c| c & (1 << cap) != 0)
}

/// Whether seccompctl can read the kernel's seccomp audit records here, as a plain message
/// when not.
pub fn check_audit_access() -> anyhow::Result<()> {
    if !has_capability(effective_capabilities(), CAP_AUDIT_READ) {
        bail!(
            "--complain reads the kernel's seccomp audit records, which needs CAP_AUDIT_READ: run seccompctl as root"
        );
    }
    // The records name processes by their PIDs in the initial PID namespace.
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let nested = status
        .lines()
        .find_map(|l| l.strip_prefix("NSpid:"))
        .is_some_and(|pids| pids.split_whitespace().count() > 1);
    if nested {
        bail!(
            "--complain needs the host's PID namespace: the kernel's seccomp audit records name processes by their PIDs there"
        );
    }
    // And go to listeners in the initial network namespace only (PID 1 is the host's init
    // here; its namespace is unreadable in some sandboxes, which then go unchecked).
    let net = |pid: &str| std::fs::read_link(format!("/proc/{pid}/ns/net")).ok();
    if let (Some(own), Some(host)) = (net("self"), net("1")) {
        if own != host {
            bail!(
                "--complain needs the host's network namespace: the kernel sends seccomp audit records to listeners there only"
            );
        }
    }
    Ok(())
}

/// What would make the summary incomplete on this machine.
fn trust_warnings() -> Vec<String> {
    let read = |path: &str| std::fs::read_to_string(path).ok();
    warnings_for(
        read("/proc/sys/kernel/seccomp/actions_logged").as_deref(),
        read("/proc/cmdline").as_deref(),
        effective_capabilities(),
    )
}

/// [`trust_warnings`] from the sysctl's value, the kernel's command line and seccompctl's
/// effective capabilities (each None when unreadable: not warned about).
fn warnings_for(
    actions_logged: Option<&str>,
    cmdline: Option<&str>,
    caps: Option<u64>,
) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(logged) = actions_logged {
        if !logged.split_whitespace().any(|a| a == "log") {
            out.push(format!(
                "kernel.seccomp.actions_logged is `{}`, without `log`: the kernel writes no record of a logged call, so this summary cannot be trusted",
                logged.trim()
            ));
        }
    }
    let audit_off = cmdline.is_some_and(|c| {
        c.split_whitespace()
            .any(|a| a == "audit=0" || a == "audit=off")
    });
    if audit_off {
        out.push(
            "the kernel was booted with audit=0: it writes no audit records, so this summary cannot be trusted"
                .to_owned(),
        );
    }
    if caps.is_some() && !has_capability(caps, CAP_NET_ADMIN) {
        out.push(
            "without CAP_NET_ADMIN the process events are not followed: calls of short-lived child processes may be missing"
                .to_owned(),
        );
    }
    out
}

/// Why the reader could not start, without the library's internals.
fn reader_error(e: AuditError) -> anyhow::Error {
    match e {
        AuditError::Socket { err, .. }
            if err.raw_os_error() == Some(libc::EPERM)
                || err.raw_os_error() == Some(libc::EACCES) =>
        {
            anyhow!(
                "cannot read the kernel's seccomp audit records ({err}): --complain needs CAP_AUDIT_READ in the host's user namespace (root on the host)"
            )
        }
        AuditError::Socket { err, .. } => {
            anyhow!("cannot read the kernel's seccomp audit records: {err}")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use seccomp_profile::Action;

    fn complaint(denied: Vec<WouldBeDenied>, lost: u64) -> Complaint {
        Complaint {
            exit_code: 0,
            denied,
            lost,
            warnings: vec![],
        }
    }

    #[test]
    fn the_summary_names_each_syscall_its_calls_and_the_action() {
        let c = complaint(
            vec![
                WouldBeDenied {
                    syscall: "mkdir".into(),
                    calls: 1,
                    deny: WouldDeny {
                        action: Action::Errno,
                        depends_on_arguments: false,
                        maybe_logged_by_rule: false,
                    },
                },
                WouldBeDenied {
                    syscall: "socket".into(),
                    calls: 12,
                    deny: WouldDeny {
                        action: Action::KillProcess,
                        depends_on_arguments: true,
                        maybe_logged_by_rule: false,
                    },
                },
            ],
            3,
        );
        let s = c.summary();
        assert_eq!(s[0], "complain: enforcing the profile would have denied:");
        assert_eq!(s[1], "  mkdir       1 call  SCMP_ACT_ERRNO");
        assert!(
            s[2].starts_with(
                "  socket    12 calls  SCMP_ACT_KILL_PROCESS: refused for the argument values"
            ),
            "{s:?}"
        );
        assert_eq!(
            s[3],
            "complain: 3 audit records were lost: calls are missing from this summary"
        );
        assert_eq!(
            complaint(vec![], 0).summary(),
            ["complain: nothing would have been denied"]
        );
    }

    #[test]
    fn only_refusals_of_the_enforced_profile_are_reported() {
        let mut doc = SeccompDocument::allowlist(["read"]);
        doc.syscalls.push(seccomp_profile::SyscallRule {
            names: vec!["uname".into()],
            action: Action::Log,
            errno_ret: None,
            args: vec![],
        });
        let calls = BTreeMap::from([("read".into(), 4), ("uname".into(), 1), ("mkdir".into(), 2)]);
        let d = would_have_denied(&doc, calls);
        assert_eq!(d.len(), 1, "{d:?}");
        assert_eq!((d[0].syscall.as_str(), d[0].calls), ("mkdir", 2));
        assert_eq!(d[0].deny.action, Action::Errno);
    }

    #[test]
    fn what_makes_the_summary_untrustworthy_is_said() {
        let all = Some(u64::MAX);
        let host = "BOOT_IMAGE=/vmlinuz root=/dev/vda1 quiet";
        let logged = "kill_process kill_thread trap errno user_notif trace log";
        assert!(warnings_for(Some(logged), Some(host), all).is_empty());
        let w = warnings_for(Some("kill_process errno\n"), Some(host), all);
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(
            w[0].contains("`kill_process errno`, without `log`"),
            "{w:?}"
        );
        let w = warnings_for(Some(logged), Some("root=/dev/vda1 audit=0 ro"), all);
        assert!(
            w[0].contains("audit=0") && w[0].contains("cannot be trusted"),
            "{w:?}"
        );
        let w = warnings_for(Some(logged), Some(host), Some(1 << CAP_AUDIT_READ));
        assert!(w[0].contains("CAP_NET_ADMIN"), "{w:?}");
        assert!(warnings_for(None, None, None).is_empty());
    }

    #[test]
    fn the_tree_is_the_descendants_of_the_ancestor() {
        let me = std::process::id();
        // sh, and the sleep it starts in the background, both descend from this test.
        let mut sh = std::process::Command::new("sh")
            .args(["-c", "sleep 5 & echo $!; wait"])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(sh.stdout.as_mut().unwrap()),
            &mut line,
        )
        .unwrap();
        let sleep: u32 = line.trim().parse().unwrap();
        let found = (descends_from(sh.id(), me), descends_from(sleep, me));
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(sleep as i32),
            nix::sys::signal::Signal::SIGKILL,
        );
        let _ = sh.wait();
        assert_eq!(found, (true, true));
        assert!(
            !descends_from(me, me),
            "the ancestor itself is not in its tree"
        );
        assert!(!descends_from(1, me));
        assert!(!descends_from(u32::MAX, me), "no such process");
    }
}
