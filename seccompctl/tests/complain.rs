//! `seccompctl run --complain`: the complain rendering of a profile refuses nothing and keeps
//! its argument conditions, and, run on real programs (busybox) with the kernel's seccomp
//! audit records (root), the summary names what enforcing the profile would have denied, and
//! seccompctl exits with the command's status.

mod common;
use common::*;
use seccomp_profile::{Action, Arch, EvalContext, SeccompDocument};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Default SCMP_ACT_ERRNO; mkdir refused by a rule of its own, uname killed (harmless: busybox
/// `uname` calls it), write allowed on standard output only.
const STRICT: &str = r#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
    {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"},
    {"names": ["uname"], "action": "SCMP_ACT_KILL_PROCESS"},
    {"names": ["write"], "action": "SCMP_ACT_ALLOW",
     "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_EQ"}]}]}"#;

/// Everything allowed but mkdir.
const NO_MKDIR: &str = r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
    {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"}]}"#;

/// Whether the audit tests can run: root (CAP_AUDIT_READ for the audit records,
/// CAP_NET_ADMIN for the process events). On CI they must.
fn can_read_audit() -> bool {
    let ok = is_root();
    if !ok && std::env::var_os("CI").is_some() && std::env::var_os("SECCOMP_ALLOW_SKIP").is_none() {
        panic!("CI must run the complain tests: need root");
    }
    ok
}

fn busybox() -> &'static str {
    ["/bin/busybox", "/usr/bin/busybox"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .expect("busybox-static is installed (hack/deps.sh)")
}

fn write_profile(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

fn doc_of(text: &str) -> SeccompDocument {
    seccomp_profile::parse_profile(text, &EvalContext::host())
        .unwrap()
        .spec
        .document
        .canonical(Arch::native())
}

/// `seccompctl run [--complain] --profile P -- CMD`, killed after two minutes.
fn run_with(complain: bool, profile: &Path, cmd: &[&str]) -> std::process::Output {
    let mut c = std::process::Command::new("timeout");
    c.args(["-s", "KILL", "120"])
        .arg(env!("CARGO_BIN_EXE_seccompctl"))
        .arg("run");
    if complain {
        c.arg("--complain");
    }
    run(c.arg("--profile").arg(profile).arg("--").args(cmd))
}

/// One line of the summary: a syscall enforcement would have denied.
#[derive(Debug)]
struct Line {
    syscall: String,
    calls: u64,
    action: String,
    note: String,
}

/// The summary's lines of would-be denials (`seccompctl:   NAME  N call(s)  ACTION[: note]`).
fn summary(stderr: &str) -> Vec<Line> {
    stderr
        .lines()
        .filter_map(|l| l.strip_prefix("seccompctl:   "))
        .map(|l| {
            let mut words = l.split_whitespace();
            let syscall = words.next().unwrap().to_owned();
            let calls = words.next().unwrap().parse().unwrap();
            let _ = words.next(); // "call" / "calls"
            let action = words.next().unwrap().trim_end_matches(':').to_owned();
            let note = words.collect::<Vec<_>>().join(" ");
            Line {
                syscall,
                calls,
                action,
                note,
            }
        })
        .collect()
}

fn line<'a>(lines: &'a [Line], names: &[&str], stderr: &str) -> &'a Line {
    let found: Vec<&Line> = lines
        .iter()
        .filter(|l| names.contains(&l.syscall.as_str()))
        .collect();
    assert_eq!(found.len(), 1, "one of {names:?} in the summary:\n{stderr}");
    found[0]
}

#[test]
fn the_complain_rendering_refuses_nothing_and_keeps_argument_conditions() {
    let enforced = doc_of(STRICT);
    let complain = enforced.clone().complain().canonical(Arch::native());
    assert_eq!(complain.default_action, Action::Log);
    assert_eq!(complain.default_errno_ret, None);
    for rule in &complain.syscalls {
        assert!(
            !seccomp_profile::complain::refuses(rule.action),
            "a refusing rule is left: {rule:?}"
        );
    }
    let write = complain
        .syscalls
        .iter()
        .find(|r| r.names.iter().any(|n| n == "write"))
        .expect("the write rule is kept");
    assert_eq!(write.action, Action::Allow);
    assert_eq!(
        write.args,
        enforced.syscalls[enforced
            .syscalls
            .iter()
            .position(|r| r.names.iter().any(|n| n == "write"))
            .unwrap()]
        .args
    );
    assert_eq!(write.args.len(), 1, "the argument condition is kept");
    // libseccomp takes it (rules equal to the LOG default are gone).
    seccomp_filter::compile(&complain).expect("the complain rendering compiles");

    // What enforcement would have done, from the enforced document.
    let wd = |s| seccomp_profile::would_deny(&enforced, s);
    assert_eq!(wd("mkdir").unwrap().action, Action::Errno);
    assert_eq!(wd("uname").unwrap().action, Action::KillProcess);
    assert!(wd("write").unwrap().depends_on_arguments);
    assert_eq!(
        wd("getdents64").unwrap().action,
        Action::Errno,
        "the default"
    );
}

#[test]
fn under_the_complain_rendering_nothing_is_refused_and_every_refusal_is_logged() {
    skip_unless!(can_read_audit(), "needs root (CAP_AUDIT_READ)");
    let tmp = tempfile::tempdir().unwrap();
    let profile = write_profile(tmp.path(), "strict.json", STRICT);
    let dir = tmp.path().join("made");
    // mkdir (refused by a rule), uname (killed), a write to standard error (refused by the
    // default for that argument), all made while the filter is installed.
    let script = format!(
        "mkdir {}; uname >/dev/null; ls /nonexistent 2>/dev/null; echo out",
        dir.display()
    );
    let out = run_with(true, &profile, &[busybox(), "sh", "-c", &script]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(dir.is_dir(), "mkdir ran: {stderr}");
    assert_eq!(text(&out.stdout), "out\n", "uname ran, unkilled: {stderr}");

    let lines = summary(&stderr);
    let mkdir = line(&lines, &["mkdir", "mkdirat"], &stderr);
    assert_eq!((mkdir.calls, mkdir.action.as_str()), (1, "SCMP_ACT_ERRNO"));
    assert!(mkdir.note.is_empty(), "{stderr}");
    let uname = line(&lines, &["uname"], &stderr);
    assert_eq!(uname.action, "SCMP_ACT_KILL_PROCESS", "{stderr}");
    assert!(uname.calls >= 1);
    let write = line(&lines, &["write"], &stderr);
    assert_eq!(write.action, "SCMP_ACT_ERRNO", "{stderr}");
    assert!(
        write.note.starts_with("refused for the argument values"),
        "{stderr}"
    );
    // The calls the default refuses are logged too.
    for name in ["execve", "exit_group"] {
        line(&lines, &[name], &stderr);
    }
    assert!(!stderr.contains("lost"), "{stderr}");
}

#[test]
fn complain_run_of_busybox_mkdir_names_the_mkdir_enforcement_would_deny() {
    skip_unless!(can_read_audit(), "needs root (CAP_AUDIT_READ)");
    let tmp = tempfile::tempdir().unwrap();
    let profile = write_profile(tmp.path(), "no-mkdir.json", NO_MKDIR);
    let dir = tmp.path().join("d");
    let out = run_with(true, &profile, &[busybox(), "mkdir", dir.to_str().unwrap()]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(dir.is_dir());
    let lines = summary(&stderr);
    assert_eq!(lines.len(), 1, "only mkdir:\n{stderr}");
    assert!(
        lines[0].syscall.starts_with("mkdir")
            && lines[0].calls == 1
            && lines[0].action == "SCMP_ACT_ERRNO",
        "{stderr}"
    );
    assert!(stderr.contains("1 call  SCMP_ACT_ERRNO"), "{stderr}");

    // Enforced, the same command is refused: the report was about this profile.
    let refused = run_with(
        false,
        &profile,
        &[busybox(), "mkdir", tmp.path().join("e").to_str().unwrap()],
    );
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        text(&refused.stderr).contains("Operation not permitted"),
        "{}",
        text(&refused.stderr)
    );

    // Nothing refused, nothing reported.
    let out = run_with(true, &profile, &[busybox(), "true"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(
        text(&out.stderr).contains("seccompctl: complain: nothing would have been denied"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn seccompctl_exits_with_the_commands_status() {
    skip_unless!(can_read_audit(), "needs root (CAP_AUDIT_READ)");
    let tmp = tempfile::tempdir().unwrap();
    let profile = write_profile(tmp.path(), "no-mkdir.json", NO_MKDIR);
    let out = run_with(true, &profile, &[busybox(), "sh", "-c", "exit 3"]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    // Killed by a signal: 128 + the signal, as a shell says.
    let out = run_with(true, &profile, &[busybox(), "sh", "-c", "kill -TERM $$"]);
    assert_eq!(out.status.code(), Some(128 + 15), "{}", text(&out.stderr));
}

#[test]
fn an_allowlist_learned_from_the_summary_runs_enforced() {
    skip_unless!(can_read_audit(), "needs root (CAP_AUDIT_READ)");
    let tmp = tempfile::tempdir().unwrap();
    let bb = busybox();
    let script = |dir: &Path| format!("mkdir {} && ls {} && echo ok", dir.display(), dir.display());

    // Nothing allowed: the summary names every syscall the command makes.
    let deny_all = write_profile(
        tmp.path(),
        "deny-all.json",
        r#"{"defaultAction": "SCMP_ACT_ERRNO"}"#,
    );
    let out = run_with(
        true,
        &deny_all,
        &[bb, "sh", "-c", &script(&tmp.path().join("a"))],
    );
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert_eq!(text(&out.stdout), "ok\n");
    let seen: BTreeSet<String> = summary(&stderr).into_iter().map(|l| l.syscall).collect();
    assert!(seen.contains("execve") && seen.len() > 5, "{stderr}");

    // Allow all of it but mkdir: complain mode then names mkdir alone.
    let names: Vec<&String> = seen.iter().filter(|n| !n.starts_with("mkdir")).collect();
    let allowlist = serde_json::json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "syscalls": [
            {"names": names, "action": "SCMP_ACT_ALLOW"},
            {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"}
        ]
    });
    let learned = write_profile(tmp.path(), "learned.json", &allowlist.to_string());
    let out = run_with(
        true,
        &learned,
        &[bb, "sh", "-c", &script(&tmp.path().join("b"))],
    );
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(tmp.path().join("b").is_dir());
    let lines = summary(&stderr);
    assert_eq!(lines.len(), 1, "mkdir alone:\n{stderr}");
    assert!(lines[0].syscall.starts_with("mkdir"), "{stderr}");
    assert_eq!(
        (lines[0].calls, lines[0].action.as_str()),
        (1, "SCMP_ACT_ERRNO")
    );

    // Enforced, that profile refuses mkdir and nothing else: the command gets as far as it.
    for i in 0..5 {
        let out = run_with(
            false,
            &learned,
            &[bb, "sh", "-c", &script(&tmp.path().join(format!("c{i}")))],
        );
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "run {i}: {stderr}");
        assert!(
            stderr.contains("mkdir: can't create directory")
                && stderr.contains("Operation not permitted"),
            "run {i}: {stderr}"
        );
    }
}

#[test]
fn without_cap_audit_read_the_command_does_not_run() {
    skip_unless!(can_read_audit(), "needs root (to drop CAP_AUDIT_READ)");
    use std::os::unix::process::CommandExt;
    let tmp = tempfile::tempdir().unwrap();
    let profile = write_profile(tmp.path(), "no-mkdir.json", NO_MKDIR);
    let marker = tmp.path().join("ran");
    let mut cmd = seccompctl();
    cmd.args(["run", "--complain", "--profile"])
        .arg(&profile)
        .args(["--", busybox(), "touch"])
        .arg(&marker);
    // SAFETY: between fork and exec the closure makes one system call and allocates nothing.
    unsafe {
        cmd.pre_exec(|| {
            // CAP_AUDIT_READ (37) out of the bounding set: root's exec does not get it.
            if libc::prctl(libc::PR_CAPBSET_DROP, 37, 0, 0, 0) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let out = run(cmd);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(!marker.exists(), "the command ran: {stderr}");
    assert_eq!(
        stderr.trim(),
        "seccompctl: --complain reads the kernel's seccomp audit records, which needs CAP_AUDIT_READ: run seccompctl as root"
    );
}
