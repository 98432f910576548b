//! Runtime tests (root + runc): the file the installer writes is what runc enforces, exactly
//! as containerd passes a Localhost profile to runc (the file's JSON becomes the bundle's
//! `linux.seccomp`).

mod common;
use common::*;
use profile_installer::{paths::ProfileRoot, Installer};

fn install(root: &std::path::Path, ns: &str, name: &str, profile: &str) -> serde_json::Value {
    let spec = seccomp_profile::parse_profile(profile, &seccomp_profile::EvalContext::host())
        .unwrap()
        .spec;
    let mut inst = Installer::new(ProfileRoot::new(root)).unwrap();
    let report = inst.sync(&[(ns.into(), name.into(), spec)]);
    assert_eq!(report.written, 1, "{report:?} {:?}", inst.status());
    let file = root
        .join("seccomp/operator")
        .join(ns)
        .join(format!("{name}.json"));
    serde_json::from_slice(&std::fs::read(file).unwrap()).unwrap()
}

fn runtime_ok() -> bool {
    let ok = is_root() && which("runc").is_some();
    if !ok && std::env::var_os("CI").is_some() && std::env::var_os("SECCOMP_ALLOW_SKIP").is_none() {
        panic!("CI must run the runtime tests: need root and runc");
    }
    ok
}

#[test]
fn runc_enforces_the_installed_file() {
    skip_unless!(runtime_ok(), "needs root and runc");
    let tmp = tempfile::tempdir().unwrap();
    let kubelet = tmp.path().join("kubelet");
    let seccomp = install(
        &kubelet,
        "shop",
        "no-mkdir",
        r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir","mkdirat"],"action":"SCMP_ACT_ERRNO"}]}"#,
    );
    let bundle_dir = tmp.path().join("b1");
    std::fs::create_dir_all(&bundle_dir).unwrap();
    let bundle = busybox_bundle(
        &bundle_dir,
        &["sh", "-c", "echo allowed; mkdir /tmp/x"],
        true,
        Some(seccomp),
    );
    let (code, stdout, stderr) = runc_run(&bundle, &cid("nomkdir"));
    assert_eq!(stdout, "allowed\n");
    assert_ne!(code, 0);
    assert!(
        stderr.contains("mkdir: can't create directory '/tmp/x': Operation not permitted"),
        "{stderr}"
    );

    // Without the profile the same container can mkdir: the denial is the profile's doing.
    let bundle = busybox_bundle(
        &bundle_dir,
        &["sh", "-c", "echo allowed; mkdir /tmp/x"],
        true,
        None,
    );
    let (code, _, stderr) = runc_run(&bundle, &cid("free"));
    assert_eq!(code, 0, "{stderr}");
}

#[test]
fn a_deny_all_profile_fails_the_container_start() {
    skip_unless!(runtime_ok(), "needs root and runc");
    let tmp = tempfile::tempdir().unwrap();
    let seccomp = install(
        &tmp.path().join("kubelet"),
        "shop",
        "deny-all",
        r#"{"defaultAction":"SCMP_ACT_ERRNO"}"#,
    );
    let bundle = busybox_bundle(
        tmp.path(),
        &["sh", "-c", "echo should-not-run"],
        true,
        Some(seccomp),
    );
    let (code, stdout, stderr) = runc_run(&bundle, &cid("denyall"));
    assert_ne!(code, 0, "a deny-all container must not start");
    assert!(stdout.is_empty(), "{stdout}");
    assert!(!stderr.is_empty());

    // seccompctl says why before anyone tries.
    let file = tmp.path().join("deny-all.json");
    std::fs::write(&file, r#"{"defaultAction":"SCMP_ACT_ERRNO"}"#).unwrap();
    let out = run(seccompctl().arg("validate").arg(&file));
    assert!(
        text(&out.stdout)
            .contains("execve is not allowed: no program can start under this profile"),
        "{}",
        text(&out.stdout)
    );
}
