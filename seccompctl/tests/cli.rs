//! The CLI's contract (no root needed): `install` keeps what it is not given unless
//! `--prune`, refuses names that cannot be file names without writing anything, and exit codes
//! are 0 ok, 1 invalid or different, 2 usage or I/O error.

mod common;
use common::*;
use std::path::{Path, PathBuf};

fn profile(dir: &Path, name: &str, syscall: &str) -> PathBuf {
    let p = dir.join(format!("{name}.yaml"));
    std::fs::write(
        &p,
        format!(
            "apiVersion: seccomp-operator.dev/v1alpha1\nkind: SeccompProfile\nmetadata:\n  name: {name}\n  namespace: shop\nspec:\n  defaultAction: SCMP_ACT_ERRNO\n  syscalls:\n    - names: [{syscall}]\n      action: SCMP_ACT_ALLOW\n"
        ),
    )
    .unwrap();
    p
}

fn installed(root: &Path) -> Vec<String> {
    let dir = root.join("seccomp/operator/shop");
    let mut v: Vec<String> = std::fs::read_dir(&dir)
        .map(|d| {
            d.filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

fn install(root: &Path, extra: &[&str], files: &[&PathBuf]) -> std::process::Output {
    run(seccompctl()
        .arg("install")
        .arg("--kubelet-root")
        .arg(root)
        .args(extra)
        .args(files))
}

#[test]
fn install_keeps_what_it_is_not_given_unless_pruning() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("kubelet");
    let a = profile(tmp.path(), "a", "read");
    let b = profile(tmp.path(), "b", "write");
    assert!(install(&root, &[], &[&a, &b]).status.success());
    assert_eq!(installed(&root), ["a.json", "b.json"]);
    // A partial set, and no set at all, remove nothing.
    assert!(install(&root, &[], &[&a]).status.success());
    assert!(install(&root, &[], &[]).status.success());
    assert_eq!(installed(&root), ["a.json", "b.json"]);
    // --prune: exactly what is given.
    assert!(install(&root, &["--prune"], &[&a]).status.success());
    assert_eq!(installed(&root), ["a.json"]);
    assert!(install(&root, &["--prune"], &[]).status.success());
    assert_eq!(installed(&root), Vec::<String>::new());
}

#[test]
fn install_refuses_names_that_cannot_be_file_names_and_writes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("kubelet");
    let good = profile(tmp.path(), "good", "read");
    let bad = tmp.path().join("Bad_Name.json");
    std::fs::write(
        &bad,
        r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["read"],"action":"SCMP_ACT_ALLOW"}]}"#,
    )
    .unwrap();
    let out = install(&root, &["--namespace", "shop"], &[&good, &bad]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(err.contains("Bad_Name.json"), "{err}");
    assert!(err.contains("shop/Bad_Name cannot be installed"), "{err}");
    assert!(err.contains("nothing installed"), "{err}");
    assert_eq!(installed(&root), Vec::<String>::new());
}

#[test]
fn exit_codes_and_version() {
    let tmp = tempfile::tempdir().unwrap();
    let a = profile(tmp.path(), "a", "read");
    let b = profile(tmp.path(), "b", "write");
    let missing = tmp.path().join("missing.json");
    let code = |args: &[&std::ffi::OsStr]| run(seccompctl().args(args)).status.code();
    assert_eq!(code(&["validate".as_ref(), a.as_os_str()]), Some(0));
    assert_eq!(
        code(&["diff".as_ref(), a.as_os_str(), a.as_os_str()]),
        Some(0)
    );
    assert_eq!(
        code(&["diff".as_ref(), a.as_os_str(), b.as_os_str()]),
        Some(1)
    );
    let invalid = tmp.path().join("invalid.json");
    std::fs::write(&invalid, r#"{"defaultAction":"SCMP_ACT_NOPE"}"#).unwrap();
    assert_eq!(code(&["validate".as_ref(), invalid.as_os_str()]), Some(1));
    // I/O and usage errors are 2.
    assert_eq!(
        code(&["diff".as_ref(), a.as_os_str(), missing.as_os_str()]),
        Some(2)
    );
    assert_eq!(code(&["validate".as_ref(), missing.as_os_str()]), Some(2));
    assert_eq!(code(&["no-such-command".as_ref()]), Some(2));
    let v = run(seccompctl().arg("--version"));
    assert!(
        text(&v.stdout).starts_with("seccompctl "),
        "{}",
        text(&v.stdout)
    );
}

#[test]
fn validate_and_diff_report_json_for_ci() {
    let tmp = tempfile::tempdir().unwrap();
    let a = profile(tmp.path(), "a", "read");
    let b = profile(tmp.path(), "b", "write");
    let invalid = tmp.path().join("invalid.json");
    std::fs::write(&invalid, r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["nope_not_a_syscall"],"action":"SCMP_ACT_ALLOW"}]}"#).unwrap();
    let out = run(seccompctl()
        .args(["validate", "-o", "json"])
        .arg(&a)
        .arg(&invalid));
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v[0]["result"], "valid");
    assert_eq!(v[0]["names"], 1);
    assert_eq!(v[1]["result"], "invalid");
    assert!(
        v[1]["errors"][0]
            .as_str()
            .unwrap()
            .contains("nope_not_a_syscall"),
        "{v}"
    );

    let out = run(seccompctl().args(["diff", "-o", "json"]).arg(&a).arg(&b));
    assert_eq!(out.status.code(), Some(1));
    let d: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(d["equivalent"], false);
    assert_eq!(d["added"]["SCMP_ACT_ALLOW"], serde_json::json!(["write"]));
    assert_eq!(d["removed"]["SCMP_ACT_ALLOW"], serde_json::json!(["read"]));
}

#[test]
fn convert_keeps_syscall_names_this_libseccomp_does_not_know() {
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("future.json");
    std::fs::write(&p, r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["read","future_syscall_xyz"],"action":"SCMP_ACT_ALLOW"}]}"#).unwrap();
    let out = run(seccompctl()
        .args(["convert", "--to", "cr", "--name", "f"])
        .arg(&p));
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("future_syscall_xyz"),
        "{}",
        text(&out.stdout)
    );
    assert!(
        text(&out.stderr).contains("kept 1 syscall name(s) unknown to"),
        "{}",
        text(&out.stderr)
    );
    // validate still says a node's libseccomp must know it.
    assert_eq!(
        run(seccompctl().arg("validate").arg(&p)).status.code(),
        Some(1)
    );
}
