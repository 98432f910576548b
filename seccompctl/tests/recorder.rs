//! Kernel tests (root): record real programs with the eBPF recorder through `seccompctl
//! record`, then run them under the learned profile with `seccompctl run` (and runc for
//! containers). Each program runs 20 times and must succeed every time; with a needed syscall
//! taken out of the profile, it must fail with EPERM.

mod common;
use common::*;
use std::path::Path;

/// The index of the rule that allows names with any arguments.
fn plain_allow(doc: &serde_json::Value) -> usize {
    doc["syscalls"]
        .as_array()
        .unwrap()
        .iter()
        .position(|r| r["action"] == "SCMP_ACT_ALLOW" && r.get("args").is_none())
        .expect("a plain ALLOW rule")
}

fn allowed(doc: &serde_json::Value) -> Vec<String> {
    doc["syscalls"][plain_allow(doc)]["names"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect()
}

fn without(dir: &Path, doc: &serde_json::Value, name: &str, drop: &str) -> std::path::PathBuf {
    let mut d = doc.clone();
    let names: Vec<serde_json::Value> = allowed(doc)
        .into_iter()
        .filter(|n| n != drop)
        .map(Into::into)
        .collect();
    assert_ne!(
        names.len(),
        allowed(doc).len(),
        "{drop} was not recorded for {name}"
    );
    d["syscalls"][plain_allow(doc)]["names"] = names.into();
    let p = dir.join(format!("{name}-without-{drop}.json"));
    std::fs::write(&p, serde_json::to_vec(&d).unwrap()).unwrap();
    p
}

fn twenty_times(profile: &Path, cmd: &[&str], expect_stdout: &str) {
    for i in 0..20 {
        let out = run_under(profile, cmd);
        assert!(
            out.status.success(),
            "run {i} of {cmd:?} failed: {}",
            text(&out.stderr)
        );
        assert_eq!(text(&out.stdout), expect_stdout, "run {i} of {cmd:?}");
    }
}

#[test]
fn records_and_enforces_local_programs() {
    skip_unless!(can_record(), "needs root and a BTF kernel");
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();

    // /bin/true
    let (p, doc) = record(dir, "true", &[], &["/bin/true"]);
    assert!(allowed(&doc).contains(&"execve".to_string()));
    twenty_times(&p, &["/bin/true"], "");

    // sh -c 'echo hi' (its exit status and stdout pass through record)
    let out = run(seccompctl()
        .args(["record", "--format", "oci", "-o"])
        .arg(dir.join("sh.json"))
        .args(["--", "sh", "-c", "echo hi; exit 7"]));
    assert_eq!(out.status.code(), Some(7));
    assert_eq!(text(&out.stdout), "hi\n");
    let (p, doc) = record(dir, "sh", &[], &["sh", "-c", "echo hi"]);
    twenty_times(&p, &["sh", "-c", "echo hi"], "hi\n");
    let out = run_under(&without(dir, &doc, "sh", "write"), &["sh", "-c", "echo hi"]);
    assert!(
        !out.status.success() && out.stdout.is_empty(),
        "echo without write: {out:?}"
    );

    // ls /
    let (p, doc) = record(dir, "ls", &[], &["ls", "/"]);
    let expected = text(&run(std::process::Command::new("ls").arg("/")).stdout);
    twenty_times(&p, &["ls", "/"], &expected);
    let out = run_under(&without(dir, &doc, "ls", "getdents64"), &["ls", "/"]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("Operation not permitted"),
        "{}",
        text(&out.stderr)
    );

    // a small Python script
    let script = dir.join("script.py");
    let scratch = dir.join("scratch");
    std::fs::write(
        &script,
        format!(
            "import os\nos.mkdir({0:?})\nos.rmdir({0:?})\nprint(sorted(os.listdir('/etc'))[:3])\n",
            scratch.display().to_string()
        ),
    )
    .unwrap();
    let script = script.to_str().unwrap();
    let (p, doc) = record(dir, "py", &[], &["python3", "-S", script]);
    let expected = text(&run(std::process::Command::new("python3").args(["-S", script])).stdout);
    twenty_times(&p, &["python3", "-S", script], &expected);
    let out = run_under(
        &without(dir, &doc, "py", "mkdir"),
        &["python3", "-S", script],
    );
    assert!(
        text(&out.stderr).contains("Operation not permitted"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn records_the_children_of_the_command() {
    skip_unless!(can_record(), "needs root and a BTF kernel");
    let tmp = tempfile::tempdir().unwrap();
    // mkdir runs in a child process of sh: its syscall must be in the profile.
    let target = tmp.path().join("made");
    let cmd = format!("mkdir {}; rmdir {}", target.display(), target.display());
    let (_, doc) = record(tmp.path(), "child", &[], &["sh", "-c", &cmd]);
    let names = allowed(&doc);
    assert!(
        names.contains(&"mkdir".to_string()) && names.contains(&"rmdir".to_string()),
        "{names:?}"
    );
}

#[test]
fn record_without_a_command_is_a_clear_error() {
    let out = run(seccompctl().args(["record", "-o", "/dev/null"]));
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("nothing to record"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn container_profiles_match_the_kernel_and_always_start_under_runc_and_crun() {
    skip_unless!(can_record(), "needs root and a BTF kernel");
    skip_unless!(which("runc").is_some(), "runc is not installed");
    let tools = tempfile::tempdir().unwrap();
    let mut runtimes = vec![("runc", std::path::PathBuf::from("runc"))];
    match common::crun(tools.path()) {
        Some(crun) => runtimes.push(("crun", crun)),
        None => eprintln!("SKIP (crun part): crun is not installed"),
    }
    for (rt, runtime) in &runtimes {
        for nnp in [true, false] {
            container_profile_matches_the_kernel(rt, runtime, nnp);
        }
    }
}

fn container_profile_matches_the_kernel(rt: &str, runtime: &Path, nnp: bool) {
    let tmp = tempfile::tempdir().unwrap();
    let bundle = busybox_bundle(tmp.path(), &["sh", "-c", "echo hi"], nnp, None);
    let out_path = tmp.path().join("learned.json");
    let out = run(seccompctl()
        .args(["record", "--format", "oci", "--id"])
        .arg(cid(&format!("rec{rt}{nnp}")))
        .arg("--runtime")
        .arg(runtime)
        .arg("--runc-bundle")
        .arg(&bundle)
        .arg("-o")
        .arg(&out_path));
    assert!(out.status.success(), "{rt}: {}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "hi\n");
    let learned: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&out_path).unwrap()).unwrap();
    let learned_names = allowed(&learned);
    for runtime_setup in [
        "mount",
        "pivot_root",
        "sethostname",
        "keyctl",
        "seccomp",
        "umount2",
    ] {
        assert!(
            !learned_names.iter().any(|n| n == runtime_setup),
            "{rt}: {runtime_setup} is the runtime's own set-up: {learned_names:?}"
        );
    }

    // The kernel's own count: run the container under SCMP_ACT_LOG and read the audit
    // records (kmsg), distinct syscalls of the container's processes.
    let kernel = kernel_logged_syscalls(tmp.path(), runtime, nnp);
    let diff = learned_names.len() as i64 - kernel.len() as i64;
    eprintln!(
        "{rt} nnp={nnp}: recorded {} syscalls, kernel reported {} ({diff:+})",
        learned_names.len(),
        kernel.len()
    );
    let missing: Vec<_> = kernel
        .iter()
        .filter(|k| !learned_names.contains(k))
        .collect();
    assert!(
        missing.is_empty(),
        "{rt} nnp={nnp}: the kernel saw syscalls the recording lacks: {missing:?}"
    );
    // What the recording has beyond this start's kernel log: at most two calls, besides what
    // runc's init makes in some starts only (its Go runtime; what older runc versions made).
    let occasional: &[&str] = if rt == "runc" {
        seccomp_profile::builtin::RUNC_NOT_EVERY_START
    } else {
        &[]
    };
    let unexplained: Vec<_> = learned_names
        .iter()
        .filter(|n| !kernel.contains(n) && !occasional.contains(&n.as_str()))
        .collect();
    assert!(
        unexplained.len() <= 2,
        "{rt} nnp={nnp}: recorded {learned_names:?} vs kernel {kernel:?}"
    );

    // Enforced: 20 starts out of 20.
    let bundle = busybox_bundle(
        tmp.path(),
        &["sh", "-c", "echo hi"],
        nnp,
        Some(learned.clone()),
    );
    for i in 0..20 {
        let (code, stdout, stderr) =
            common::oci_run(runtime, &bundle, &cid(&format!("enf{rt}{nnp}{i}")));
        assert_eq!(
            (code, stdout.as_str()),
            (0, "hi\n"),
            "{rt} nnp={nnp} start {i}: {stderr}"
        );
    }
    // Outside the recording: EPERM.
    let bundle = busybox_bundle(
        tmp.path(),
        &["sh", "-c", "echo hi; mkdir /tmp/x"],
        nnp,
        Some(learned),
    );
    let (code, stdout, stderr) = common::oci_run(runtime, &bundle, &cid(&format!("deny{rt}{nnp}")));
    assert_eq!(stdout, "hi\n");
    assert_ne!(code, 0);
    assert!(stderr.contains("Operation not permitted"), "{rt}: {stderr}");
}

/// Distinct syscall names the kernel logs for a busybox `sh -c 'echo hi'` container run under
/// an SCMP_ACT_LOG profile (what the runtime's init and the program make after the filter is
/// on).
fn kernel_logged_syscalls(dir: &Path, runtime: &Path, nnp: bool) -> Vec<String> {
    let log_all = serde_json::json!({"defaultAction": "SCMP_ACT_LOG"});
    let bundle_dir = dir.join("log-bundle");
    std::fs::create_dir_all(&bundle_dir).unwrap();
    let bundle = busybox_bundle(&bundle_dir, &["sh", "-c", "echo hi"], nnp, Some(log_all));
    // printk's rate limit would drop most records without auditd.
    let old = std::fs::read_to_string("/proc/sys/kernel/printk_ratelimit").unwrap_or_default();
    std::fs::write("/proc/sys/kernel/printk_ratelimit", "0").unwrap();
    let id = cid(&format!("log{nnp}"));
    let marker = format!("seccomp-operator-test-{id}-{}", runtime.display());
    std::fs::write("/dev/kmsg", &marker).unwrap();
    let (code, _, stderr) = common::oci_run(runtime, &bundle, &id);
    assert_eq!(code, 0, "{stderr}");
    std::thread::sleep(std::time::Duration::from_millis(300));
    let all = text(&run(std::process::Command::new("dmesg")).stdout);
    let log = all.rsplit(&marker).next().unwrap_or_default().to_owned();
    let _ = std::fs::write("/proc/sys/kernel/printk_ratelimit", old.trim());
    // The only filtered processes: the runtime's init (runc's re-exec'd Go init, or crun's
    // forked child) and then the program.
    let mut names: Vec<String> = log
        .lines()
        .filter(|l| {
            l.contains("type=1326")
                && ["comm=\"runc:[2:INIT]\"", "comm=\"crun\"", "comm=\"sh\""]
                    .iter()
                    .any(|c| l.contains(c))
        })
        .filter_map(|l| {
            l.split("syscall=")
                .nth(1)?
                .split_whitespace()
                .next()?
                .parse::<i32>()
                .ok()
        })
        .filter_map(|nr| seccomp_filter::syscall_name(seccomp_profile::Arch::native(), nr))
        .collect();
    names.sort();
    names.dedup();
    assert!(
        names.len() > 10,
        "no audit records in the kernel log: {log}"
    );
    names
}

#[test]
fn record_says_plainly_that_it_needs_root() {
    skip_unless!(
        is_root() && which("setpriv").is_some(),
        "needs root (to drop to nobody) and setpriv"
    );
    // The binary must be reachable by nobody: copy it somewhere world-readable.
    let tmp = tempfile::tempdir().unwrap();
    let bin = tmp.path().join("seccompctl");
    std::fs::copy(env!("CARGO_BIN_EXE_seccompctl"), &bin).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = run(std::process::Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--inh-caps=-all",
            "--bounding-set=-all",
        ])
        .arg(&bin)
        .args(["record", "-o", "/dev/null", "--", "/bin/true"]));
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(err.contains("the eBPF recorder needs root"), "{err}");
}

#[test]
fn a_namespace_watched_after_its_exec_keeps_recording_the_program() {
    // The in-cluster path: the armed recorder meets a new namespace, the program execs, and
    // only then is the namespace matched and watched. What follows is the program's.
    skip_unless!(can_record(), "needs root and a BTF kernel");
    use syscall_recorder::{mntns_of, Phase, Recorder};
    let mut rec = Recorder::load().unwrap();
    rec.arm(true).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("made-later");
    let mut child = std::process::Command::new("unshare")
        .args(["-m", "sh", "-c"])
        .arg(format!("sleep 0.5; mkdir {0}; rmdir {0}", target.display()))
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(250));
    let ns = mntns_of(&child.id().to_string()).unwrap();
    assert!(
        rec.pending_namespaces().contains(&ns),
        "the armed recorder met the namespace"
    );
    rec.watch(ns).unwrap();
    rec.arm(false).unwrap();
    assert!(child.wait().unwrap().success());
    let r = rec.take(ns).unwrap();
    let after = r.all_names(Phase::AfterExec);
    assert!(
        after.contains("mkdir") && after.contains("rmdir"),
        "{after:?}"
    );
    assert_ne!(
        r.generation(),
        0,
        "the namespace's unique id tells a reused inode number apart"
    );
    // (The cgroup name noted at exec is the unified hierarchy's leaf: none for a host process
    // in the root cgroup; the container ID in a cluster, which the e2e journeys check.)
    let _ = r.cgroup_name();
}

#[test]
fn an_ignored_namespace_stays_ignored_and_can_still_be_watched() {
    // While armed, userspace ignores the namespaces it does not want; they must stay out of
    // `pending` (the kernel side skips them by namespace and generation), and a namespace
    // ignored by mistake can still be watched later.
    skip_unless!(can_record(), "needs root and a BTF kernel");
    use syscall_recorder::{mntns_of, Phase, Recorder};
    let mut rec = Recorder::load().unwrap();
    rec.arm(true).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("late");
    let mut child = std::process::Command::new("unshare")
        .args(["-m", "sh", "-c"])
        .arg(format!(
            "while :; do ls / >/dev/null; sleep 0.05; [ -e {0}.go ] && break; done; mkdir {0}; rmdir {0}",
            target.display()
        ))
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(250));
    let ns = mntns_of(&child.id().to_string()).unwrap();
    assert!(rec.pending_namespaces().contains(&ns));
    rec.ignore(ns).unwrap();
    // The loop keeps making syscalls; the namespace does not come back as pending.
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert!(
        !rec.pending_namespaces().contains(&ns),
        "an ignored namespace came back as pending"
    );
    rec.watch(ns).unwrap();
    std::fs::write(dir.path().join("late.go"), "").unwrap();
    assert!(child.wait().unwrap().success());
    rec.arm(false).unwrap();
    let r = rec.take(ns).unwrap();
    let after = r.all_names(Phase::AfterExec);
    assert!(
        after.contains("mkdir") && after.contains("rmdir"),
        "watched after being ignored: {after:?}"
    );
}

#[test]
fn a_pinned_recorder_survives_its_process_and_is_taken_over() {
    // The agent-restart path: the first recorder pins its maps and links and goes away; the
    // programs keep recording; the next one takes over the maps, the watched namespaces and
    // their notes, and loses nothing made before, during or after the gap.
    skip_unless!(can_record(), "needs root and a BTF kernel");
    skip_unless!(
        std::path::Path::new("/sys/fs/bpf").exists(),
        "bpffs is not mounted on /sys/fs/bpf"
    );
    use syscall_recorder::{mntns_of, pin_dir, Phase, Recorder};
    let root = std::path::PathBuf::from(format!(
        "/sys/fs/bpf/seccomp-operator-test-{}",
        std::process::id()
    ));
    std::fs::create_dir_all(&root).unwrap();
    let pins = pin_dir(&root);
    let dir = tempfile::tempdir().unwrap();
    let step = |name: &str| dir.path().join(name);
    // The workload: waits for each step's file, then makes a distinctive syscall.
    let script = format!(
        "until [ -e {a} ]; do sleep 0.02; done; mkdir {d}; \
         until [ -e {b} ]; do sleep 0.02; done; rmdir {d}; \
         until [ -e {c} ]; do sleep 0.02; done; ln -s x {l}",
        a = step("a").display(),
        b = step("b").display(),
        c = step("c").display(),
        d = step("d").display(),
        l = step("l").display(),
    );
    let mut child = std::process::Command::new("unshare")
        .args(["-m", "sh", "-c", &script])
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(200));
    let ns = mntns_of(&child.id().to_string()).unwrap();

    let mut first = Recorder::load_pinned(&pins).unwrap();
    assert!(!first.resumed());
    first.watch(ns).unwrap();
    first.set_note(ns, b"container abc").unwrap();
    std::fs::write(step("a"), "").unwrap(); // mkdir, first process alive
    std::thread::sleep(std::time::Duration::from_millis(200));
    drop(first);
    assert!(Recorder::pinned_in(&pins));
    std::fs::write(step("b"), "").unwrap(); // rmdir, no process holds the recorder
    std::thread::sleep(std::time::Duration::from_millis(200));

    let mut second = Recorder::load_pinned(&pins).unwrap();
    assert!(second.resumed());
    let watched: Vec<u64> = second.watched().into_iter().map(|(n, _)| n).collect();
    assert_eq!(watched, vec![ns]);
    assert_eq!(second.note(ns).as_deref(), Some(&b"container abc"[..]));
    std::fs::write(step("c"), "").unwrap(); // symlink, after the takeover
    assert!(child.wait().unwrap().success());
    let r = second.take(ns).unwrap();
    let mut names = r.all_names(Phase::BeforeExec);
    names.extend(r.all_names(Phase::AfterExec));
    for want in ["mkdir", "rmdir", "symlinkat"] {
        assert!(names.contains(want), "{want} missing: {names:?}");
    }
    assert_eq!(second.note(ns), None, "take removes the note");
    second.unpin().unwrap();
    assert!(!Recorder::pinned_in(&pins));
    assert!(!pins.exists());
    let _ = std::fs::remove_dir(&root);
}

#[test]
fn a_runtime_reexecuting_itself_first_does_not_start_the_programs_phase() {
    // runc 1.2+ re-executes itself (/proc/self/exe) inside a user-namespaced container's new
    // mount namespace before the container's program, from outside the container's cgroup.
    // Taken for the program's exec, it moved the phase too early and noted the wrong cgroup,
    // so the agent never matched the container (seen on the local cluster: a `hostUsers:
    // false` pod was never recorded).
    skip_unless!(can_record(), "needs root and a BTF kernel");
    use syscall_recorder::{mntns_of, Phase, Recorder};
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("selfexec");
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/programs/selfexec.c");
    let out = run(std::process::Command::new("cc")
        .args(["-O1", "-Wall", "-Werror", "-o"])
        .arg(&bin)
        .arg(&src));
    assert!(out.status.success(), "cc: {}", text(&out.stderr));
    let mut rec = Recorder::load().unwrap();
    rec.arm(true).unwrap();
    let target = dir.path().join("made");
    let mut child = std::process::Command::new(&bin)
        .args(["/bin/sh", "-c"])
        .arg(format!("sleep 0.5; mkdir {0}; rmdir {0}", target.display()))
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(250));
    let ns = mntns_of(&child.id().to_string()).unwrap();
    rec.watch(ns).unwrap();
    rec.arm(false).unwrap();
    assert!(child.wait().unwrap().success());
    let r = rec.take(ns).unwrap();
    assert!(r.execed());
    let before = r.all_names(Phase::BeforeExec);
    let after = r.all_names(Phase::AfterExec);
    assert!(
        before.contains("getcpu"),
        "the helper's own syscall is set-up: {before:?}"
    );
    assert!(
        !after.contains("getcpu"),
        "the helper is not the program: {after:?}"
    );
    assert!(
        after.contains("mkdir") && after.contains("rmdir"),
        "{after:?}"
    );
}
