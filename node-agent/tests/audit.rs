//! The audit reader against the real kernel: records of a process under an SCMP_ACT_LOG
//! filter arrive through the netlink multicast group, every one (no printk rate limit).

mod common;
use common::*;
use node_agent::audit::{AuditReader, SECCOMP_RET_LOG};
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[test]
fn seccomp_log_records_arrive_by_netlink_and_are_not_rate_limited() {
    skip_unless!(is_root(), "needs root (CAP_AUDIT_READ)");
    // The resolver runs on the reader thread as records arrive, while the process lives.
    let alive_when_resolved = Arc::new(Mutex::new(Vec::new()));
    let seen = alive_when_resolved.clone();
    let reader = AuditReader::start(
        100_000,
        Box::new(move |pid| {
            let alive = std::path::Path::new(&format!("/proc/{pid}/cgroup")).exists();
            seen.lock().unwrap().push((pid, alive));
            alive.then(|| format!("proc-{pid}"))
        }),
    )
    .expect("joining the audit multicast group");
    let dir = tempfile::tempdir().unwrap();
    let profile = dir.path().join("log.json");
    std::fs::write(&profile, r#"{"defaultAction": "SCMP_ACT_LOG"}"#).unwrap();
    // 200 getppid calls would be far past printk's burst of 10: the count proves the path.
    let child = seccompctl()
        .args(["run", "--profile"])
        .arg(&profile)
        .args([
            "--",
            "sh",
            "-c",
            "i=0; while [ $i -lt 200 ]; do i=$((i+1)); done; ls / >/dev/null; echo done",
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let out = child.wait_with_output().unwrap();
    assert_eq!(text(&out.stdout), "done\n");
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut names = BTreeSet::new();
    let mut count = 0usize;
    while Instant::now() < deadline {
        match reader.records.recv_timeout(Duration::from_millis(300)) {
            Ok(a) if a.record.pid == pid && a.record.code == SECCOMP_RET_LOG => {
                count += 1;
                names.extend(a.record.name());
                assert_eq!(a.container, Some(format!("proc-{pid}")));
            }
            Ok(_) => {}
            Err(_) if count > 0 => break,
            Err(_) => {}
        }
    }
    eprintln!(
        "{count} records for pid {pid}, {} distinct syscalls, {} lost",
        names.len(),
        reader.lost()
    );
    for want in ["execve", "write", "exit_group"] {
        assert!(names.contains(want), "{want} missing from {names:?}");
    }
    assert!(count > 30, "only {count} records: rate limited?");
    assert_eq!(reader.lost(), 0);
}
