//! Every JSON profile of the shared corpus converts to an OCI document that libseccomp on this
//! machine compiles (names libseccomp does not know are left out, as runc does).

use seccomp_filter as seccomp;
use seccompctl::local;
use std::path::PathBuf;

#[test]
fn corpus_profiles_compile_with_libseccomp() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus");
    if !dir.is_dir() {
        eprintln!("SKIP: ../shared/corpus not found beside the repository");
        return;
    }
    let mut n = 0;
    for e in std::fs::read_dir(&dir).unwrap() {
        let path = e.unwrap().path();
        if !matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("json" | "yaml")
        ) {
            continue;
        }
        let (_, doc) =
            local::load_profile(&path).unwrap_or_else(|e| panic!("{}: {e:#}", path.display()));
        let filter = seccomp::compile(&doc).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert!(filter.instructions() > 5, "{}", path.display());
        // the OCI rendering reads back as the same document
        let json = doc.render(seccomp_profile::Arch::native()).json;
        let again = seccomp_profile::parse_profile(
            std::str::from_utf8(&json).unwrap(),
            &seccomp_profile::EvalContext::host(),
        )
        .unwrap();
        assert_eq!(again.spec.document, doc, "{}", path.display());
        n += 1;
    }
    assert!(n >= 7);
}
