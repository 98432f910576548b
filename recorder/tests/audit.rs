//! The audit reader against the real kernel: records of a process under an SCMP_ACT_LOG
//! filter arrive through the netlink multicast group, every one (no printk rate limit).

use std::collections::BTreeSet;
use std::process::{Child, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use syscall_recorder::audit::{AuditReader, SECCOMP_RET_LOG};

/// Skip the calling test (return) with a printed reason.
macro_rules! skip_unless {
    ($cond:expr, $why:expr) => {
        if !$cond {
            eprintln!("SKIP: {}", $why);
            return;
        }
    };
}

/// Whether the audit tests can run: root (CAP_AUDIT_READ for the multicast group,
/// CAP_NET_ADMIN for the process events). On CI they must.
fn can_read_audit() -> bool {
    let ok = nix::unistd::geteuid().is_root();
    if !ok && std::env::var_os("CI").is_some() && std::env::var_os("SECCOMP_ALLOW_SKIP").is_none() {
        panic!("CI must run the audit tests: need root");
    }
    ok
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// `sh -c script` under `profile` (a profile's JSON), as `seccompctl run` starts it: the
/// filter is compiled here, and the child sets NoNewPrivileges and installs it right before
/// its exec. Its stdin is a pipe.
fn sh_under(profile: &str, script: &str, stdout: Stdio, stderr: Stdio) -> Child {
    use seccomp_profile::{Arch, EvalContext, Flag};
    use std::os::unix::process::CommandExt;
    let doc = seccomp_profile::parse_profile(profile, &EvalContext::host())
        .unwrap()
        .spec
        .document
        .canonical(Arch::native());
    let bpf = seccomp_filter::compile(&doc).unwrap().bpf().unwrap();
    let program: Vec<libc::sock_filter> = bpf
        .chunks_exact(8)
        .map(|i| libc::sock_filter {
            code: u16::from_ne_bytes([i[0], i[1]]),
            jt: i[2],
            jf: i[3],
            k: u32::from_ne_bytes([i[4], i[5], i[6], i[7]]),
        })
        .collect();
    let flags = doc.flags.iter().fold(0, |all, flag| {
        all | match flag {
            Flag::Tsync => libc::SECCOMP_FILTER_FLAG_TSYNC,
            Flag::Log => libc::SECCOMP_FILTER_FLAG_LOG,
            Flag::SpecAllow => libc::SECCOMP_FILTER_FLAG_SPEC_ALLOW,
            Flag::WaitKillableRecv => libc::SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV,
        }
    });
    let mut cmd = std::process::Command::new("sh");
    cmd.args(["-c", script])
        .stdin(Stdio::piped())
        .stdout(stdout)
        .stderr(stderr);
    // SAFETY: between fork and exec the closure makes two system calls and allocates nothing.
    unsafe {
        cmd.pre_exec(move || {
            let fprog = libc::sock_fprog {
                len: program.len() as u16,
                filter: program.as_ptr() as *mut libc::sock_filter,
            };
            if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0
                || libc::syscall(
                    libc::SYS_seccomp,
                    libc::SECCOMP_SET_MODE_FILTER,
                    flags,
                    &fprog as *const libc::sock_fprog,
                ) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    cmd.spawn().unwrap()
}

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
    skip_unless!(can_read_audit(), "needs root (CAP_AUDIT_READ)");
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
    let mut child = sh_under(
        r#"{"defaultAction": "SCMP_ACT_LOG"}"#,
        "read x; for i in 1 2 3 4 5 6 7 8; do /bin/true; done; ls / >/dev/null; echo done",
        Stdio::piped(),
        Stdio::inherit(),
    );
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
    let mut child = sh_under(profile, script, Stdio::null(), Stdio::null());
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
    skip_unless!(can_read_audit(), "needs root (CAP_AUDIT_READ)");
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
