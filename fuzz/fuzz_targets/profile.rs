//! Any bytes as a profile file (every format the parser takes: OCI JSON, SeccompProfile CR in
//! YAML or JSON, SPO and Docker variants): parsing, validation, resolution and rendering never
//! panic, and what is rendered parses back to the same rendering.
#![no_main]

use libfuzzer_sys::fuzz_target;
use seccomp_profile::{parse_profile, resolve, Arch, EvalContext};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(parsed) = parse_profile(text, &EvalContext::host()) else {
        return;
    };
    if parsed.validate(None).is_err() {
        return;
    }
    let Ok(doc) = resolve("fuzz", &parsed.spec, &std::collections::BTreeMap::new()) else {
        return;
    };
    let rendered = doc.render(Arch::X86_64);
    let again = std::str::from_utf8(&rendered.json).expect("rendering is UTF-8");
    let reparsed = parse_profile(again, &EvalContext::host()).expect("a rendering parses");
    reparsed.validate(None).expect("a rendering validates");
    let doc2 = resolve("fuzz", &reparsed.spec, &std::collections::BTreeMap::new())
        .expect("a rendering resolves");
    assert_eq!(
        doc2.render(Arch::X86_64).json,
        rendered.json,
        "rendering is a fixed point"
    );
});
