//! Writes the CustomResourceDefinitions generated from the Rust types.
//!
//! `crdgen [DIR]` writes one `<plural>.yaml` per CRD into DIR (default: the `crds/` directory
//! of this crate); `crdgen --stdout` prints them as one multi-document stream;
//! `crdgen --reference FILE` writes the API reference generated from them.
#![forbid(unsafe_code)]

use std::path::PathBuf;

fn main() -> std::process::ExitCode {
    let arg = std::env::args().nth(1);
    if arg.as_deref() == Some("--help") || arg.as_deref() == Some("-h") {
        println!("usage: crdgen [DIR | --stdout | --reference FILE]\n\nWrites <plural>.yaml for every CRD of seccomp-operator.dev into DIR\n(default: the crds/ directory of the source tree); --reference writes the API\nreference page (docs/api.md).");
        return std::process::ExitCode::SUCCESS;
    }
    if arg.as_deref() == Some("--reference") {
        let Some(path) = std::env::args().nth(2) else {
            eprintln!("crdgen: --reference needs a file (docs/api.md)");
            return std::process::ExitCode::FAILURE;
        };
        if let Err(e) = std::fs::write(&path, crds::api_reference()) {
            eprintln!("crdgen: cannot write {path}: {e}");
            return std::process::ExitCode::FAILURE;
        }
        println!("wrote {path}");
        return std::process::ExitCode::SUCCESS;
    }
    if arg.as_deref() == Some("--stdout") {
        for (_, yaml) in crds::crd_yaml() {
            print!("---\n{yaml}");
        }
        return std::process::ExitCode::SUCCESS;
    }
    let dir = arg
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")));
    for (file, yaml) in crds::crd_yaml() {
        let path = dir.join(&file);
        if let Err(e) = std::fs::write(&path, yaml) {
            eprintln!("crdgen: cannot write {}: {e}", path.display());
            return std::process::ExitCode::FAILURE;
        }
        println!("wrote {}", path.display());
    }
    std::process::ExitCode::SUCCESS
}
