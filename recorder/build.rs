//! Compiles the eBPF recorder (bpf/recorder.bpf.c) with clang into a CO-RE object that the
//! node agent embeds and loads with aya.

use std::path::PathBuf;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=CLANG");
    for name in ["recorder", "empty"] {
        compile(&format!("bpf/{name}.bpf.c"), &format!("{name}.bpf.o"));
    }
}

fn compile(src: &str, obj: &str) {
    println!("cargo:rerun-if-changed={src}");
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR")).join(obj);
    let clang = std::env::var("CLANG").unwrap_or_else(|_| "clang".into());
    let target_arch = std::env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_default();
    let (bpf_arch, multiarch) = match target_arch.as_str() {
        "x86_64" => ("x86", "x86_64-linux-gnu"),
        "aarch64" => ("arm64", "aarch64-linux-gnu"),
        other => (other, ""),
    };
    let status = Command::new(&clang)
        .args([
            "-O2", "-g", "-target", "bpf", "-mcpu=v3", "-Wall", "-Werror",
        ])
        .arg(format!("-D__TARGET_ARCH_{bpf_arch}"))
        .arg(format!("-I/usr/include/{multiarch}"))
        .args(["-c", src, "-o"])
        .arg(&out)
        .status();
    match status {
        Ok(s) if s.success() => {}
        Ok(s) => panic!("{clang} failed ({s}) compiling {src}"),
        Err(e) => panic!(
            "cannot run `{clang}` to compile the eBPF recorder ({e}). Install clang and libbpf-dev \
             (hack/deps.sh does), or set CLANG to a clang binary."
        ),
    }
}
