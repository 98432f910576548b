//! Helpers shared by the node agent's integration tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Skip the calling test (return) with a printed reason.
#[macro_export]
macro_rules! skip_unless {
    ($cond:expr, $why:expr) => {
        if !$cond {
            eprintln!("SKIP: {}", $why);
            return;
        }
    };
}

pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// Whether a root-only test can run: root, BTF, and (on CI) never skipped silently.
pub fn can_record() -> bool {
    let ok = is_root() && Path::new("/sys/kernel/btf/vmlinux").exists();
    if !ok && std::env::var_os("CI").is_some() && std::env::var_os("SECCOMP_ALLOW_SKIP").is_none() {
        panic!("CI must run the kernel tests: need root and BTF");
    }
    ok
}

pub fn which(cmd: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|d| d.join(cmd))
        .find(|p| p.is_file())
}

pub fn seccompctl() -> Command {
    Command::new(env!("CARGO_BIN_EXE_seccompctl"))
}

pub fn run(mut cmd: impl std::borrow::BorrowMut<Command>) -> Output {
    let cmd = cmd.borrow_mut();
    cmd.output()
        .unwrap_or_else(|e| panic!("running {cmd:?}: {e}"))
}

pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A runc bundle with a static busybox as its root file system, running `args`.
pub fn busybox_bundle(
    dir: &Path,
    args: &[&str],
    nnp: bool,
    seccomp: Option<serde_json::Value>,
) -> PathBuf {
    let busybox = ["/bin/busybox", "/usr/bin/busybox"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .expect("busybox-static is installed (hack/deps.sh)");
    let rootfs = dir.join("rootfs");
    std::fs::create_dir_all(rootfs.join("bin")).unwrap();
    std::fs::create_dir_all(rootfs.join("tmp")).unwrap();
    std::fs::copy(&busybox, rootfs.join("bin/busybox")).unwrap();
    for applet in ["sh", "echo", "ls", "mkdir", "cat", "true"] {
        let _ = std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(applet));
    }
    let mut linux = serde_json::json!({
        "namespaces": [{"type":"pid"},{"type":"ipc"},{"type":"uts"},{"type":"mount"}],
        "maskedPaths": ["/proc/kcore"],
        "readonlyPaths": ["/proc/sys"]
    });
    if let Some(s) = seccomp {
        linux["seccomp"] = s;
    }
    let config = serde_json::json!({
        "ociVersion": "1.0.2",
        "process": {
            "terminal": false,
            "user": {"uid": 0, "gid": 0},
            "args": args,
            "env": ["PATH=/bin"],
            "cwd": "/",
            "noNewPrivileges": nnp,
            "capabilities": {
                "bounding": ["CAP_CHOWN","CAP_KILL","CAP_NET_BIND_SERVICE","CAP_SETUID","CAP_SETGID"],
                "effective": ["CAP_CHOWN","CAP_KILL","CAP_NET_BIND_SERVICE","CAP_SETUID","CAP_SETGID"],
                "permitted": ["CAP_CHOWN","CAP_KILL","CAP_NET_BIND_SERVICE","CAP_SETUID","CAP_SETGID"]
            }
        },
        "root": {"path": "rootfs", "readonly": false},
        "hostname": "test",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid","strictatime","mode=755","size=65536k"]}
        ],
        "linux": linux
    });
    std::fs::write(
        dir.join("config.json"),
        serde_json::to_vec_pretty(&config).unwrap(),
    )
    .unwrap();
    dir.to_path_buf()
}

/// Run a bundle with runc; (exit code, stdout, stderr).
pub fn runc_run(bundle: &Path, id: &str) -> (i32, String, String) {
    let out = run(Command::new("runc")
        .args(["run", "--bundle"])
        .arg(bundle)
        .arg(id));
    let _ = Command::new("runc")
        .args(["delete", "--force", id])
        .output();
    (
        out.status.code().unwrap_or(-1),
        text(&out.stdout),
        text(&out.stderr),
    )
}

/// A unique container ID for this test process.
pub fn cid(tag: &str) -> String {
    format!("t{}-{tag}", std::process::id())
}
