//! Moving from the Security Profiles Operator, with the real files users bring (read from the
//! shared corpus, never copied): multi-document YAML, `kubectl get -o yaml` Lists, SPO's
//! ProfileBindings and ProfileRecordings. What `convert` writes validates again.

mod common;
use common::*;
use serde_json::{json, Value};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};

fn corpus() -> Option<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus");
    if dir.join("migration").is_dir() {
        Some(dir)
    } else {
        eprintln!("SKIP: ../shared/corpus/migration not found beside the repository");
        None
    }
}

/// The documents of a YAML stream.
fn documents(yaml: &str) -> Vec<Value> {
    serde_saphyr::from_multiple::<Value>(yaml).unwrap_or_else(|e| panic!("{e}\n{yaml}"))
}

fn convert(args: &[&str], file: &Path) -> Output {
    run(seccompctl()
        .args(["convert", "--to", "cr"])
        .args(args)
        .arg(file))
}

/// Run seccompctl with `stdin` as its standard input.
fn with_stdin(args: &[&str], stdin: &str) -> Output {
    let mut child = seccompctl()
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

/// `validate -o json` of `file`: every result, and the exit code.
fn validate(file: &Path) -> (Option<i32>, Vec<Value>) {
    let out = run(seccompctl().args(["validate", "-o", "json"]).arg(file));
    let v: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}{}", text(&out.stdout), text(&out.stderr)));
    (out.status.code(), v.as_array().unwrap().clone())
}

/// Convert `file`, check that the output validates again, and return its documents and
/// stderr.
fn convert_and_revalidate(file: &Path, args: &[&str]) -> (Vec<Value>, String) {
    let out = convert(args, file);
    let err = text(&out.stderr);
    assert!(out.status.success(), "{}: {err}", file.display());
    let yaml = text(&out.stdout);
    let tmp = tempfile::tempdir().unwrap();
    let again = tmp.path().join("converted.yaml");
    std::fs::write(&again, &yaml).unwrap();
    let (code, results) = validate(&again);
    assert_eq!(code, Some(0), "{}: {results:#?}\n{yaml}", file.display());
    let docs = documents(&yaml);
    assert_eq!(results.len(), docs.len(), "{results:#?}");
    for (r, d) in results.iter().zip(&docs) {
        assert_eq!(r["result"], "valid", "{r}");
        assert_eq!(d["apiVersion"], "seccomp-operator.dev/v1alpha1", "{d}");
        assert!(d.get("status").is_none(), "{d}");
    }
    (docs, err)
}

#[test]
fn every_spo_file_converts_and_the_output_validates_again() {
    let Some(dir) = corpus() else { return };
    let m = dir.join("migration");

    // Three SeccompProfiles in one multi-document YAML: three resources, in input order.
    let (docs, _) = convert_and_revalidate(&m.join("spo-seccompprofile-multi.yaml"), &[]);
    let names: Vec<&str> = docs
        .iter()
        .map(|d| d["metadata"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["profile-block", "profile-complain", "profile-allow"]
    );
    let actions: Vec<&str> = docs
        .iter()
        .map(|d| d["spec"]["defaultAction"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        ["SCMP_ACT_ERRNO", "SCMP_ACT_LOG", "SCMP_ACT_ALLOW"]
    );
    assert!(docs.iter().all(|d| d["kind"] == "SeccompProfile"));

    // --namespace puts every object there.
    let (docs, _) = convert_and_revalidate(
        &m.join("spo-seccompprofile-multi.yaml"),
        &["--namespace", "shop"],
    );
    assert!(docs.iter().all(|d| d["metadata"]["namespace"] == "shop"));

    // A ProfileBinding by image: the same image and profile; what differs is said.
    let (docs, err) = convert_and_revalidate(&m.join("spo-profilebinding.yaml"), &[]);
    assert_eq!(docs.len(), 1);
    let b = &docs[0];
    assert_eq!(b["kind"], "ProfileBinding");
    assert_eq!(b["metadata"]["name"], "profile-binding");
    assert_eq!(b["spec"]["image"], "nginx:1.19.1");
    assert_eq!(
        b["spec"]["profileRef"],
        json!({"kind": "SeccompProfile", "name": "profile-allow"})
    );
    assert!(
        err.contains("seccomp-operator.dev/binding=enabled"),
        "{err}"
    );

    // A ProfileRecording with SPO's bpf recorder: Bpf here, SPO's default merge strategy
    // kept explicitly, and the fields that behave differently named.
    let (docs, err) = convert_and_revalidate(&m.join("spo-profilerecording-bpf.yaml"), &[]);
    assert_eq!(docs.len(), 1);
    let r = &docs[0];
    assert_eq!(r["kind"], "ProfileRecording");
    assert_eq!(r["metadata"]["name"], "test-recording");
    assert_eq!(r["spec"]["recorder"], "Bpf");
    assert_eq!(r["spec"]["kind"], "SeccompProfile");
    assert_eq!(r["spec"]["mergeStrategy"], "None");
    assert_eq!(
        r["spec"]["podSelector"],
        json!({"matchLabels": {"app": "alpine"}})
    );
    assert!(err.contains("warning: "), "{err}");
    assert!(err.contains("spec.mergeStrategy"), "{err}");
    assert!(err.contains("spec.durationSeconds"), "{err}");

    // Plain OCI JSON from SPO's test profiles: named after the file.
    let (docs, _) = convert_and_revalidate(&m.join("spo-test-deny-chmod.json"), &[]);
    assert_eq!(docs.len(), 1);
    assert_eq!(docs[0]["metadata"]["name"], "spo-test-deny-chmod");
    assert_eq!(docs[0]["spec"]["syscalls"][0]["errnoRet"], 1);
    assert_eq!(
        docs[0]["spec"]["syscalls"][0]["names"],
        json!(["chmod", "fchmod", "fchmodat"])
    );

    // SPO v1 base profiles (cluster-wide there): the namespace is for the user to give.
    for (file, name) in [
        ("spo-baseprofile-runc.yaml", "runc-v1.4.2"),
        ("spo-baseprofile-crun.yaml", "crun-v1.26"),
    ] {
        let (docs, err) = convert_and_revalidate(&dir.join(file), &[]);
        assert_eq!(docs.len(), 1);
        assert_eq!(docs[0]["metadata"]["name"], name);
        assert!(
            docs[0]["spec"]["syscalls"][0]["names"]
                .as_array()
                .unwrap()
                .contains(&json!("execve")),
            "{file}"
        );
        assert!(err.contains("metadata.namespace"), "{file}: {err}");
        let (docs, err) = convert_and_revalidate(&dir.join(file), &["--namespace", "shop"]);
        assert_eq!(docs[0]["metadata"]["namespace"], "shop");
        assert!(!err.contains("metadata.namespace"), "{file}: {err}");
    }
}

#[test]
fn spo_files_validate_as_they_are_naming_each_document() {
    let Some(dir) = corpus() else { return };
    let (code, results) = validate(&dir.join("migration/spo-seccompprofile-multi.yaml"));
    assert_eq!(code, Some(0), "{results:#?}");
    let labels: Vec<&str> = results
        .iter()
        .map(|r| r["document"].as_str().unwrap())
        .collect();
    assert_eq!(
        labels,
        [
            "document 1 (SeccompProfile profile-block)",
            "document 2 (SeccompProfile profile-complain)",
            "document 3 (SeccompProfile profile-allow)",
        ]
    );
    for file in ["spo-profilebinding.yaml", "spo-profilerecording-bpf.yaml"] {
        let (code, results) = validate(&dir.join("migration").join(file));
        assert_eq!(code, Some(0), "{file}: {results:#?}");
        assert_eq!(results[0]["result"], "valid");
        assert!(
            results[0]["format"]
                .as_str()
                .unwrap()
                .starts_with("Security Profiles Operator"),
            "{results:#?}"
        );
    }
}

#[test]
fn a_kubectl_list_of_converted_objects_converts_again_from_stdin() {
    let Some(dir) = corpus() else { return };
    let m = dir.join("migration");
    let mut items = Vec::new();
    for file in [
        "spo-seccompprofile-multi.yaml",
        "spo-profilebinding.yaml",
        "spo-profilerecording-bpf.yaml",
    ] {
        let out = convert(&[], &m.join(file));
        assert!(out.status.success(), "{}", text(&out.stderr));
        items.extend(documents(&text(&out.stdout)));
    }
    assert_eq!(items.len(), 5);
    // What `kubectl get … -o yaml` prints: a v1 List, with fields the API server adds.
    let mut listed = items.clone();
    for (i, item) in listed.iter_mut().enumerate() {
        item["metadata"]["namespace"] = json!("shop");
        item["metadata"]["uid"] = json!(format!("00000000-0000-0000-0000-00000000000{i}"));
        item["metadata"]["resourceVersion"] = json!("4711");
        item["status"] = json!({"phase": "Installed"});
    }
    let list = json!({"apiVersion": "v1", "kind": "List", "metadata": {"resourceVersion": ""}, "items": listed});
    let yaml = serde_saphyr::to_string(&list).unwrap();

    let out = with_stdin(&["convert", "--to", "cr", "-"], &yaml);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let again = documents(&text(&out.stdout));
    assert_eq!(again.len(), 5);
    for (a, b) in again.iter().zip(&items) {
        let mut b = b.clone();
        b["metadata"]["namespace"] = json!("shop");
        assert_eq!(a, &b);
    }

    // The List validates as it is, each item named.
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("list.yaml");
    std::fs::write(&file, &yaml).unwrap();
    let (code, results) = validate(&file);
    assert_eq!(code, Some(0), "{results:#?}");
    assert_eq!(results.len(), 5);
    assert_eq!(
        results[3]["document"],
        "document 1, item 4 (ProfileBinding profile-binding)"
    );
    // FILE#NAME picks one item.
    let picked = tmp.path().join("list.yaml#profile-allow");
    let out = convert(&[], &picked);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let docs = documents(&text(&out.stdout));
    assert_eq!(docs.len(), 1);
    assert_eq!(docs[0]["metadata"]["name"], "profile-allow");
}

#[test]
fn an_item_error_names_its_document_and_nothing_is_written() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("mixed.yaml");
    std::fs::write(
        &file,
        "---\napiVersion: security-profiles-operator.x-k8s.io/v1beta1\nkind: SeccompProfile\nmetadata:\n  name: fine\nspec:\n  defaultAction: SCMP_ACT_LOG\n---\napiVersion: security-profiles-operator.x-k8s.io/v1beta1\nkind: SeccompProfile\nmetadata:\n  name: broken\nspec:\n  defaultAction: SCMP_ACT_LOG\n  syscalls:\n    - names: [read]\n      action: SCMP_ACT_SOMETIMES\n---\napiVersion: security-profiles-operator.x-k8s.io/v1alpha1\nkind: ProfileBinding\nmetadata:\n  name: selinux\nspec:\n  profileRef:\n    kind: SelinuxProfile\n    name: nginx\n  image: nginx\n",
    )
    .unwrap();
    let out = convert(&[], &file);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "", "nothing is written");
    let err = text(&out.stderr);
    assert!(
        err.contains("document 2 (SeccompProfile broken)")
            && err.contains("spec.syscalls[0].action"),
        "{err}"
    );
    assert!(
        err.contains("document 3 (ProfileBinding selinux)") && err.contains("spec.profileRef.kind"),
        "{err}"
    );
    assert!(
        err.contains("2 of 3 objects could not be converted"),
        "{err}"
    );
    for internal in ["from_str", "serde", "saphyr"] {
        assert!(!err.contains(internal), "{internal}: {err}");
    }

    let (code, results) = validate(&file);
    assert_eq!(code, Some(1));
    let verdicts: Vec<(&str, &str)> = results
        .iter()
        .map(|r| {
            (
                r["document"].as_str().unwrap(),
                r["result"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        verdicts,
        [
            ("document 1 (SeccompProfile fine)", "valid"),
            ("document 2 (SeccompProfile broken)", "invalid"),
            ("document 3 (ProfileBinding selinux)", "invalid"),
        ]
    );
}

#[test]
fn commands_that_take_one_profile_say_how_to_pick_one() {
    let Some(dir) = corpus() else { return };
    let multi = dir.join("migration/spo-seccompprofile-multi.yaml");
    let chmod = dir.join("migration/spo-test-deny-chmod.json");
    let out = run(seccompctl().arg("diff").arg(&multi).arg(&chmod));
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(err.contains("holds 3 profiles"), "{err}");
    assert!(
        err.contains("spo-seccompprofile-multi.yaml#<name>"),
        "{err}"
    );
    assert!(!err.contains("from_str"), "{err}");

    let mut picked = multi.into_os_string();
    picked.push("#profile-allow");
    let out = run(seccompctl()
        .args(["diff", "-o", "json"])
        .arg(&picked)
        .arg(&chmod));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let d: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        d["added"]["SCMP_ACT_ERRNO(1)"],
        json!(["chmod", "fchmod", "fchmodat"]),
        "{d}"
    );
}

#[test]
fn inputs_over_the_document_cap_are_refused_plainly() {
    let tmp = tempfile::tempdir().unwrap();
    let doc = |i: usize| {
        format!("---\napiVersion: seccomp-operator.dev/v1alpha1\nkind: SeccompProfile\nmetadata:\n  name: p{i}\nspec:\n  defaultAction: SCMP_ACT_LOG\n")
    };
    let at_cap: String = (0..1000).map(doc).collect();
    let file = tmp.path().join("cap.yaml");
    std::fs::write(&file, &at_cap).unwrap();
    let out = convert(&[], &file);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(documents(&text(&out.stdout)).len(), 1000);

    let over = format!("{at_cap}{}", doc(1000));
    std::fs::write(&file, &over).unwrap();
    for cmd in ["convert", "validate"] {
        let mut c = seccompctl();
        c.arg(cmd);
        if cmd == "convert" {
            c.args(["--to", "cr"]);
        }
        let out = run(c.arg(&file));
        assert_ne!(out.status.code(), Some(0), "{cmd}");
        let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
        assert!(all.contains("more than 1000 objects"), "{cmd}: {all}");
    }
}
