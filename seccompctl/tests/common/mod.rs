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
    oci_run(Path::new("runc"), bundle, id)
}

/// Run a bundle with an OCI runtime (runc, or what [`crun`] returns).
pub fn oci_run(runtime: &Path, bundle: &Path, id: &str) -> (i32, String, String) {
    let out = run(Command::new(runtime)
        .args(["run", "--bundle"])
        .arg(bundle)
        .arg(id));
    let _ = Command::new(runtime)
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

/// A command that runs crun here, or None when crun is not installed (panics on CI, which
/// installs it). crun refuses hosts with hybrid cgroups (v1 controllers plus a unified
/// hierarchy on /sys/fs/cgroup/unified, as on these test VMs); there the command is a wrapper
/// in `dir` that gives crun a private mount namespace with cgroup2 on /sys/fs/cgroup. The
/// container's processes, seccomp filter and exec are crun's own either way.
pub fn crun(dir: &Path) -> Option<PathBuf> {
    if which("crun").is_none() {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must run the crun tests: crun is missing (hack/deps.sh test)"
        );
        return None;
    }
    let fs = nix::sys::statfs::statfs("/sys/fs/cgroup").ok()?;
    if fs.filesystem_type() == nix::sys::statfs::CGROUP2_SUPER_MAGIC {
        return Some(PathBuf::from("crun"));
    }
    let wrapper = dir.join("crun-unified");
    std::fs::write(
        &wrapper,
        "#!/bin/sh\nexec unshare -m --propagation private sh -c \\\n  'mount -t cgroup2 none /sys/fs/cgroup && exec crun \"$@\"' crun \"$@\"\n",
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
    Some(wrapper)
}

/// `seccompctl record --format oci -o <dir>/<name>.json [extra] -- cmd`: the file and its
/// JSON.
pub fn record(
    dir: &Path,
    name: &str,
    extra: &[&str],
    cmd: &[&str],
) -> (PathBuf, serde_json::Value) {
    let path = dir.join(format!("{name}.json"));
    let out = run(seccompctl()
        .args(["record", "--format", "oci", "-o"])
        .arg(&path)
        .args(extra)
        .arg("--")
        .args(cmd));
    assert!(
        out.status.success(),
        "record {cmd:?}: {}",
        text(&out.stderr)
    );
    let doc = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    (path, doc)
}

/// `seccompctl run` under `profile`, killed after two minutes (a program that spins on a
/// denied syscall must fail the test, not hang it).
pub fn run_under(profile: &Path, cmd: &[&str]) -> std::process::Output {
    run(Command::new("timeout")
        .args(["-s", "KILL", "120"])
        .arg(env!("CARGO_BIN_EXE_seccompctl"))
        .arg("run")
        .arg("--profile")
        .arg(profile)
        .arg("--")
        .args(cmd))
}
