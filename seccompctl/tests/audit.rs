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
        syscall_recorder::audit::is_logged_allow,
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

/// Runs `script` under `profile` with the reader already started; the records attributed to
/// the process tree, once they stop arriving.
fn denials_of(profile: &str, script: &str) -> Vec<syscall_recorder::audit::SeccompRecord> {
    let root = Arc::new(AtomicU32::new(u32::MAX));
    let r2 = root.clone();
    let reader = AuditReader::start(
        100_000,
        Arc::new(move |pid| in_tree(pid, r2.load(Ordering::SeqCst)).then(|| "tree".to_owned())),
        syscall_recorder::audit::is_denial,
    )
    .expect("joining the audit multicast group");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("deny.json");
    std::fs::write(&path, profile).unwrap();
    let mut child = seccompctl()
        .args(["run", "--profile"])
        .arg(&path)
        .args(["--", "sh", "-c", script])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    root.store(child.id(), Ordering::SeqCst);
    use std::io::Write;
    child.stdin.take().unwrap().write_all(b"go\n").unwrap();
    let _ = child.wait().unwrap();
    let mut out = Vec::new();
    while let Ok(a) = reader.records.recv_timeout(Duration::from_millis(1500)) {
        if a.container.as_deref() == Some("tree") {
            out.push(a.record);
        }
    }
    assert_eq!(reader.lost(), 0);
    out
}

#[test]
fn denials_are_audited_only_with_the_log_flag_and_a_killed_process_is_still_attributed() {
    skip_unless!(is_root(), "needs root (CAP_AUDIT_READ)");
    // mkdir refused with EPERM 12 times, then the shell execs rmdir, which its filter kills:
    // the process is gone before its record is read, and is found through its exec.
    let script = "read x; for i in 1 2 3 4 5 6 7 8 9 10 11 12; do mkdir /tmp/so-denied 2>/dev/null; done; exec rmdir /tmp/so-none";
    let rules = r#""syscalls": [
        {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"},
        {"names": ["rmdir", "unlinkat"], "action": "SCMP_ACT_KILL_PROCESS"}]"#;
    let logged = denials_of(
        &format!(
            r#"{{"defaultAction": "SCMP_ACT_ALLOW", "flags": ["SECCOMP_FILTER_FLAG_LOG"], {rules}}}"#
        ),
        script,
    );
    let count = |recs: &[syscall_recorder::audit::SeccompRecord], action: &str| {
        recs.iter()
            .filter(|r| r.action().map(|a| a.as_str()) == Some(action))
            .map(|r| r.name().unwrap_or_default())
            .collect::<Vec<_>>()
    };
    let errno = count(&logged, "SCMP_ACT_ERRNO");
    assert_eq!(errno.len(), 12, "one record per refused mkdir: {errno:?}");
    assert!(errno.iter().all(|n| n.starts_with("mkdir")), "{errno:?}");
    let killed = count(&logged, "SCMP_ACT_KILL_PROCESS");
    assert_eq!(killed.len(), 1, "the killed rmdir, attributed: {logged:?}");
    assert!(
        killed[0] == "rmdir" || killed[0] == "unlinkat",
        "{killed:?}"
    );

    // Without the flag the kernel audits only the kill.
    let quiet = denials_of(
        &format!(r#"{{"defaultAction": "SCMP_ACT_ALLOW", {rules}}}"#),
        script,
    );
    assert_eq!(count(&quiet, "SCMP_ACT_ERRNO").len(), 0, "{quiet:?}");
    assert_eq!(count(&quiet, "SCMP_ACT_KILL_PROCESS").len(), 1, "{quiet:?}");
}
