//! The audit reader against the real kernel: records of a process under an SCMP_ACT_LOG
//! filter arrive through the netlink multicast group, every one (no printk rate limit).

mod common;
use common::*;
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use syscall_recorder::audit::{AuditReader, SECCOMP_RET_LOG};

/// Whether `pid` is `root` or one of its descendants (while it is alive).
fn in_tree(pid: u32, root: u32) -> bool {
    let mut p = pid;
    for _ in 0..64 {
        if p == root {
            return true;
        }
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{p}/stat")) else {
            return false;
        };
        // pid (comm) state ppid ...: comm may hold spaces, so split after the last ')'.
        let Some(ppid) = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
            .and_then(|s| s.parse().ok())
        else {
            return false;
        };
        if ppid <= 1 {
            return false;
        }
        p = ppid;
    }
    false
}

#[test]
fn seccomp_log_records_arrive_by_netlink_and_are_attributed_even_for_short_lived_children() {
    skip_unless!(is_root(), "needs root (CAP_AUDIT_READ)");
    let root = Arc::new(AtomicU32::new(u32::MAX));
    let r2 = root.clone();
    // The "container" is the test's process tree; a child reaped before its records arrive
    // is found through the fork it came from.
    let reader = AuditReader::start(
        100_000,
        Arc::new(move |pid| in_tree(pid, r2.load(Ordering::SeqCst)).then(|| "tree".to_owned())),
    )
    .expect("joining the audit multicast group");
    let dir = tempfile::tempdir().unwrap();
    let profile = dir.path().join("log.json");
    std::fs::write(&profile, r#"{"defaultAction": "SCMP_ACT_LOG"}"#).unwrap();
    let mut child = seccompctl()
        .args(["run", "--profile"])
        .arg(&profile)
        .args([
            "--",
            "sh",
            "-c",
            "read x; for i in 1 2 3 4 5 6 7 8; do /bin/true; done; ls / >/dev/null; echo done",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    root.store(pid, Ordering::SeqCst);
    // Start the work only once the resolver knows the tree's root.
    use std::io::Write;
    child.stdin.take().unwrap().write_all(b"go\n").unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(text(&out.stdout), "done\n");
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut names = BTreeSet::new();
    let (mut attributed, mut unattributed) = (0usize, 0usize);
    let mut pids = BTreeSet::new();
    while Instant::now() < deadline {
        match reader.records.recv_timeout(Duration::from_millis(700)) {
            Ok(a) => {
                assert_eq!(a.record.code, SECCOMP_RET_LOG);
                pids.insert(a.record.pid);
                match a.container.as_deref() {
                    Some("tree") => {
                        attributed += 1;
                        names.extend(a.record.name());
                    }
                    _ => unattributed += 1,
                }
            }
            Err(_) if attributed > 0 => break,
            Err(_) => {}
        }
    }
    eprintln!(
        "{attributed} records attributed, {unattributed} not, from {} processes; {} distinct syscalls; {} lost",
        pids.len(),
        names.len(),
        reader.lost()
    );
    for want in ["execve", "write", "exit_group", "getdents64", "wait4"] {
        assert!(names.contains(want), "{want} missing from {names:?}");
    }
    assert!(
        pids.len() >= 10,
        "records of the short-lived children: {pids:?}"
    );
    assert_eq!(unattributed, 0, "records left unattributed");
    assert!(attributed > 30, "only {attributed} records: rate limited?");
    assert_eq!(reader.lost(), 0);
}
