//! Rendering, base resolution, merge, diff and format detection.

use seccomp_profile::ProfileSpec;
use seccomp_profile::*;
use std::collections::BTreeMap;

fn doc(json: &str) -> SeccompDocument {
    parse_profile(json, &EvalContext::host())
        .unwrap()
        .spec
        .document
}

fn spec(json: &str) -> ProfileSpec {
    parse_profile(json, &EvalContext::host()).unwrap().spec
}

#[test]
fn canonical_form_sorts_merges_and_drops_default_rules() {
    let d = doc(r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[
        {"names":["write","read"],"action":"SCMP_ACT_ALLOW"},
        {"names":["read","close"],"action":"SCMP_ACT_ALLOW"},
        {"names":["mkdir"],"action":"SCMP_ACT_ERRNO"},
        {"names":["chmod"],"action":"SCMP_ACT_ERRNO","errnoRet":13}]}"#);
    let c = d.canonical(Arch::X86_64);
    assert_eq!(c.architectures, vec![Arch::X86, Arch::X86_64, Arch::X32]);
    assert_eq!(c.default_errno_ret, Some(1));
    assert_eq!(c.syscalls.len(), 2, "{c:#?}");
    assert_eq!(c.syscalls[0].action, Action::Errno);
    assert_eq!(c.syscalls[0].names, vec!["chmod"]);
    assert_eq!(c.syscalls[0].errno_ret, Some(13));
    assert_eq!(c.syscalls[1].action, Action::Allow);
    assert_eq!(c.syscalls[1].names, vec!["close", "read", "write"]);
    assert_eq!(c.canonical(Arch::X86_64), c, "canonical is a fixed point");
}

#[test]
fn rendering_is_deterministic_and_hashed() {
    let a = doc(
        r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["b","a"],"action":"SCMP_ACT_ALLOW"}]}"#,
    );
    let b = doc(
        r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["a"],"action":"SCMP_ACT_ALLOW"},{"names":["b","a"],"action":"SCMP_ACT_ALLOW"}]}"#,
    );
    let (ra, rb) = (a.render(Arch::X86_64), b.render(Arch::X86_64));
    assert_eq!(ra.json, rb.json);
    assert_eq!(ra.hash, rb.hash);
    assert!(ra.hash.starts_with("sha256:") && ra.hash.len() == 7 + 64);
    let text = String::from_utf8(ra.json).unwrap();
    assert!(text.ends_with("}\n"));
    assert!(text.contains("\"defaultErrnoRet\": 1"));
    // the rendered text is plain OCI: it reads back as an OCI document, unchanged.
    let back = parse_profile(&text, &EvalContext::host()).unwrap();
    assert_eq!(back.format, SourceFormat::Oci);
    assert_eq!(back.spec.document, ra.document);
}

#[test]
fn formats_are_detected() {
    let ctx = EvalContext::host();
    let f = |t: &str| parse_profile(t, &ctx).unwrap().format;
    assert_eq!(
        f(r#"{"defaultAction":"SCMP_ACT_ALLOW"}"#),
        SourceFormat::Oci
    );
    assert_eq!(
        f(r#"{"defaultAction":"SCMP_ACT_ALLOW","archMap":[]}"#),
        SourceFormat::Docker
    );
    assert_eq!(
        f(
            r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"name":"read","action":"SCMP_ACT_ERRNO"}]}"#
        ),
        SourceFormat::Docker
    );
    assert_eq!(
        f(r#"{"defaultAction":"SCMP_ACT_ERRNO","defaultErrno":"ENOSYS"}"#),
        SourceFormat::ContainersCommon
    );
    let p = parse_profile("apiVersion: seccomp-operator.dev/v1alpha1\nkind: SeccompProfile\nmetadata: {name: a, namespace: b}\nspec: {defaultAction: SCMP_ACT_LOG, disabled: true}\n", &ctx).unwrap();
    assert_eq!(
        (
            p.format,
            p.name.as_deref(),
            p.namespace.as_deref(),
            p.spec.disabled
        ),
        (SourceFormat::OperatorResource, Some("a"), Some("b"), true)
    );
    let p = parse_profile("apiVersion: security-profiles-operator.x-k8s.io/v1beta1\nkind: SeccompProfile\nmetadata: {name: a}\nspec: {defaultAction: SCMP_ACT_LOG}\n", &ctx).unwrap();
    assert_eq!(p.format, SourceFormat::SpoResource);
}

#[test]
fn docker_conditions_follow_caps_arch_and_kernel() {
    let text = r#"{"defaultAction":"SCMP_ACT_ERRNO","archMap":[{"architecture":"SCMP_ARCH_X86_64","subArchitectures":["SCMP_ARCH_X86","SCMP_ARCH_X32"]},{"architecture":"SCMP_ARCH_AARCH64","subArchitectures":["SCMP_ARCH_ARM"]}],
      "syscalls":[
        {"names":["read"],"action":"SCMP_ACT_ALLOW"},
        {"names":["bpf"],"action":"SCMP_ACT_ALLOW","includes":{"caps":["CAP_SYS_ADMIN"]}},
        {"names":["ptrace"],"action":"SCMP_ACT_ALLOW","includes":{"minKernel":"4.8"}},
        {"names":["arch_prctl"],"action":"SCMP_ACT_ALLOW","includes":{"arches":["amd64","x32"]}},
        {"names":["sync_file_range2"],"action":"SCMP_ACT_ALLOW","includes":{"arches":["arm64"]}},
        {"names":["mount"],"action":"SCMP_ACT_ALLOW","excludes":{"caps":["CAP_SYS_ADMIN"]}},
        {"names":["personality"],"action":"SCMP_ACT_ALLOW","excludes":{"arches":["amd64"]}}]}"#;
    let mut ctx = EvalContext {
        arch: Arch::X86_64,
        caps: Default::default(),
        kernel: Some((4, 4)),
    };
    let names = |ctx: &EvalContext| {
        let d = parse_profile(text, ctx).unwrap().spec.document;
        (
            d.architectures.clone(),
            d.syscalls
                .iter()
                .flat_map(|r| r.names.clone())
                .collect::<Vec<_>>(),
        )
    };
    let (arches, n) = names(&ctx);
    assert_eq!(arches, vec![Arch::X86_64, Arch::X86, Arch::X32]);
    assert_eq!(n, vec!["read", "arch_prctl", "mount"]);
    ctx.caps.insert("CAP_SYS_ADMIN".into());
    ctx.kernel = Some((6, 1));
    assert_eq!(names(&ctx).1, vec!["read", "bpf", "ptrace", "arch_prctl"]);
    ctx.arch = Arch::Aarch64;
    let (arches, n) = names(&ctx);
    assert_eq!(arches, vec![Arch::Aarch64, Arch::Arm]);
    assert_eq!(
        n,
        vec!["read", "bpf", "ptrace", "sync_file_range2", "personality"]
    );
}

#[test]
fn a_docker_rule_overridden_in_full_goes_and_the_profile_stays_valid() {
    // Found by the Docker-conditions property: the first rule lost its only name to the later
    // one and stayed as an empty rule, which validation refuses.
    let text = r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[
        {"names":["setns"],"action":"SCMP_ACT_ALLOW"},
        {"names":["read","unshare"],"action":"SCMP_ACT_ALLOW"},
        {"names":["setns","unshare"],"action":"SCMP_ACT_ERRNO","excludes":{"caps":["CAP_SYS_ADMIN"]}}]}"#;
    let ctx = EvalContext {
        caps: Default::default(),
        ..EvalContext::host()
    };
    let parsed = parse_profile(text, &ctx).unwrap();
    assert_eq!(parsed.validate(None), Ok(()));
    let rules: Vec<_> = parsed
        .spec
        .document
        .syscalls
        .iter()
        .map(|r| (r.names.clone(), r.action))
        .collect();
    assert_eq!(
        rules,
        vec![
            (vec!["read".to_string()], Action::Allow),
            (vec!["setns".into(), "unshare".into()], Action::Errno)
        ]
    );
    assert_eq!(parsed.warnings.len(), 2, "{:?}", parsed.warnings);
    // A rule with no names in the source is still refused, naming it.
    let empty = r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":[],"action":"SCMP_ACT_ALLOW"},{"names":["read"],"action":"SCMP_ACT_ALLOW","excludes":{"caps":["CAP_SYS_ADMIN"]}}]}"#;
    let e = parse_profile(empty, &ctx)
        .unwrap()
        .validate(None)
        .unwrap_err();
    assert!(e.to_string().contains("syscalls[0]"), "{e}");
}

#[test]
fn containers_common_errno_names_resolve() {
    let d = doc(
        r#"{"defaultAction":"SCMP_ACT_ERRNO","defaultErrno":"ENOSYS","syscalls":[{"names":["mkdir"],"action":"SCMP_ACT_ERRNO","errno":"EACCES"}]}"#,
    );
    assert_eq!(d.default_errno_ret, Some(38));
    assert_eq!(d.syscalls[0].errno_ret, Some(13));
}

fn lookup(profiles: &[(&str, &str)]) -> BTreeMap<String, ProfileSpec> {
    profiles
        .iter()
        .map(|(n, t)| (n.to_string(), spec(t)))
        .collect()
}

#[test]
fn base_chains_resolve_with_child_fields_winning() {
    let l = lookup(&[
        (
            "root",
            r#"{"defaultAction":"SCMP_ACT_ERRNO","defaultErrnoRet":38,"architectures":["SCMP_ARCH_X86_64"],"syscalls":[{"names":["read","mkdir"],"action":"SCMP_ACT_ALLOW"}]}"#,
        ),
        (
            "mid",
            r#"{"defaultAction":"SCMP_ACT_ERRNO","baseProfileName":"root","syscalls":[{"names":["write"],"action":"SCMP_ACT_ALLOW"}]}"#,
        ),
    ]);
    let child = spec(
        r#"{"defaultAction":"SCMP_ACT_ERRNO","baseProfileName":"mid","syscalls":[{"names":["mkdir"],"action":"SCMP_ACT_LOG"}]}"#,
    );
    let d = resolve("app", &child, &l).unwrap().canonical(Arch::X86_64);
    assert_eq!(d.default_errno_ret, Some(38), "inherited from root");
    assert_eq!(d.architectures, vec![Arch::X86_64], "inherited from root");
    let by = d.names_by_action();
    assert_eq!(
        by["SCMP_ACT_ALLOW"].iter().collect::<Vec<_>>(),
        vec!["read", "write"]
    );
    assert_eq!(
        by["SCMP_ACT_LOG"].iter().collect::<Vec<_>>(),
        vec!["mkdir"],
        "the child's action wins"
    );
    assert_eq!(base_chain("app", &child, &l), vec!["mid", "root"]);
}

#[test]
fn builtin_base_resolves() {
    let child = spec(
        r#"{"defaultAction":"SCMP_ACT_ERRNO","baseProfileName":"builtin:runc","syscalls":[{"names":["mkdir"],"action":"SCMP_ACT_ALLOW"}]}"#,
    );
    let d = resolve("app", &child, &BTreeMap::new()).unwrap();
    let names = d
        .canonical(Arch::X86_64)
        .names_by_action()
        .remove("SCMP_ACT_ALLOW")
        .unwrap();
    assert!(
        names.contains("mkdir") && names.contains("execve"),
        "{names:?}"
    );
}

#[test]
fn missing_bases_cycles_and_depth_are_errors() {
    let child = spec(r#"{"defaultAction":"SCMP_ACT_ERRNO","baseProfileName":"gone"}"#);
    let e = resolve("app", &child, &BTreeMap::new()).unwrap_err();
    assert_eq!(
        e,
        ResolveError::MissingBase {
            by: "app".into(),
            base: "gone".into()
        }
    );
    assert!(e
        .to_string()
        .contains("`gone` (wanted by `app`) does not exist"));

    let l = lookup(&[
        (
            "a",
            r#"{"defaultAction":"SCMP_ACT_ERRNO","baseProfileName":"b"}"#,
        ),
        (
            "b",
            r#"{"defaultAction":"SCMP_ACT_ERRNO","baseProfileName":"a"}"#,
        ),
    ]);
    let e = resolve("a", &l["a"], &l).unwrap_err();
    assert_eq!(
        e,
        ResolveError::Cycle(vec!["a".into(), "b".into(), "a".into()])
    );
    assert!(e
        .to_string()
        .contains("cycle in base profiles: a -> b -> a"));

    let mut chain = BTreeMap::new();
    for i in 0..20 {
        chain.insert(
            format!("p{i}"),
            spec(&format!(
                r#"{{"defaultAction":"SCMP_ACT_ERRNO","baseProfileName":"p{}"}}"#,
                i + 1
            )),
        );
    }
    chain.insert("p20".into(), spec(r#"{"defaultAction":"SCMP_ACT_ERRNO"}"#));
    assert!(matches!(
        resolve("p0", &chain["p0"], &chain),
        Err(ResolveError::TooDeep { max: 15, .. })
    ));
    assert!(
        resolve("p6", &chain["p6"], &chain).is_ok(),
        "a 14-deep chain resolves"
    );
}

#[test]
fn merge_unions_and_reports_conflicts() {
    let a = doc(
        r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["read","write"],"action":"SCMP_ACT_ALLOW"}]}"#,
    );
    let b = doc(
        r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["close","read"],"action":"SCMP_ACT_ALLOW"}]}"#,
    );
    let m = merge(&[a.clone(), b.clone()], Arch::X86_64).unwrap();
    assert_eq!(m.syscalls[0].names, vec!["close", "read", "write"]);

    let c = doc(
        r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["read"],"action":"SCMP_ACT_LOG"}]}"#,
    );
    let e = merge(&[a.clone(), c], Arch::X86_64).unwrap_err();
    assert!(
        matches!(e, MergeError::Conflict { ref name, .. } if name == "read"),
        "{e}"
    );

    let d = doc(r#"{"defaultAction":"SCMP_ACT_LOG"}"#);
    let e = merge(&[a, d], Arch::X86_64).unwrap_err();
    assert_eq!(
        e.to_string(),
        "defaultAction differs: profile 1 has SCMP_ACT_LOG, the first has SCMP_ACT_ERRNO(1)"
    );
    assert_eq!(merge(&[], Arch::X86_64).unwrap_err(), MergeError::Empty);
}

#[test]
fn diff_lists_added_and_removed_syscalls() {
    let a = doc(
        r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["read","write"],"action":"SCMP_ACT_ALLOW"}]}"#,
    );
    let b = doc(
        r#"{"defaultAction":"SCMP_ACT_ERRNO","architectures":["SCMP_ARCH_X86_64"],"syscalls":[{"names":["close","read"],"action":"SCMP_ACT_ALLOW"}]}"#,
    );
    let d = diff(&a, &b, Arch::X86_64);
    assert_eq!(d.to_string(), "- architecture SCMP_ARCH_X86\n- architecture SCMP_ARCH_X32\n- SCMP_ACT_ALLOW: write\n+ SCMP_ACT_ALLOW: close\n");
    assert!(diff(&a, &a, Arch::X86_64).is_empty());
}
