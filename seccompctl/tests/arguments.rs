//! Kernel tests (root) of argument-aware recording: what a recorded program never did with
//! clone, unshare and socket fails with EPERM under its profile, what it did keeps working, and
//! real programs (Python threads and subprocesses, git, a multi-threaded redis) pass their own
//! checks under the profiles recorded from them, clone3 answering ENOSYS.

mod common;
use common::*;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Compile `programs/argprobe.c` into `dir`.
fn argprobe(dir: &Path) -> PathBuf {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/programs/argprobe.c");
    let bin = dir.join("argprobe");
    let out = run(Command::new("cc")
        .args(["-O1", "-Wall", "-Werror", "-o"])
        .arg(&bin)
        .arg(&src));
    assert!(out.status.success(), "cc: {}", text(&out.stderr));
    bin
}

/// The rules of `doc` that name `syscall`.
fn rules_for<'a>(doc: &'a serde_json::Value, syscall: &str) -> Vec<&'a serde_json::Value> {
    doc["syscalls"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["names"].as_array().unwrap().iter().any(|n| n == syscall))
        .collect()
}

/// Docker's default profile from the shared corpus (CI has it beside the clone).
fn docker_default() -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus/moby-default.json");
    if p.exists() {
        return Some(p);
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "CI must have ../shared/corpus beside the repository"
    );
    eprintln!("SKIP (comparison only): {} not found", p.display());
    None
}

/// `seccompctl compare PROFILE --default <Docker's>`: (exit code, output).
fn compare_with_docker(profile: &Path) -> Option<(i32, String)> {
    let reference = docker_default()?;
    let out = run(seccompctl()
        .arg("compare")
        .arg(profile)
        .arg("--default")
        .arg(reference));
    Some((out.status.code().unwrap_or(-1), text(&out.stdout)))
}

/// The probe's lines as (attempt, result).
fn results(out: &std::process::Output) -> Vec<(String, String)> {
    text(&out.stdout)
        .lines()
        .filter_map(|l| l.rsplit_once(' '))
        .map(|(a, b)| (a.to_owned(), b.to_owned()))
        .collect()
}

const PROBES: [&str; 6] = [
    "clone(CLONE_NEWUSER)",
    "clone(CLONE_NEWNET)",
    "unshare(CLONE_NEWUSER)",
    "socket(AF_PACKET)",
    "socket(AF_NETLINK)",
    "socket(AF_INET,SOCK_RAW)",
];

#[test]
fn what_the_recorded_program_never_did_fails_with_eperm() {
    skip_unless!(can_record(), "needs root and a BTF kernel");
    let tmp = tempfile::tempdir().unwrap();
    let bin = argprobe(tmp.path());
    let bin = bin.to_str().unwrap();

    // Unconfined (root) every probe succeeds: the test can fail.
    let free = results(&run(Command::new(bin).arg("probe")));
    for p in PROBES {
        assert!(
            free.contains(&(p.to_owned(), "ok".to_owned())),
            "{p} fails unconfined: {free:?}"
        );
    }

    let (profile, doc) = record(tmp.path(), "work", &[], &[bin, "work"]);
    let clone = rules_for(&doc, "clone");
    assert_eq!(clone.len(), 1, "{clone:?}");
    assert_eq!(clone[0]["args"][0]["op"], "SCMP_CMP_MASKED_EQ");
    assert_eq!(clone[0]["args"][0]["value"], 0x7E02_0000u64);
    assert_eq!(clone[0]["args"][0]["valueTwo"], 0);
    let socket = rules_for(&doc, "socket");
    assert_eq!(socket.len(), 1, "{socket:?}");
    assert_eq!(socket[0]["args"][0]["value"], 2, "AF_INET: {socket:?}");
    assert_eq!(
        socket[0]["args"][1]["valueTwo"], 1,
        "SOCK_STREAM: {socket:?}"
    );

    for i in 0..10 {
        let out = run_under(&profile, &[bin, "probe"]);
        assert!(out.status.success(), "run {i}: {}", text(&out.stderr));
        let got = results(&out);
        assert!(got.contains(&("work".into(), "ok".into())), "{got:?}");
        for p in PROBES {
            assert!(
                got.contains(&(p.to_owned(), "EPERM".to_owned())),
                "run {i}: {p} is not refused: {got:?}"
            );
        }
    }

    if let Some((code, out)) = compare_with_docker(&profile) {
        assert_eq!(code, 0, "{out}");
    }
    // validate compiles the argument rules with libseccomp; convert keeps them.
    let out = run(seccompctl().arg("validate").arg(&profile));
    assert!(out.status.success(), "{}", text(&out.stdout));
    let out = run(seccompctl().args(["convert", "--to", "cr"]).arg(&profile));
    assert!(out.status.success(), "{}", text(&out.stderr));
    let cr = tmp.path().join("work-cr.yaml");
    std::fs::write(&cr, &out.stdout).unwrap();
    let out = run(seccompctl().arg("diff").arg(&profile).arg(&cr));
    assert!(
        out.status.success(),
        "convert changed the rules: {}",
        text(&out.stdout)
    );

    // Without argument rules (the profile before argument classes) the holes are open, and
    // the comparison with Docker's default names them.
    let (plain, _) = record(tmp.path(), "plain", &["--names-only"], &[bin, "work"]);
    if let Some((code, out)) = compare_with_docker(&plain) {
        assert_eq!(code, 1, "{out}");
        assert!(out.contains("clone: SCMP_ACT_ALLOW;"), "{out}");
        assert!(out.contains("socket: SCMP_ACT_ALLOW;"), "{out}");
    }
    let got = results(&run_under(&plain, &[bin, "probe"]));
    for p in [
        "clone(CLONE_NEWUSER)",
        "clone(CLONE_NEWNET)",
        "socket(AF_PACKET)",
    ] {
        assert!(
            got.contains(&(p.to_owned(), "ok".to_owned())),
            "{p} with names only: {got:?}"
        );
    }
}

#[test]
fn a_program_that_creates_a_user_namespace_keeps_that_ability() {
    skip_unless!(can_record(), "needs root and a BTF kernel");
    let tmp = tempfile::tempdir().unwrap();
    let bin = argprobe(tmp.path());
    let bin = bin.to_str().unwrap();
    let (profile, doc) = record(tmp.path(), "userns", &[], &[bin, "userns"]);
    let seen: Vec<&serde_json::Value> = rules_for(&doc, "clone")
        .into_iter()
        .map(|r| &r["args"][0]["valueTwo"])
        .collect();
    assert!(
        seen.contains(&&serde_json::json!(0x1000_0000u64)),
        "{seen:?}"
    );
    for i in 0..10 {
        let out = run_under(&profile, &[bin, "userns"]);
        assert!(out.status.success(), "run {i}: {}", text(&out.stdout));
    }
    // Another namespace than the recorded one is still refused.
    let got = results(&run_under(&profile, &[bin, "probe"]));
    assert!(
        got.contains(&("clone(CLONE_NEWNET)".into(), "EPERM".into())),
        "{got:?}"
    );
    assert!(
        got.contains(&("clone(CLONE_NEWUSER)".into(), "ok".into())),
        "{got:?}"
    );
    // The workload really creates a user namespace: the comparison says so.
    if let Some((code, out)) = compare_with_docker(&profile) {
        assert_eq!(code, 1, "{out}");
        assert!(out.contains("0x10000000"), "{out}");
    }
}

/// Record `cmd`, then run it under the profile `times` times; `check` judges each output.
fn record_and_enforce(
    dir: &Path,
    name: &str,
    cmd: &[&str],
    times: usize,
    check: impl Fn(&std::process::Output) -> Result<(), String>,
) -> serde_json::Value {
    let (profile, doc) = record(dir, name, &[], cmd);
    if let Some((code, out)) = compare_with_docker(&profile) {
        assert_eq!(
            code, 0,
            "{name} recorded looser than Docker's default: {out}"
        );
    }
    for i in 0..times {
        let out = run_under(&profile, cmd);
        if let Err(why) = check(&out) {
            panic!(
                "{name} run {i} under its profile: {why}\nstdout: {}\nstderr: {}",
                text(&out.stdout),
                text(&out.stderr)
            );
        }
    }
    doc
}

/// clone3 answers ENOSYS and clone is allowed only without namespace bits.
fn assert_clone3_falls_back(name: &str, doc: &serde_json::Value) {
    let c3 = rules_for(doc, "clone3");
    assert_eq!(c3.len(), 1, "{name}: {c3:?}");
    assert_eq!(c3[0]["action"], "SCMP_ACT_ERRNO", "{name}: {c3:?}");
    assert_eq!(c3[0]["errnoRet"], 38, "{name}: {c3:?}");
    for r in rules_for(doc, "clone") {
        assert_eq!(r["args"][0]["valueTwo"], 0, "{name}: {r:?}");
    }
}

#[test]
fn python_with_threads_subprocesses_and_posix_spawn_runs_under_its_argument_rules() {
    skip_unless!(can_record(), "needs root and a BTF kernel");
    let tmp = tempfile::tempdir().unwrap();
    let script = tmp.path().join("work.py");
    std::fs::write(
        &script,
        "import subprocess, threading, socket\n\
         out = []\n\
         ts = [threading.Thread(target=lambda i=i: out.append(i * i)) for i in range(8)]\n\
         [t.start() for t in ts]\n\
         [t.join() for t in ts]\n\
         s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM); s.close()\n\
         r = subprocess.run(['sh', '-c', 'echo child'], capture_output=True, text=True)\n\
         import os\n\
         pid = os.posix_spawn('/bin/true', ['/bin/true'], {})\n\
         assert os.waitpid(pid, 0)[1] == 0\n\
         print(sum(out), r.stdout.strip())\n",
    )
    .unwrap();
    let script = script.to_str().unwrap();
    let doc = record_and_enforce(tmp.path(), "python", &["python3", script], 10, |out| {
        (out.status.success() && text(&out.stdout) == "140 child\n")
            .then_some(())
            .ok_or_else(|| format!("exit {:?}", out.status))
    });
    assert_clone3_falls_back("python", &doc);
}

#[test]
fn git_clone_of_a_local_repository_runs_under_its_argument_rules() {
    skip_unless!(can_record(), "needs root and a BTF kernel");
    skip_unless!(
        which("git").is_some() || std::env::var_os("CI").is_some(),
        "git is not installed"
    );
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    let git = |args: &[&str]| {
        let out = run(Command::new("git")
            .args(["-c", "user.name=t", "-c", "user.email=t@example.invalid"])
            .args(args));
        assert!(out.status.success(), "git {args:?}: {}", text(&out.stderr));
    };
    git(&["init", "-q", src.to_str().unwrap()]);
    std::fs::write(src.join("file"), "content\n").unwrap();
    git(&["-C", src.to_str().unwrap(), "add", "file"]);
    git(&["-C", src.to_str().unwrap(), "commit", "-q", "-m", "one"]);
    // Each run clones into a fresh directory and reads the file back.
    let script = format!(
        "d=$(mktemp -d {0}/dst.XXXXXX) && git clone -q --no-hardlinks {0}/src \"$d/c\" && cat \"$d/c/file\"",
        tmp.path().display()
    );
    let doc = record_and_enforce(tmp.path(), "git", &["sh", "-c", &script], 5, |out| {
        (out.status.success() && text(&out.stdout) == "content\n")
            .then_some(())
            .ok_or_else(|| format!("exit {:?}", out.status))
    });
    assert!(!rules_for(&doc, "clone").is_empty());
}

#[test]
fn a_multithreaded_redis_server_runs_under_its_argument_rules() {
    skip_unless!(can_record(), "needs root and a BTF kernel");
    skip_unless!(
        which("redis-server").is_some() || std::env::var_os("CI").is_some(),
        "redis-server is not installed (hack/deps.sh test installs it)"
    );
    let tmp = tempfile::tempdir().unwrap();
    // The server (with its background I/O threads) and its client in one recorded command. The
    // shell always waits for a server that is still running (a blocking wait: rt_sigsuspend),
    // so the recorded and the enforced runs take the same path.
    let script = format!(
        "s={0}/redis.sock; redis-server --port 0 --unixsocket $s --save '' --appendonly no \
         --io-threads 2 --daemonize no --dir {0} >{0}/redis.log 2>&1 & \
         for i in $(seq 100); do redis-cli -s $s ping >/dev/null 2>&1 && break; sleep 0.05; done; \
         redis-cli -s $s set k v >/dev/null && redis-cli -s $s get k; \
         (sleep 0.3; redis-cli -s $s shutdown nosave >/dev/null 2>&1) & wait",
        tmp.path().display()
    );
    let doc = record_and_enforce(tmp.path(), "redis", &["sh", "-c", &script], 3, |out| {
        (out.status.success() && text(&out.stdout) == "v\n")
            .then_some(())
            .ok_or_else(|| format!("exit {:?}", out.status))
    });
    assert_clone3_falls_back("redis", &doc);
}
