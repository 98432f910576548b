//! Every file of the shared corpus (real Docker, containers-common and SPO profiles) parses,
//! validates, and renders. (That libseccomp compiles the result is tested in node-agent.)

use seccomp_profile::*;
use std::path::PathBuf;

pub fn corpus_dir() -> Option<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus");
    dir.is_dir().then_some(dir)
}

#[test]
fn every_corpus_file_parses_and_validates() {
    let Some(dir) = corpus_dir() else {
        eprintln!("SKIP: ../shared/corpus not found beside the repository");
        return;
    };
    let ctx = EvalContext {
        arch: Arch::X86_64,
        ..EvalContext::host()
    };
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
        if !matches!(ext, "json" | "yaml") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let parsed =
            parse_profile(&text, &ctx).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        parsed
            .validate(None)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let r = parsed.spec.document.render(Arch::X86_64);
        assert!(!r.document.architectures.is_empty());
        // The size limits leave every real profile room to grow fourfold.
        let doc = &parsed.spec.document;
        let total: usize = doc.syscalls.iter().map(|r| r.names.len()).sum();
        let widest = doc
            .syscalls
            .iter()
            .map(|r| r.names.len())
            .max()
            .unwrap_or(0);
        assert!(
            total * 4 <= seccomp_profile::limits::MAX_TOTAL_NAMES
                && widest * 2 <= seccomp_profile::limits::MAX_NAMES_PER_RULE
                && doc.syscalls.len() * 3 <= seccomp_profile::limits::MAX_RULES,
            "{}: {total} names, {widest} in one rule, {} rules",
            path.display(),
            doc.syscalls.len()
        );
        let expected = match path.file_name().unwrap().to_str().unwrap() {
            n if n.starts_with("spo-") => SourceFormat::SpoResource,
            n if n.starts_with("containers-common") => SourceFormat::ContainersCommon,
            "moby-fixture-default-old-format.json"
            | "moby-fixture-example.json"
            | "moby-fixture-conditional-include.json"
            | "moby-default.json" => SourceFormat::Docker,
            other => panic!("unexpected corpus file {other}"),
        };
        assert_eq!(parsed.format, expected, "{}", path.display());
        seen += 1;
    }
    assert!(seen >= 7, "only {seen} corpus files");
}

#[test]
fn moby_default_evaluates_like_docker() {
    let Some(dir) = corpus_dir() else {
        eprintln!("SKIP: ../shared/corpus not found");
        return;
    };
    let text = std::fs::read_to_string(dir.join("moby-default.json")).unwrap();
    let ctx = EvalContext {
        arch: Arch::X86_64,
        kernel: Some((6, 1)),
        ..EvalContext::host()
    };
    let d = parse_profile(&text, &ctx)
        .unwrap()
        .spec
        .document
        .canonical(Arch::X86_64);
    assert_eq!(d.architectures, vec![Arch::X86, Arch::X86_64, Arch::X32]);
    let allowed = d.names_by_action().remove("SCMP_ACT_ALLOW").unwrap();
    // default caps: no CAP_SYS_ADMIN, so mount is not allowed, but chroot is (CAP_SYS_CHROOT)
    assert!(
        allowed.contains("read") && allowed.contains("arch_prctl") && allowed.contains("chroot")
    );
    assert!(!allowed.contains("mount") && !allowed.contains("bpf"));
    let mut admin = ctx.clone();
    admin.caps.insert("CAP_SYS_ADMIN".into());
    let d = parse_profile(&text, &admin)
        .unwrap()
        .spec
        .document
        .canonical(Arch::X86_64);
    assert!(d.names_by_action()["SCMP_ACT_ALLOW"].contains("mount"));
}
